"""Prometheus metrics: a small registry and the Lambda metrics recorded on it."""

from lambdaplane.metrics.lambda_metrics import DropReason, EnvironmentCensus, LambdaMetrics
from lambdaplane.metrics.registry import Registry

__all__ = ["DropReason", "EnvironmentCensus", "LambdaMetrics", "Registry"]
