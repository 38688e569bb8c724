"""Published versions: how a version's configuration is cut from $LATEST's.

A version is an immutable snapshot: the same configuration and code as $LATEST when it
was published, under a qualified ARN, with its own revision. Publishing again with
nothing changed returns the last version instead of making a new one, as AWS does.
"""

from __future__ import annotations

from typing import Any

from lambdaplane.service.configuration import CREATING_CODE, CREATING_REASON, last_modified

# What may differ between $LATEST and a version without making them different content.
_NOT_CONTENT = frozenset(
    {
        "FunctionArn", "Version", "RevisionId", "LastModified", "Description", "State",
        "StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason",
        "LastUpdateStatusReasonCode",
    }
)  # fmt: skip
_UPDATE_STATUS = ("LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode")


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two configurations run the same code the same way."""

    def content(config: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in config.items() if k not in _NOT_CONTENT}
        if "SnapStart" in kept:  # a version reports OptimizationStatus On, $LATEST Off
            kept["SnapStart"] = (kept["SnapStart"] or {}).get("ApplyOn")
        return kept

    return content(a) == content(b)


def snapshot(
    latest: dict[str, Any],
    *,
    version: str,
    arn: str,
    description: str | None,
    revision_id: str,
) -> dict[str, Any]:
    """Version ``version`` of a function whose $LATEST configuration is ``latest``.

    A snapshot of a function still being created or updated is Pending until the code
    is ready (``FunctionService.settle`` finishes it), and so is a SnapStart version
    until its snapshot is made; otherwise it is Active at once.
    """
    config = {k: v for k, v in latest.items() if k not in _UPDATE_STATUS}
    config.update(
        FunctionArn=arn,
        Version=version,
        RevisionId=revision_id,
        LastModified=last_modified(),
        Description=latest.get("Description", "") if description is None else description,
    )
    snap_start = latest.get("SnapStart") or {}
    optimized = snap_start.get("ApplyOn") == "PublishedVersions"
    if optimized:  # a snapshot is made of this version: Pending until it is ready
        config["SnapStart"] = {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    in_transition = (
        optimized
        or latest.get("State") == "Pending"
        or latest.get("LastUpdateStatus") == "InProgress"
    )
    if in_transition:
        config.update(State="Pending", StateReason=CREATING_REASON, StateReasonCode=CREATING_CODE)
    else:
        for key in ("StateReason", "StateReasonCode"):
            config.pop(key, None)
        config.update(State="Active", LastUpdateStatus="Successful")
    return dict(sorted(config.items()))
