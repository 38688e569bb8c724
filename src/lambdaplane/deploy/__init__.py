"""Alias deployments with traffic shifting, as AWS CodeDeploy does them for Lambda.

``strategy`` plans the steps (pure), ``health`` reads and judges the new version's
invocations, ``deployment`` is the state machine that moves the alias, and ``command``
wires them to botocore and the terminal for ``lambdaplane deploy-alias``.
"""

from lambdaplane.deploy.deployment import (
    AliasChanged,
    AliasError,
    AliasState,
    AliasTarget,
    Deployment,
    Phase,
    Progress,
    Result,
)
from lambdaplane.deploy.health import MetricsError, Thresholds
from lambdaplane.deploy.strategy import (
    PREDEFINED,
    Kind,
    Step,
    Strategy,
    StrategyError,
    parse_duration,
    plan,
    predefined,
)

__all__ = [
    "PREDEFINED",
    "AliasChanged",
    "AliasError",
    "AliasState",
    "AliasTarget",
    "Deployment",
    "Kind",
    "MetricsError",
    "Phase",
    "Progress",
    "Result",
    "Step",
    "Strategy",
    "StrategyError",
    "Thresholds",
    "parse_duration",
    "plan",
    "predefined",
]
