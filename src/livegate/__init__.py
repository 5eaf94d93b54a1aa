"""livegate: a hardened execution gateway between a strategy and a broker adapter."""

__version__ = "0.1.0"
