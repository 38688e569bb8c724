"""GetAccountSettings: the account's limits and its usage."""

from __future__ import annotations

from typing import Any

from lambdaplane.code import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES

TOTAL_CODE_SIZE = 80_530_636_800  # 75 GB, AWS's default storage quota.
CONCURRENT_EXECUTIONS = 1000  # AWS's default account limit


def account_settings(
    function_count: int,
    total_code_size: int,
    reserved: int = 0,
    concurrent_executions: int = CONCURRENT_EXECUTIONS,
) -> dict[str, Any]:
    """``reserved`` is the sum of the functions' reserved concurrency."""
    return {
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
            "CodeSizeZipped": MAX_ZIPPED_BYTES,
            "ConcurrentExecutions": concurrent_executions,
            "UnreservedConcurrentExecutions": concurrent_executions - reserved,
        },
        "AccountUsage": {"TotalCodeSize": total_code_size, "FunctionCount": function_count},
    }
