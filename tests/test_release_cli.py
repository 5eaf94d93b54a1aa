"""Release controls the way the docs run them: a profile naming its risk, sessions and
rollout files, `livegate serve` on it, then `rollout`, `safe-stop`, `status` and
`config` from another shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from livegate.ops.snapshots import releases
from tests.test_operator_paths import NARROW, one_error_line

ROOT = Path(__file__).resolve().parent.parent
ENV = {**NARROW, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}

PROFILES = """\
[profiles.paper]
environment = "paper"
broker = "paper"
data_dir = "data"
risk = "risk.toml"
sessions = "sessions.toml"
rollout = "rollout.toml"
"""
RISK = """\
[limits]
max_order_qty = "1000"
"""
SESSIONS = 'override = "open"\n'
ROLLOUT = """\
timezone = "America/New_York"

[stages.pilot]
symbols = ["AAPL"]
max_orders_per_day = 50
max_gross_exposure = "100000"

[stages.ramp]
symbols = ["AAPL", "MSFT"]

[stages.full]
"""


def livegate(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livegate", *args],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def write_config(folder: Path, rollout: str = ROLLOUT, risk: str = RISK) -> None:
    (folder / "profiles.toml").write_text(PROFILES)
    (folder / "risk.toml").write_text(risk)
    (folder / "sessions.toml").write_text(SESSIONS)
    (folder / "rollout.toml").write_text(rollout)


def serve(folder: Path, *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "livegate", "serve", "--config", "profiles.toml",
         "--profile", "paper", "--metrics-port", "0", *extra],
        cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    banner = [process.stdout.readline(), process.stdout.readline()]
    assert banner[1].startswith("ready:"), (banner, process.stderr.read() if process.stderr else "")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def status(folder: Path) -> dict:  # type: ignore[type-arg]
    result = livegate("status", "--dir", "data", "--json", cwd=folder)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_bad_file_refuses_the_start_with_its_file_and_line(tmp_path: Path) -> None:
    write_config(
        tmp_path, rollout=ROLLOUT.replace("max_orders_per_day = 50", 'max_orders_per_day = "many"')
    )
    refused = livegate("serve", "--config", "profiles.toml", "--profile", "paper", cwd=tmp_path)
    assert refused.returncode == 2
    line = one_error_line(refused)
    assert f"{tmp_path / 'rollout.toml'}:5:" in line and "refusing to start" in line
    write_config(tmp_path, risk='[limits]\nmax_order_qty = "10"\nmax_ordr_qty = 5\n')
    line = one_error_line(
        livegate("serve", "--config", "profiles.toml", "--profile", "paper", cwd=tmp_path)
    )
    assert f"{tmp_path / 'risk.toml'}:3:" in line and "max_ordr_qty" in line
    assert not (tmp_path / "data" / "journal.sqlite").exists()  # nothing started


def test_rollout_safe_stop_status_and_config_rollback_beside_a_running_service(
    tmp_path: Path,
) -> None:
    write_config(tmp_path)
    service = serve(tmp_path, "--strategy", "tests.release_strategy:rest")
    try:
        deadline = time.monotonic() + 20
        while status(tmp_path)["open_orders"] < 12:
            assert time.monotonic() < deadline, status(tmp_path)
            time.sleep(0.2)
        shown = status(tmp_path)
        assert set(shown["loaded"]) == {"profiles", "risk", "sessions", "rollout"}
        assert shown["loaded"]["rollout"] == str(tmp_path / "rollout.toml")
        assert shown["rollout"]["stage"] == "pilot"
        assert shown["rollout"]["used"]["max_orders_per_day"] == 12

        view = livegate("rollout", "--dir", "data", cwd=tmp_path)
        assert view.returncode == 0, view.stderr
        assert "rollout stage pilot" in view.stdout and "max_orders_per_day" in view.stdout
        assert "pilot -> ramp -> full" in view.stdout
        typo = livegate("rollout", "rampp", "--dir", "data", "--who", "o", "--why", "w",
                        cwd=tmp_path)  # fmt: skip
        assert typo.returncode == 2 and "no stage 'rampp'" in one_error_line(typo)
        promoted = livegate("rollout", "ramp", "--dir", "data", "--who", "ops", "--why",
                            "pilot clean", cwd=tmp_path)  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        assert "rollout stage ramp: applied by the gateway (journal seq" in promoted.stdout

        stopped = livegate("safe-stop", "--dir", "data", "--who", "ops", "--why", "drill",
                           cwd=tmp_path)  # fmt: skip
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "HALTED and applied by the gateway" in stopped.stdout
        assert "12 cancels sent, 0 orders still open" in stopped.stdout
        assert " ms from the command" in stopped.stdout
        again = livegate("safe-stop", "--dir", "data", "--who", "ops", "--why", "twice",
                         cwd=tmp_path)  # fmt: skip
        assert again.returncode == 0 and "0 cancels sent" in again.stdout
        assert status(tmp_path)["trading_state"] == "HALTED"
    finally:
        stop(service)
    # Stopped: the stage is read from the journal, a safe-stop is queued (exit 3).
    view = livegate("rollout", "--dir", "data", cwd=tmp_path)
    assert "rollout stage ramp" in view.stdout
    queued = livegate("safe-stop", "--dir", "data", "--who", "o", "--why", "w", "--wait", "1",
                      cwd=tmp_path)  # fmt: skip
    assert queued.returncode == 3 and "no gateway is running" in queued.stderr

    # A second release with a tighter limit; then roll back to the first.
    original = (tmp_path / "risk.toml").read_text()
    (tmp_path / "risk.toml").write_text('[limits]\nmax_order_qty = "5"\n')
    stop(serve(tmp_path))
    listed = livegate("config", "list", "--dir", "data", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    ids = [r.record.config_id for r in sorted(releases(tmp_path / "data"), key=lambda r: r.last_ns)]
    assert len(ids) == 2 and all(i in listed.stdout for i in ids)
    changed = livegate("config", "diff", "previous", "latest", "--dir", "data", cwd=tmp_path)
    assert '-max_order_qty = "1000"' in changed.stdout
    assert '+max_order_qty = "5"' in changed.stdout
    shown = livegate("config", "show", ids[0][:6], "--dir", "data", cwd=tmp_path)
    assert 'max_order_qty = "1000"' in shown.stdout
    back = livegate("config", "rollback", ids[0], "--dir", "data", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "risk.toml").read_text() == original
    assert "livegate serve --config" in back.stdout and "--profile paper" in back.stdout
    assert (tmp_path / "data" / "snapshots" / ids[1] / "risk.toml").read_text().endswith('"5"\n')
    unknown = livegate("config", "rollback", "zzzz", "--dir", "data", cwd=tmp_path)
    assert unknown.returncode == 2 and "matches no release" in one_error_line(unknown)
