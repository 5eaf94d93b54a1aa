"""The transition table itself: forward-only, terminal states absorb."""

from __future__ import annotations

import itertools

from livegate.model.enums import OrderStatus as S
from livegate.model.fsm import RANK, TRANSITIONS, can_transition, is_stale


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)


def test_no_move_goes_backwards_except_cancel_refused() -> None:
    restore = {(S.PENDING_CANCEL, S.SUBMITTED), (S.PENDING_CANCEL, S.PARTIALLY_FILLED)}
    for src, dst in itertools.product(S, S):
        if can_transition(src, dst) and (src, dst) not in restore:
            assert RANK[dst] >= RANK[src], (src, dst)


def test_terminal_states_only_complete_to_filled() -> None:
    assert TRANSITIONS[S.FILLED] == frozenset()
    assert TRANSITIONS[S.REJECTED] == frozenset()
    assert TRANSITIONS[S.CANCELLED] == {S.FILLED}
    assert TRANSITIONS[S.EXPIRED] == {S.FILLED}


def test_submitted_after_filled_is_stale_not_a_move() -> None:
    assert not can_transition(S.FILLED, S.SUBMITTED)
    assert is_stale(S.FILLED, S.SUBMITTED)
    assert is_stale(S.FILLED, S.CANCELLED)  # the order had already ended
    assert not is_stale(S.PARTIALLY_FILLED, S.REJECTED)
    assert not can_transition(S.PARTIALLY_FILLED, S.REJECTED)


def test_unknown_and_pending_cancel_are_reachable() -> None:
    assert can_transition(S.NEW, S.UNKNOWN)
    assert can_transition(S.UNKNOWN, S.FILLED)
    assert can_transition(S.SUBMITTED, S.PENDING_CANCEL)
    assert can_transition(S.PENDING_CANCEL, S.CANCELLED)
