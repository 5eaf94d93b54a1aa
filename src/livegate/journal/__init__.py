"""Append-only, write-ahead event log behind a small `Store` protocol."""

from livegate.journal.journal import Journal, decode_event, encode_event
from livegate.journal.memory import MemoryStore
from livegate.journal.sqlite import SQLiteStore, replay_file
from livegate.journal.store import Batch, Record, Store

__all__ = [
    "Batch",
    "Journal",
    "MemoryStore",
    "Record",
    "SQLiteStore",
    "Store",
    "decode_event",
    "encode_event",
    "replay_file",
]
