"""Function states as explicit machines: an enum plus the table of legal moves.

``State`` is the function's lifecycle (Pending → Active | Failed); ``UpdateStatus``
is the last update's (InProgress → Successful | Failed). Illegal moves raise, so a
bug cannot leave a function in a state AWS never shows.
"""

from __future__ import annotations

from enum import StrEnum


class IllegalTransition(RuntimeError):
    pass


class State(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"

    def to(self, target: State) -> State:
        if target not in _STATE_MOVES[self]:
            raise IllegalTransition(f"function state {self} -> {target}")
        return target


_STATE_MOVES: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.ACTIVE, State.FAILED}),
    State.ACTIVE: frozenset({State.ACTIVE, State.INACTIVE, State.FAILED}),
    State.INACTIVE: frozenset({State.PENDING, State.ACTIVE}),
    State.FAILED: frozenset({State.PENDING, State.ACTIVE}),
}


class UpdateStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"

    def to(self, target: UpdateStatus) -> UpdateStatus:
        if target not in _UPDATE_MOVES[self]:
            raise IllegalTransition(f"update status {self} -> {target}")
        return target


_UPDATE_MOVES: dict[UpdateStatus, frozenset[UpdateStatus]] = {
    UpdateStatus.IN_PROGRESS: frozenset({UpdateStatus.SUCCESSFUL, UpdateStatus.FAILED}),
    UpdateStatus.SUCCESSFUL: frozenset({UpdateStatus.IN_PROGRESS}),
    UpdateStatus.FAILED: frozenset({UpdateStatus.IN_PROGRESS}),
}
