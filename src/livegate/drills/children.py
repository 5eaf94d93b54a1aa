"""Child processes that never outlive us: sim brokers and FIX counterparties.

A drill or a test that crashes, is interrupted or is SIGKILLed must not
leave a broker process holding its ports for hours. Two guards, because
neither covers every way a parent ends: the kernel's parent-death signal
(Linux: the child is SIGKILLed when we die, even by SIGKILL), and an
`atexit` sweep for an orderly exit that skipped a `stop()`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import weakref
from collections.abc import Sequence
from typing import Any

_alive: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()

# Run as the child before it becomes the real program: ask the kernel for
# SIGKILL when the parent dies (PR_SET_PDEATHSIG = 1), then exec. Done in a
# launcher rather than in preexec_fn, which is unsafe in a process with
# threads (the journal writer is one).
_LAUNCHER = """
import ctypes, ctypes.util, os, signal, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the parent died before we asked: do not run orphaned
os.execv(sys.argv[2], sys.argv[2:])
"""


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen, with the child bound to this process's life.

    The death signal follows the thread that forked: call this from the
    main thread (or one that lives as long as the child should).
    """
    argv = list(command)
    if sys.platform.startswith("linux"):
        program = argv[0] if os.path.sep in argv[0] else shutil.which(argv[0]) or argv[0]
        argv = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), program, *argv[1:]]
    process: subprocess.Popen[bytes] = subprocess.Popen(argv, **popen)
    _alive.add(process)
    return process


@atexit.register
def _sweep() -> None:
    for process in list(_alive):
        if process.poll() is None:
            process.kill()
            process.wait()
