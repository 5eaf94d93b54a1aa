"""QuickFIX's example exchange, `ordermatch`, run as a local FIX counterparty.

Debian's libquickfix-doc ships it prebuilt (and gzipped) beside its
sources: a FIX 4.2 acceptor matching DAY limit orders, with sessions BUYER
and SELLER against ORDERMATCH. It reads console commands on stdin (so
stdin stays an open pipe; `#quit` stops it) and keeps its sequence
numbers in a file store, so a restart keeps them and loses only the book.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DEBIAN_BINARY = Path("/usr/share/doc/libquickfix-doc/examples/ordermatch/.libs/ordermatch.gz")
SESSIONS = ("BUYER", "SELLER")
COMP_ID = "ORDERMATCH"


class OrderMatchMissing(RuntimeError):
    pass


def find_binary(work_dir: Path) -> Path:
    """The ordermatch executable: $LIVEGATE_ORDERMATCH, or Debian's, unpacked."""
    configured = os.environ.get("LIVEGATE_ORDERMATCH")
    if configured:
        return Path(configured)
    if not DEBIAN_BINARY.exists():
        raise OrderMatchMissing(
            f"{DEBIAN_BINARY} not found: install Debian's libquickfix-doc and libquickfix17"
            " (apt-get install libquickfix-doc libquickfix17), or set LIVEGATE_ORDERMATCH"
        )
    target = work_dir / "ordermatch"
    if not target.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(DEBIAN_BINARY) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out)
        target.chmod(0o755)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrderMatch:
    """One ordermatch process on a loopback port; restartable with its file store."""

    def __init__(self, directory: Path, port: int | None = None, heartbeat: int = 30) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.binary = find_binary(directory)
        self.process: subprocess.Popen[bytes] | None = None
        self.config = directory / "ordermatch.cfg"
        sessions = "".join(f"\n[SESSION]\nTargetCompID={name}\n" for name in SESSIONS)
        self.config.write_text(
            "[DEFAULT]\n"
            "ConnectionType=acceptor\n"
            f"SocketAcceptPort={self.port}\n"
            "SocketAcceptHost=127.0.0.1\n"
            "SocketReuseAddress=Y\n"
            "StartTime=00:00:00\n"
            "EndTime=00:00:00\n"
            f"FileStorePath={directory / 'store'}\n"
            "UseDataDictionary=N\n"
            "BeginString=FIX.4.2\n"
            f"HeartBtInt={heartbeat}\n"
            f"SenderCompID={COMP_ID}\n" + sessions
        )
        self.log = directory / "ordermatch.log"

    def start(self, timeout: float = 10.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), str(self.config)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ordermatch exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"ordermatch did not listen on {self.port}")

    def stop(self) -> None:
        """`#quit` on its console; killed if it does not go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.write(b"#quit\n")
            process.stdin.flush()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def crash(self) -> None:
        """SIGKILL: the book is gone, the file store (sequence numbers) stays."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> OrderMatch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
