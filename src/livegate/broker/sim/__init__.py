"""The `sim` adapter: a client of the sim broker server (livegate.sim)."""

from livegate.broker.sim.adapter import SimAdapter

__all__ = ["SimAdapter"]
