"""`livegate sim-broker` as a drill's child process, and waiting for a condition."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livegate.drills.children import spawn
from livegate.sim import control


class SimProcess:
    """`livegate sim-broker` as a child process, on fixed ports once chosen."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = directory
        self.key = key
        self.port = 0
        self.control_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.strict = False

    def start(self, forget_open_orders: bool = False, strict: bool | None = None) -> None:
        """Start it (again, on the same ports once chosen); `strict` sticks across restarts."""
        if strict is not None:
            self.strict = strict
        command = [
            sys.executable, "-m", "livegate", "sim-broker",
            "--dir", str(self.directory),
            "--port", str(self.port), "--control-port", str(self.control_port),
            "--heartbeat", "0.2",
        ]  # fmt: skip
        if forget_open_orders:
            command.append("--forget-open-orders")
        if self.strict:
            command.append("--strict")
        env = {**os.environ, "LIVEGATE_SIM_BROKER_KEYS": self.key}
        self.process = spawn(
            command,
            stdout=subprocess.PIPE,
            stderr=(self.directory.parent / "sim-broker.log").open("ab"),
            env=env,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if not first:
            raise RuntimeError("the sim broker did not start (see sim-broker.log)")
        ports = json.loads(first)
        self.port, self.control_port = ports["port"], ports["control_port"]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    async def control(self, op: str, **args: Any) -> Any:
        return await control("127.0.0.1", self.control_port, op, **args)


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
