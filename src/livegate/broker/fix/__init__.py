"""The FIX adapter: a FIX 4.2/4.4 initiator session and its mapping onto livegate."""

from livegate.broker.fix.adapter import FixAdapter
from livegate.broker.fix.session import FixSession, FixSessionConfig, FixSessionError

__all__ = ["FixAdapter", "FixSession", "FixSessionConfig", "FixSessionError"]
