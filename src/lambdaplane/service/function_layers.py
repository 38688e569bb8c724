"""What the function control plane asks of layers: the seam between the two services.

``FunctionService`` checks a function's ``Layers`` and its size with code and layers
together through this protocol, and has ``/opt`` prepared when it settles; the layer
service implements it. A function service built without one (unit tests, tools) sees
no layer versions at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from lambdaplane.errors import InvalidParameterValueException

MAX_LAYERS = 5
LayerRefs = Sequence[Mapping[str, Any]]  # a configuration's "Layers": [{"Arn", "CodeSize"}]


def check_count(arns: Sequence[str] | None) -> None:
    """AWS's first check on a function's layers, before anything is looked up."""
    if arns and len(arns) > MAX_LAYERS:
        raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")


class FunctionLayers(Protocol):
    def resolve(
        self, arns: Sequence[str], code_sha256: str, code_unzipped: int | None = None
    ) -> list[dict[str, Any]]:
        """The configuration's ``Layers`` for these layer version ARNs, after AWS's checks
        (count, region, existence, one version per layer, total unzipped size with the
        code ``code_sha256``, whose unzipped size is ``code_unzipped`` when already known).
        Raises InvalidParameterValueException."""
        ...

    def check_size(self, layers: LayerRefs | None, code_unzipped: int) -> None:
        """New code of ``code_unzipped`` bytes must still fit with the function's layers."""
        ...

    def opt_dir(self, layers: LayerRefs | None) -> Path | None:
        """The host directory to mount at /opt (built on first use); None without layers."""
        ...


class NoLayers:
    """No layer store: every layer version a function names is missing."""

    def resolve(
        self, arns: Sequence[str], code_sha256: str, code_unzipped: int | None = None
    ) -> list[dict[str, Any]]:
        check_count(arns)
        if arns:
            raise InvalidParameterValueException(f"Layer version {arns[0]} does not exist.")
        return []

    def check_size(self, layers: LayerRefs | None, code_unzipped: int) -> None:
        return None

    def opt_dir(self, layers: LayerRefs | None) -> Path | None:
        return None
