"""A certify target for the gate's tests: the sim adapter as an older release of it."""

from __future__ import annotations

from livegate.drills.certify import shipped
from livegate.drills.certify.target import CertifyEnv, Target


def sim_old_version(env: CertifyEnv) -> Target:
    """The sim adapter claiming version 0.0.9: its certificate is for another version."""
    target = shipped.sim(env)
    target.adapter.version = "0.0.9"  # type: ignore[attr-defined]
    return target
