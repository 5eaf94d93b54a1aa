"""A FIX 4.2/4.4 initiator session on asyncio, over simplefix's codec.

Why our own session layer (docs/decisions/0004-fix-adapter.md): QuickFIX's
Python binding is a C++ build of several minutes whose callbacks arrive on
its own threads; the session rules themselves are small and are where a
gateway needs control (what is persisted when, what a resend means).

What it does, by the FIX session rules:
- Logon with HeartBtInt; Logout both ways.
- Sequence numbers persisted in SQLite (synchronous FULL), both directions,
  across reconnects and restarts of either side.
- Every application message sent is stored before it is written, so a
  ResendRequest from the peer is answered: application messages again with
  PossDupFlag=Y and OrigSendingTime, administrative ones as SequenceReset
  GapFill.
- A gap in what we receive sends one ResendRequest; messages past the gap
  are dropped until the resend fills it (they come again). A message below
  the expected number is ignored when PossDupFlag=Y, and ends the session
  otherwise (the peer and we disagree about history: a person must look).
- SequenceReset in both modes.
- Heartbeats when we have been quiet for HeartBtInt; a TestRequest when
  the peer has; the connection is declared dead if that goes unanswered.
- At the first logon of a process, the last `rerequest_on_start` messages
  are asked for again: one may have been received but not yet journaled
  by the gateway when the process died. Duplicates are the gateway's to
  drop (by exec id), so asking again costs little and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import simplefix

from livegate.broker.fix.framing import Framer

log = logging.getLogger("livegate.fix")

SOH = b"\x01"
ADMIN = frozenset((b"0", b"1", b"2", b"3", b"4", b"5", b"A"))
HEADER_TAGS = frozenset((8, 9, 35, 49, 56, 34, 43, 52, 122, 10))


class FixSessionError(Exception):
    """The session cannot go on (refused logon, sequence numbers too low)."""


class _SessionOver(Exception):
    """The Logout we asked for came: the session ends as planned."""


@dataclass
class FixSessionConfig:
    host: str
    port: int
    sender_comp_id: str
    target_comp_id: str
    store: Path  # the session's sequence numbers and sent messages
    begin_string: str = "FIX.4.2"
    heartbeat_interval: int = 30
    logon_timeout: float = 10.0
    rerequest_on_start: int = 20
    reset_on_logon: bool = False  # 141=Y: both sides start again at 1 (rarely wanted)
    # An inbound number is made durable only this long after its message was
    # handed to the gateway, which journals it within milliseconds: a process
    # killed in between asks for those messages again at its next logon.
    inbound_persist_lag: float = 2.0
    resend_timeout: float = 10.0  # a ResendRequest unanswered this long: asked again, then drop


class SessionStore:
    """Sequence numbers and sent application messages, durable before they matter."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS seqnums (id INTEGER PRIMARY KEY CHECK (id = 1),"
            " next_out INTEGER NOT NULL, next_in INTEGER NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS sent (seq INTEGER PRIMARY KEY, msg_type TEXT NOT NULL,"
            " raw BLOB NOT NULL)"
        )
        self.db.execute("INSERT OR IGNORE INTO seqnums VALUES (1, 1, 1)")
        row = self.db.execute("SELECT next_out, next_in FROM seqnums").fetchone()
        self.next_out: int = int(row[0])
        self.next_in: int = int(row[1])
        self._unpersisted: deque[tuple[float, int]] = deque()  # (when, next_in) not yet stored

    def save_sent(self, seq: int, msg_type: bytes, raw: bytes | None) -> None:
        with self.db:
            if raw is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO sent VALUES (?, ?, ?)", (seq, msg_type.decode(), raw)
                )
            self.db.execute("UPDATE seqnums SET next_out = ?", (seq + 1,))
        self.next_out = seq + 1

    def set_next_in(self, value: int, now: float | None = None) -> None:
        """Move the expected number; stored at once, or (`now` given) by `persist_due`.

        Received is not processed: until the gateway has journaled what a
        message carried, its number must not be durable, or a crash loses it
        (the peer would never send it again).
        """
        self.next_in = value
        if now is None:
            self._unpersisted.clear()
            self.db.execute("UPDATE seqnums SET next_in = ?", (value,))
        else:
            self._unpersisted.append((now, value))

    def persist_due(self, older_than: float) -> None:
        """Store the newest expected number whose message is at least `older_than` old."""
        due = None
        while self._unpersisted and self._unpersisted[0][0] <= older_than:
            due = self._unpersisted.popleft()[1]
        if due is not None:
            self.db.execute("UPDATE seqnums SET next_in = ?", (due,))

    def stored_next_in(self) -> int:
        return int(self.db.execute("SELECT next_in FROM seqnums").fetchone()[0])

    def reset(self) -> None:
        self._unpersisted.clear()
        with self.db:
            self.db.execute("DELETE FROM sent")
            self.db.execute("UPDATE seqnums SET next_out = 1, next_in = 1")
        self.next_out = self.next_in = 1

    def sent_between(self, begin: int, end: int) -> list[tuple[int, bytes, bytes]]:
        rows = self.db.execute(
            "SELECT seq, msg_type, raw FROM sent WHERE seq >= ? AND seq <= ? ORDER BY seq",
            (begin, end),
        ).fetchall()
        return [(seq, kind.encode(), raw) for seq, kind, raw in rows]

    def sent_message(self, seq: int) -> simplefix.FixMessage | None:
        row = self.db.execute("SELECT raw FROM sent WHERE seq = ?", (seq,)).fetchone()
        return parse_one(row[0]) if row else None

    def close(self) -> None:
        self.db.close()


