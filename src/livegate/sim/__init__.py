"""The simulated broker server, with fault injection (see docs/sim-broker.md)."""

from livegate.sim.server import Faults, SimBroker, control

__all__ = ["Faults", "SimBroker", "control"]
