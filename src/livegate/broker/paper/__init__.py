"""In-process paper broker (no server needed) and its adapter."""

from livegate.broker.paper.adapter import PaperAdapter
from livegate.broker.paper.broker import PaperBroker, PaperConfig

__all__ = ["PaperAdapter", "PaperBroker", "PaperConfig"]
