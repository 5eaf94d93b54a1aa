"""What an operator's button does: the same control commands the CLI sends.

The console never writes the journal: a command goes into the data folder's
control folder and the running gateway journals it with `who` (the logged-in
user) and `why`. Each action waits for the gateway's word and says what it
got: applied at a journal seq, refused with the gateway's reason, or queued
because no gateway confirmed. Every attempt, refused ones included, is
appended to the console's audit file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from livegate.engine.control import (
    write_alert_ack_command,
    write_operator_action_command,
    write_safe_stop_command,
    write_trading_state_command,
)
from livegate.model.diffs import Resolution
from livegate.ops.commands import Sent, ask, send_and_wait

AUDIT_FILE = "console-audit.jsonl"
STATES = ("ACTIVE", "REDUCING", "HALTED")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str


class ActionError(ValueError):
    """The request itself is wrong (an unknown state, no reason given); nothing was sent."""


@dataclass
class Actions:
    directory: Path
    wait_s: float = 10.0

    @property
    def control(self) -> Path:
        return self.directory / "control"

    def run(self, name: str, who: str, why: str, form: dict[str, str]) -> Outcome:
        handlers: dict[str, Callable[[str, str, dict[str, str]], Outcome]] = {
            "trading-state": self._trading_state,
            "safe-stop": self._safe_stop,
            "alert-ack": self._alert_ack,
            "reconcile": self._reconcile,
            "diff-ack": self._diff_ack,
            "diff-resolve": self._diff_resolve,
            "fallback": self._fallback,
            "rollback": self._rollback,
        }
        handler = handlers.get(name)
        if handler is None:
            raise ActionError(f"no action {name!r}")
        if not why.strip():
            raise ActionError("say why: every action is journaled with its reason")
        return handler(who, why.strip(), form)

    # -- through the control folder, confirmed by a journal entry ------------------------
    def _confirmed(self, kind: str, what: str, send: Callable[[], str]) -> Outcome:
        sent: Sent = send_and_wait(self.directory, kind, send, self.wait_s)
        if sent.seq is not None:
            return Outcome(True, f"{what}: applied by the gateway (journal seq {sent.seq})")
        if not sent.running:
            return Outcome(False, f"{what}: no gateway is running; queued, applied when it starts")
        return Outcome(False, f"{what}: the gateway did not confirm within {self.wait_s:g}s;"
                       " the command stays queued")  # fmt: skip

    def _trading_state(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        state = form.get("state", "").upper()
        if state not in STATES:
            raise ActionError(f"{state!r} is not a trading state: choose {', '.join(STATES)}")
        return self._confirmed(
            "trading_state", f"trading state {state}",
            lambda: write_trading_state_command(self.control, state, who, why).command_id,
        )  # fmt: skip

    def _safe_stop(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        flatten = form.get("flatten") == "1"
        what = "safe-stop with flatten" if flatten else "safe-stop"
        return self._confirmed(
            "safe_stop", what,
            lambda: write_safe_stop_command(self.control, who, why, flatten).command_id,
        )  # fmt: skip

    def _alert_ack(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        key = form.get("key", "")
        if not key:
            raise ActionError("which alert? (no key given)")
        return self._confirmed(
            "alert", f"acknowledgement of {key}",
            lambda: write_alert_ack_command(self.control, key, who, why).command_id,
        )  # fmt: skip

    # -- answered by the running service -------------------------------------------------
    def _answered(self, what: str, op: str, **fields: object) -> Outcome:
        answer = ask(self.directory, op, self.wait_s, **fields)
        if answer is None:
            return Outcome(False, f"{what}: no running gateway answered within {self.wait_s:g}s")
        if not answer.get("ok"):
            return Outcome(False, f"{what} refused: {answer.get('error')}")
        return Outcome(True, f"{what}: done by the gateway, journaled with who and why")

    def _reconcile(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        answer = ask(self.directory, "run", self.wait_s)
        if answer is None:
            return Outcome(False, f"reconcile: no running gateway answered within {self.wait_s:g}s")
        if not answer.get("ok"):
            return Outcome(False, f"reconcile refused: {answer.get('error')}")
        opened = ", ".join(answer.get("opened") or []) or "none"
        return Outcome(
            True, f"reconciled: {answer.get('findings', 0)} difference(s); new diffs: {opened}"
        )

    def _diff_ack(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        diff_id = form.get("diff_id", "")
        return self._answered(f"acknowledge {diff_id}", "ack", diff_id=diff_id, who=who, why=why)

    def _diff_resolve(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        diff_id, action = form.get("diff_id", ""), form.get("action", "")
        if action not in Resolution.__members__:
            valid = ", ".join(r.value for r in Resolution if r is not Resolution.CLEARED)
            raise ActionError(f"{action!r} is not a resolution: choose {valid}")
        return self._answered(
            f"resolve {diff_id} ({action})", "resolve",
            diff_id=diff_id, action=action, who=who, why=why,
        )  # fmt: skip

    def _fallback(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        venue = form.get("venue", "")
        if venue not in ("paper", "live"):
            raise ActionError(f"fallback to {venue!r}: choose paper or live")
        return self._answered(f"fallback to {venue}", "fallback", action=venue, who=who, why=why)

    def _rollback(self, who: str, why: str, form: dict[str, str]) -> Outcome:
        """Files only, as `livegate config rollback`: the gateway takes them at its restart."""
        from livegate.ops.snapshots import SnapshotError, rollback

        wanted = form.get("config_id", "")
        try:
            result = rollback(self.directory, wanted, note=f"by {who}: {why}")
        except (SnapshotError, OSError) as exc:
            return Outcome(False, f"rollback to {wanted!r}: {exc}")
        detail = (
            f"files of config {result.restored.config_id} written back (the previous ones kept"
            f" as {result.saved_as}); restart on them: {result.restart}"
        )
        journaled = self._confirmed(
            "operator_action", "the rollback's record",
            lambda: write_operator_action_command(
                self.control, "config-rollback", who, why, detail
            ).command_id,
        )  # fmt: skip
        return Outcome(True, f"{detail}. {journaled.text}")

    # -- the audit file ----------------------------------------------------------------------
    def audit(self, who: str, action: str, why: str, outcome: str, ok: bool) -> None:
        line = {"ts_ns": time.time_ns(), "who": who, "action": action, "why": why,
                "ok": ok, "outcome": outcome}  # fmt: skip
        with (self.directory / AUDIT_FILE).open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
