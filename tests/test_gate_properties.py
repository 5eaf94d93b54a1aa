"""Properties of the gate's folds over the journal: connection coverage and open alerts."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from livegate.gate.days import up_intervals
from livegate.gate.evidence import Evidence
from livegate.model.events import AlertChanged, ConnectionChanged, GatewayStarted
from livegate.observe.alerts import open_alerts

# A run: (ts of its start, flips as (ts offset, up?)); runs follow one another.
flips = st.lists(st.tuples(st.integers(1, 1000), st.booleans()), max_size=8)
runs = st.lists(st.tuples(st.integers(1, 1000), flips, st.booleans()), min_size=1, max_size=5)


def journal_of(spec: list[tuple[int, list[tuple[int, bool]], bool]]) -> tuple[Evidence, list]:  # type: ignore[type-arg]
    """Build the facts a journal of these runs holds; also the truth: (from, to) up."""
    found = Evidence()
    truth: list[tuple[int, int]] = []
    seq, ts, last = 0, 0, 0
    for gap, changes, clean_stop in spec:
        ts += gap
        seq += 1
        found.run_ends[seq] = last
        found.starts.append((seq, GatewayStarted(ts, "x", "1")))
        last = ts
        up_since: int | None = None
        for offset, up in changes:
            ts += offset
            seq += 1
            found.connections.append((seq, ConnectionChanged(up, "READY" if up else "DOWN", ts)))
            last = ts
            if up and up_since is None:
                up_since = ts
            elif not up and up_since is not None:
                truth.append((up_since, ts))
                up_since = None
        if up_since is not None:
            if clean_stop:  # a clean stop journals its last "down"
                ts += 1
                seq += 1
                found.connections.append((seq, ConnectionChanged(False, "DOWN", ts)))
                last = ts
            truth.append((up_since, last))  # killed: up until the last stamp it wrote
    found.last_ns = last
    return found, truth


@given(runs)
def test_connected_time_is_never_more_than_the_journal_proves(spec) -> None:  # type: ignore[no-untyped-def]
    found, truth = journal_of(spec)
    stretches = up_intervals(found)
    assert [(a, b) for a, b, _ in stretches] == truth
    for (_, end, _), (start, _, _) in itertools.pairwise(stretches):
        assert end <= start  # stretches never overlap: no time is counted twice


keys = st.sampled_from(["halted", "disconnected", "critical-diffs"])
changes = st.lists(
    st.tuples(keys, st.sampled_from(["RAISED", "ESCALATED", "ACKNOWLEDGED", "RESOLVED"])),
    max_size=20,
)


@given(changes)
def test_an_alert_is_open_exactly_when_raised_and_not_resolved_since(history) -> None:  # type: ignore[no-untyped-def]
    events = [AlertChanged(k, "P0", s, "", n) for n, (k, s) in enumerate(history)]
    found = open_alerts(events)
    for key in {"halted", "disconnected", "critical-diffs"}:
        mine = [s for k, s in history if k == key]
        raised = [i for i, s in enumerate(mine) if s in ("RAISED", "ESCALATED")]
        resolved = [i for i, s in enumerate(mine) if s == "RESOLVED"]
        is_open = bool(raised) and (not resolved or raised[-1] > resolved[-1])
        assert (key in found) == is_open, (key, mine)
