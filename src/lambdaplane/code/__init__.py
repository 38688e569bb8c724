"""Content-addressed function code packages: validation (``inspect_zip``) and storage.

See :mod:`lambdaplane.code.validate` for what a package must satisfy and
:mod:`lambdaplane.code.store` for how packages are kept on disk.
"""

from lambdaplane.code.store import CodeStore
from lambdaplane.code.validate import (
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_BYTES,
    ZipSummary,
    check_zipped_size,
    inspect_zip,
)

__all__ = [
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "CodeStore",
    "ZipSummary",
    "check_zipped_size",
    "inspect_zip",
]
