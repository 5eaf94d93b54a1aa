"""QuickFIX's example exchanges run as local FIX counterparties.

Debian's libquickfix-doc ships them prebuilt (and gzipped) beside their
sources. `ordermatch` is a FIX 4.2 acceptor matching DAY limit orders,
with sessions BUYER and SELLER against ORDERMATCH. It reads console
commands on stdin (so stdin stays an open pipe; `#quit` stops it) and
keeps its sequence numbers in a file store, so a restart keeps them and
loses only the book. `executor` fills every limit order at once at its
price, in any FIX version from 4.0 to 5.0: the FIX 4.4 counterparty.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from livegate.drills.children import spawn

EXAMPLES = Path("/usr/share/doc/libquickfix-doc/examples")
DEBIAN_BINARIES = {
    "ordermatch": EXAMPLES / "ordermatch/.libs/ordermatch.gz",
    "executor": EXAMPLES / "executor/C++/.libs/executor.gz",
}
SESSIONS = ("BUYER", "SELLER")
COMP_ID = "ORDERMATCH"


class OrderMatchMissing(RuntimeError):
    pass


def find_binary(work_dir: Path, example: str = "ordermatch") -> Path:
    """The example's executable: $LIVEGATE_ORDERMATCH (or _EXECUTOR), or Debian's, unpacked."""
    configured = os.environ.get(f"LIVEGATE_{example.upper()}")
    if configured:
        return Path(configured)
    packaged = DEBIAN_BINARIES[example]
    if not packaged.exists():
        raise OrderMatchMissing(
            f"{packaged} not found: install Debian's libquickfix-doc and libquickfix17"
            f" (apt-get install libquickfix-doc libquickfix17), or set LIVEGATE_{example.upper()}"
        )
    target = work_dir / example
    if not target.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(packaged) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out)
        target.chmod(0o755)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrderMatch:
    """One ordermatch (or executor) process on a loopback port; restartable with its store."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        heartbeat: int = 30,
        example: str = "ordermatch",
        begin_string: str = "FIX.4.2",
        comp_id: str = COMP_ID,
        sessions: tuple[str, ...] = SESSIONS,
    ) -> None:
        directory = directory.resolve()  # the process runs in it: relative paths would move
        self.directory = directory
        self.port = port or free_port()
        self.example = example
        self.comp_id = comp_id
        self.binary = find_binary(directory, example)
        self.process: subprocess.Popen[bytes] | None = None
        self.config = directory / f"{example}.cfg"
        each = "".join(f"\n[SESSION]\nTargetCompID={name}\n" for name in sessions)
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
            f"BeginString={begin_string}\n"
            f"HeartBtInt={heartbeat}\n"
            f"SenderCompID={comp_id}\n" + each
        )
        self.log = directory / f"{example}.log"

    def start(self, timeout: float = 10.0) -> None:
        with self.log.open("ab") as log:
            self.process = spawn(
                [str(self.binary), str(self.config)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.example} exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.example} did not listen on {self.port}")

    def stop(self) -> None:
        """`#quit` on its console (executor: SIGINT); killed if it does not go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            if self.example == "ordermatch":
                process.stdin.write(b"#quit\n")
                process.stdin.flush()
            else:
                process.send_signal(signal.SIGINT)
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

    def pause(self) -> None:
        """SIGSTOP: it stops answering and heartbeating, its sockets stay open (a stall)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> OrderMatch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
