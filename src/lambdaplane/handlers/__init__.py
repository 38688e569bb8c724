"""Operation handlers: small functions from a parsed, validated request to an output dict.

``HANDLERS`` maps a Lambda operation name to its ``Handler``. Operations of the model
that are absent here are still routed, and answer an AWS-shaped NotImplemented error.
"""

from lambdaplane.handlers.base import Handler, RequestContext, Services
from lambdaplane.handlers.registry import HANDLERS

__all__ = ["HANDLERS", "Handler", "RequestContext", "Services"]
