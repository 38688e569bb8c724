"""The event source mapping state machine."""

from __future__ import annotations

import pytest

from lambdaplane.esm.states import LEGAL, IllegalTransition, State, after_update, transition


def test_deleting_is_final() -> None:
    assert LEGAL[State.DELETING] == frozenset()
    with pytest.raises(IllegalTransition):
        transition("Deleting", State.ENABLED)


def test_every_state_can_be_deleted_and_transients_settle() -> None:
    for state in State:
        if state is not State.DELETING:
            assert State.DELETING in LEGAL[state]
    assert transition("Creating", State.ENABLED) is State.ENABLED
    assert transition("Updating", State.DISABLED) is State.DISABLED


@pytest.mark.parametrize(
    ("current", "enabled", "changed", "expected"),
    [
        ("Enabled", False, False, State.DISABLING),
        ("Enabled", False, True, State.DISABLING),
        ("Disabled", True, False, State.ENABLING),
        ("Enabled", True, True, State.UPDATING),
        ("Disabled", False, True, State.UPDATING),
        ("Enabled", True, False, State.ENABLED),
        ("Creating", False, False, State.DISABLING),
    ],
)
def test_after_update(current: str, enabled: bool, changed: bool, expected: State) -> None:
    assert after_update(current, enabled, changed) is expected
    assert expected is State(current) or expected in LEGAL[State(current)]
