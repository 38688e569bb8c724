"""Resource-based policies: statements as AWS writes them, and their evaluation.

``document`` turns an AddPermission request into a statement and renders policies as
GetPolicy shows them; ``evaluate`` decides, purely, whether a policy's statements allow
an action for a caller.
"""

from lambdaplane.policy.document import INVALID_PRINCIPAL, build_statement, render_policy
from lambdaplane.policy.evaluate import Request, allows

__all__ = ["INVALID_PRINCIPAL", "Request", "allows", "build_statement", "render_policy"]
