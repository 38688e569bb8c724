"""The event source mapping state machine, as AWS shows it.

``Creating``, ``Enabling``, ``Updating``, ``Disabling`` and ``Deleting`` are transient:
the API answers with them (HTTP 202) and the manager finishes the move in the
background (``Enabled``/``Disabled``, or the row is gone). ``LEGAL`` is the table of
moves; anything else is a bug, refused by ``transition``.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"


TRANSIENT = frozenset(
    {State.CREATING, State.ENABLING, State.UPDATING, State.DISABLING, State.DELETING}
)

LEGAL: dict[State, frozenset[State]] = {
    State.CREATING: frozenset(
        {State.ENABLED, State.DISABLED, State.DISABLING, State.UPDATING, State.DELETING}
    ),
    State.ENABLING: frozenset({State.ENABLED, State.DISABLING, State.UPDATING, State.DELETING}),
    State.ENABLED: frozenset({State.UPDATING, State.DISABLING, State.DELETING}),
    State.DISABLING: frozenset({State.DISABLED, State.ENABLING, State.UPDATING, State.DELETING}),
    State.DISABLED: frozenset({State.ENABLING, State.UPDATING, State.DELETING}),
    State.UPDATING: frozenset(
        {State.ENABLED, State.DISABLED, State.ENABLING, State.DISABLING, State.DELETING}
    ),
    State.DELETING: frozenset(),
}

# StateTransitionReason: AWS words it per source family.
USER_INITIATED = "USER_INITIATED"  # SQS, Amazon MQ, Kafka
USER_ACTION = "User action"  # Kinesis, DynamoDB Streams


class IllegalTransition(Exception):
    """A move the table does not allow."""


def transition(current: str, target: State) -> State:
    """``target`` if the move from ``current`` is legal; raises IllegalTransition otherwise."""
    if target not in LEGAL[State(current)]:
        raise IllegalTransition(f"{current} -> {target}")
    return target


def after_update(current: str, enabled: bool, changed: bool) -> State:
    """The state an UpdateEventSourceMapping answers with.

    Turning the mapping on or off shows ``Enabling``/``Disabling``; any other change
    ``Updating``; no change at all keeps the state.
    """
    state = State(current)
    if state in (State.ENABLED, State.ENABLING, State.CREATING) and not enabled:
        return State.DISABLING
    if state in (State.DISABLED, State.DISABLING) and enabled:
        return State.ENABLING
    if changed:
        return State.UPDATING
    return state


def settled(enabled: bool) -> State:
    """Where a transient state ends."""
    return State.ENABLED if enabled else State.DISABLED
