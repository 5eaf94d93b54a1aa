"""Cutting FIX messages out of a byte stream, refusing the garbled ones.

simplefix's parser trusts what it reads: a wrong CheckSum or BodyLength is
parsed as if right (a corrupted fill once counted 30 instead of 10). Here a
frame is accepted only when BeginString, BodyLength and CheckSum agree with
the bytes; anything else is garbled, skipped up to the next BeginString,
and never consumes a sequence number (the FIX session rules: a garbled
message is ignored, and comes again by resend).
"""

from __future__ import annotations

import re

SOH = 0x01
_START = b"8=FIX"
_LENGTH = re.compile(rb"8=[^\x01]{1,16}\x019=(\d{1,7})\x01")
_CHECKSUM = re.compile(rb"10=(\d{3})\x01")
MAX_BODY = 1 << 20  # no FIX message of ours or a broker's comes near a megabyte


class Framer:
    """Feed bytes; take whole, checked messages. `garbled` counts what was refused."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.garbled = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            if frame:
                frames.append(frame)

    def _next(self) -> bytes | None:
        """A checked frame; b"" after skipping garbage; None when more bytes are needed."""
        buf = self._buffer
        start = buf.find(_START)
        if start < 0:
            keep = len(_START) - 1  # a BeginString may be cut across reads
            if len(buf) > keep:
                self._skip(len(buf) - keep, garbage=bool(buf[:-keep].strip()))
            return None
        if start > 0:
            self._skip(start, garbage=True)
            return b""
        head = _LENGTH.match(buf)
        if head is None:
            first_soh = buf.find(b"\x01", buf.find(b"\x01") + 1)
            if first_soh < 0 and len(buf) < 64:
                return None  # the header is still arriving
            self._drop_frame()
            return b""
        body_length = int(head.group(1))
        if body_length > MAX_BODY:
            self._drop_frame()
            return b""
        trailer = head.end() + body_length
        if len(buf) < trailer + 7:
            return None
        checksum = _CHECKSUM.match(buf, trailer)
        if checksum is None or int(checksum.group(1)) != sum(buf[:trailer]) % 256:
            self._drop_frame()  # BodyLength or CheckSum wrong
            return b""
        frame = bytes(buf[: checksum.end()])
        del buf[: checksum.end()]
        return frame

    def _drop_frame(self) -> None:
        """Refuse the frame at the start: up to the next BeginString (or what is here)."""
        following = self._buffer.find(_START, 1)
        self._skip(following if following > 0 else len(self._buffer), garbage=True)

    def _skip(self, count: int, garbage: bool) -> None:
        del self._buffer[:count]
        if garbage:
            self.garbled += 1