def parse_one(raw: bytes) -> simplefix.FixMessage:
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    message = parser.get_message()
    if message is None:
        raise ValueError("not a complete FIX message")
    return message


def utc_timestamp() -> bytes:
    """A FIX UTCTimestamp with milliseconds."""
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


def text(message: simplefix.FixMessage, tag: int) -> str | None:
    value = message.get(tag)
    return value.decode(errors="replace") if value is not None else None


AppHandler = Callable[[simplefix.FixMessage], None]


class FixSession:
    """One initiator session. `connect` logs on; application messages go to `on_app`."""

    def __init__(
        self,
        config: FixSessionConfig,
        on_app: AppHandler,
        on_problem: Callable[[str], None] = log.error,
    ) -> None:
        self.config = config
        self.on_app = on_app
        self.on_problem = on_problem  # what the person on call must hear of (an alert)
        self.store = SessionStore(config.store)
        self.logged_on = False
        self.closed = asyncio.Event()
        self.closed.set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._logon = asyncio.Event()
        self._logout = asyncio.Event()
        self._logout_text = ""
        self._resend_until: int | None = None  # a ResendRequest of ours is being answered
        self._resend_asked: list[float] = []  # when we asked, for this gap
        self._test_request: tuple[str, float] | None = None
        self._last_in = self._last_out = 0.0
        self._first_logon = True
        self._logging_out = False
        self._send_lock = asyncio.Lock()

    # -- life cycle ----------------------------------------------------------------
    async def connect(self) -> None:
        cfg = self.config
        reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
        self._reader, self._writer = reader, writer
        self._logon.clear()
        self._logout.clear()
        self._logging_out = False
        self._logout_text = ""
        self._resend_until = None
        self._resend_asked = []
        self._test_request = None
        self.closed.clear()
        self._last_in = time.monotonic()
        self._tasks = [asyncio.create_task(self._read_loop(), name="fix-reader")]
        if cfg.reset_on_logon:
            self.store.reset()
        had_history = self.store.next_in > 1  # before this logon's own message counts
        logon = [(98, b"0"), (108, str(cfg.heartbeat_interval).encode())]
        if cfg.reset_on_logon:
            logon.append((141, b"Y"))
        await self._send(b"A", logon)
        done = asyncio.create_task(self._logon.wait())
        ended = asyncio.create_task(self.closed.wait())
        try:
            await asyncio.wait(
                {done, ended}, timeout=cfg.logon_timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            done.cancel()
            ended.cancel()
        if not self._logon.is_set():
            reason = self._logout_text or "no Logon answer"
            await self._drop()
            raise FixSessionError(f"logon refused by {cfg.target_comp_id}: {reason}")
        self.logged_on = True
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="fix-heartbeat"))
        if self._first_logon and cfg.rerequest_on_start and had_history:
            begin = max(1, self.store.next_in - 1 - cfg.rerequest_on_start)
            await self._send(b"2", [(7, str(begin).encode()), (16, b"0")])
        self._first_logon = False

    async def logout(self, reason: str = "") -> None:
        """Log out politely and close (waits briefly for the peer's Logout)."""
        if self._writer is None:
            return
        if self.logged_on:
            fields = [(58, reason.encode())] if reason else []
            self._logging_out = True
            with contextlib.suppress(Exception):
                await self._send(b"5", fields)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._logout.wait(), 2.0)
        await self._drop()

    async def _drop(self) -> None:
        """Close the connection without ceremony (what a network failure does)."""
        self.logged_on = False
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = []
        self.closed.set()

    def abort(self) -> None:
        """Cut the connection at once, as if the network failed (drills and tests)."""
        if self._writer is not None:
            self._writer.transport.abort()

    # -- sending -------------------------------------------------------------------
    async def send_app(self, msg_type: bytes, fields: list[tuple[int, bytes]]) -> int:
        if not self.logged_on:
            raise ConnectionError("FIX session not logged on")
        return await self._send(msg_type, fields)

    async def _send(self, msg_type: bytes, fields: list[tuple[int, bytes]]) -> int:
        async with self._send_lock:  # seq order on the wire = seq order in the store
            writer = self._writer
            if writer is None:
                raise ConnectionError("FIX session not connected")
            seq = self.store.next_out
            raw = self._encode(msg_type, seq, fields)
            # Stored before written: a resend must be able to repeat it.
            self.store.save_sent(seq, msg_type, None if msg_type in ADMIN else raw)
            writer.write(raw)
            self._last_out = time.monotonic()
            await writer.drain()
            return seq

    def _encode(
        self,
        msg_type: bytes,
        seq: int,
        fields: list[tuple[int, bytes]],
        poss_dup: bytes | None = None,
    ) -> bytes:
        cfg = self.config
        message = simplefix.FixMessage()
        message.append_pair(8, cfg.begin_string, header=True)
        message.append_pair(35, msg_type, header=True)
        message.append_pair(49, cfg.sender_comp_id, header=True)
        message.append_pair(56, cfg.target_comp_id, header=True)
        message.append_pair(34, seq, header=True)
        if poss_dup is not None:
            message.append_pair(43, b"Y", header=True)
        message.append_utc_timestamp(52, precision=3, header=True)
        if poss_dup is not None:
            message.append_pair(122, poss_dup, header=True)
        for tag, value in fields:
            message.append_pair(tag, value)
        return bytes(message.encode())

    async def _resend(self, begin: int, end: int) -> None:
        """Answer the peer's ResendRequest: our stored messages, gaps filled."""
        last = self.store.next_out - 1
        end = last if end == 0 or end > last else end
        writer = self._writer
        if writer is None:
            return
        async with self._send_lock:
            expected = begin
            for seq, msg_type, raw in self.store.sent_between(begin, end):
                if seq > expected:
                    writer.write(self._gap_fill(expected, seq))
                original = parse_one(raw)
                body = [(t, v) for t, v in original if t not in HEADER_TAGS]
                writer.write(self._encode(msg_type, seq, body, poss_dup=original.get(52)))
                expected = seq + 1
            if expected <= end:
                writer.write(self._gap_fill(expected, end + 1))
            self._last_out = time.monotonic()
            await writer.drain()

    def _gap_fill(self, seq: int, new_seq: int) -> bytes:
        fields = [(123, b"Y"), (36, str(new_seq).encode())]
        # A PossDup needs an OrigSendingTime; a gap fill has no original: now.
        return self._encode(b"4", seq, fields, poss_dup=utc_timestamp())

    # -- receiving -----------------------------------------------------------------
    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        framer = Framer()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                self._last_in = time.monotonic()
                garbled = framer.garbled
                for raw in framer.feed(chunk):
                    await self._on_message(self._checked(parse_one(raw)))
                if framer.garbled > garbled:
                    # Ignored, its number not consumed: it comes again by resend.
                    self.on_problem(f"FIX: {framer.garbled - garbled} garbled message(s) ignored")
        except _SessionOver:
            pass
        except (ConnectionError, OSError) as exc:
            log.warning("FIX connection to %s failed: %r", self.config.target_comp_id, exc)
        except FixSessionError as exc:
            self.on_problem(f"FIX session ended: {exc}")
            self._logout_text = str(exc)
            with contextlib.suppress(Exception):
                await self._send(b"5", [(58, str(exc).encode())])
        except Exception as exc:  # a message we could not handle: never a silent dead reader
            log.exception("FIX message handling failed; logging out to reconnect")
            self._logout_text = f"could not handle a message: {exc!r}"
            with contextlib.suppress(Exception):
                await self._send(b"5", [(58, b"message not understood")])
        finally:
            self.store.persist_due(time.monotonic() - self.config.inbound_persist_lag)
            await self._drop()

    def _checked(self, message: simplefix.FixMessage) -> simplefix.FixMessage:
        """Refuse a message not of this session (the FIX rules: reject and log out)."""
        cfg = self.config
        begin, sender, target = message.get(8), message.get(49), message.get(56)
        if begin != cfg.begin_string.encode():
            raise FixSessionError(f"BeginString {begin!r} is not this session's")
        if sender != cfg.target_comp_id.encode() or target != cfg.sender_comp_id.encode():
            raise FixSessionError(
                f"CompIDs {sender!r}->{target!r} are not this session's"
                f" ({cfg.target_comp_id}->{cfg.sender_comp_id})"
            )
        return message

    async def _on_message(self, message: simplefix.FixMessage) -> None:
        store = self.store
        msg_type = message.get(35)
        seq = int(message.get(34) or 0)
        poss_dup = message.get(43) == b"Y"
        if msg_type == b"4" and message.get(123) != b"Y":  # SequenceReset-Reset
            new_seq = int(message.get(36) or 0)
            if new_seq > store.next_in:
                store.set_next_in(new_seq)
            return
        if msg_type == b"A" and message.get(141) == b"Y":
            store.set_next_in(seq)  # the peer starts again at 1
        if seq > store.next_in:
            # A gap. Logon and Logout still count; everything else comes again.
            if msg_type == b"A":
                self._logon.set()
            elif msg_type == b"5":
                self._logout_text = text(message, 58) or ""
                self._logout.set()
                raise ConnectionError(f"peer logged out: {self._logout_text}")
            elif msg_type == b"2":
                await self._resend(int(message.get(7) or 1), int(message.get(16) or 0))
            if self._resend_until is None:
                log.info("FIX gap: expected %d, got %d; asking again", store.next_in, seq)
                self._resend_until = seq
                await self._ask_resend()
            return
        if seq < store.next_in:
            if poss_dup and msg_type not in ADMIN:
                # Seen before, perhaps not journaled before a crash: duplicates are
                # the gateway's to drop (by exec id); dropping here could lose a fill.
                self.on_app(message)
                return
            if poss_dup or (msg_type == b"4" and message.get(123) == b"Y"):
                return  # seen before
            raise FixSessionError(f"MsgSeqNum too low: expected {store.next_in}, got {seq}")
        # In sequence.
        now = time.monotonic()
        if msg_type == b"4":  # GapFill
            store.set_next_in(max(int(message.get(36) or seq + 1), seq + 1), now)
        else:
            if msg_type not in ADMIN:
                self.on_app(message)  # handed over before the number is
            store.set_next_in(seq + 1, now)
        if self._resend_until is not None and store.next_in > self._resend_until:
            self._resend_until = None
            self._resend_asked = []
        if msg_type == b"A":
            self._logon.set()
        elif msg_type == b"1":
            await self._send(b"0", [(112, message.get(112) or b"")])
        elif msg_type == b"0":
            if self._test_request and message.get(112) == self._test_request[0].encode():
                self._test_request = None
        elif msg_type == b"2":
            await self._resend(int(message.get(7) or 1), int(message.get(16) or 0))
        elif msg_type == b"3":
            self.on_app(message)  # a session-level reject of one of our messages
        elif msg_type == b"5":
            self._logout_text = text(message, 58) or ""
            self._logout.set()
            if self._logging_out:
                raise _SessionOver  # the answer to our own Logout
            if self.logged_on:
                with contextlib.suppress(Exception):
                    await self._send(b"5", [])
            raise ConnectionError(f"peer logged out: {self._logout_text or 'no reason'}")

    async def _ask_resend(self) -> None:
        self._resend_asked.append(time.monotonic())
        await self._send(b"2", [(7, str(self.store.next_in).encode()), (16, b"0")])

    def _resend_overdue(self, now: float) -> bool:
        """A gap the peer does not fill: ask once more, then give up on the session
        (everything after the gap is being dropped meanwhile: never stay READY so)."""
        if self._resend_until is None or not self._resend_asked:
            return False
        return now - self._resend_asked[-1] >= self.config.resend_timeout

    # -- liveness ------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval
        while True:
            await asyncio.sleep(min(1.0, interval / 4, self.config.resend_timeout / 4))
            now = time.monotonic()
            self.store.persist_due(now - self.config.inbound_persist_lag)
            if self._resend_overdue(now):
                if len(self._resend_asked) < 2:
                    log.warning("FIX ResendRequest unanswered: asking again")
                    await self._ask_resend()
                else:
                    self.on_problem(
                        f"FIX peer never filled the gap from {self.store.next_in}:"
                        " session dropped to reconnect"
                    )
                    self._logout_text = "gap never filled"
                    self.abort()
                    return
            if now - self._last_out >= interval:
                await self._send(b"0", [])
            if self._test_request is not None:
                if now - self._test_request[1] >= interval:
                    log.warning("FIX peer silent after a TestRequest: dropping the connection")
                    self.abort()
                    return
            elif now - self._last_in >= interval * 1.2:
                test_id = f"T{int(time.time() * 1000)}"
                self._test_request = (test_id, now)
                await self._send(b"1", [(112, test_id.encode())])
