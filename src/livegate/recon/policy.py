"""Who wins a disagreement, and whether the gateway settles it alone.

Defaults, after the usual desk rule that the broker's books are the
record: a fill the broker has and we lack is fetched and counted
(automatic); an order the broker closed is closed here (automatic);
positions and cash take the broker's figures, but only when a person says
so, since a silent adjustment would hide a bug; everything else waits for
a person. Any rule can be changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livegate.model.diffs import DiffKind, Marker, Resolution


@dataclass(frozen=True)
class Rule:
    winner: str  # "broker", "local" or "person"
    automatic: bool
    action: Resolution | None = None  # what the automatic settlement does


def _defaults() -> dict[tuple[DiffKind, Marker], Rule]:
    adopt = Resolution.ADOPT_BROKER
    return {
        (DiffKind.TRADE, Marker.MISSING_LOCAL): Rule("broker", True, adopt),
        (DiffKind.ORDER, Marker.STATUS_MISMATCH): Rule("broker", True, adopt),
        (DiffKind.POSITION, Marker.QTY_MISMATCH): Rule("broker", False, adopt),
        (DiffKind.POSITION, Marker.PRICE_MISMATCH): Rule("broker", False, adopt),
        (DiffKind.CASH, Marker.CASH_MISMATCH): Rule("broker", False, adopt),
    }


@dataclass
class ConflictPolicy:
    rules: dict[tuple[DiffKind, Marker], Rule] = field(default_factory=_defaults)

    def rule(self, kind: DiffKind, marker: Marker) -> Rule:
        return self.rules.get((kind, marker), Rule("person", False))

    def describe(self) -> list[tuple[str, str, str, str]]:
        return [
            (k.value, m.value, r.winner, "automatic" if r.automatic else "a person decides")
            for (k, m), r in sorted(self.rules.items())
        ]
