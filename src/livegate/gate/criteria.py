"""The go-live gate: PASS or FAIL, with the evidence and what to do, per criterion.

Six criteria, each judged only from the journal (ops/gate_evidence.py):
certification, full trading days, alerts, rollback, drills, release
controls. Thresholds come from a gate file (TOML) whose defaults are the
checklist's. Times are read on the gateway's clock, so a compressed day
counts as a day (docs/decisions/0008-go-live-gate.md).
"""

from __future__ import annotations

from livegate.drills.certify.matrix import GROUPS
from livegate.drills.faults import SCENARIOS as FAULT_DRILLS
from livegate.gate.days import judge_days
from livegate.gate.evidence import CAPS, Current, Evidence
from livegate.gate.rules import Criterion, GateFile, Verdict, when

_DAY_NS = 86_400 * 10**9


def evaluate(found: Evidence, current: Current, rules: GateFile, now_ns: int) -> Verdict:
    calendar = rules.calendar or current.calendar
    criteria = [
        certification(found, current),
        judge_days(found, calendar, rules, now_ns),
        alerts(found, calendar, now_ns),
        rollback(found, current, rules, now_ns),
        drills(found, current, rules, now_ns),
        release_controls(found, current, rules, now_ns),
    ]
    return Verdict(current.adapter, current.config_id, now_ns, criteria)


def _age_days(ts_ns: int, now_ns: int) -> float:
    return (now_ns - ts_ns) / _DAY_NS


def certification(found: Evidence, current: Current) -> Criterion:
    c = Criterion("certification", False)
    c.todo = (
        f"run `livegate certify MODULE:FACTORY --config FILE --profile P` for {current.adapter}"
        " (the whole matrix, no --only); it leaves its verdict for this folder"
    )
    mine = [
        (seq, e)
        for seq, e in found.of_kind("certify")
        if (e.adapter or e.name).split(" ")[0] == current.adapter_module
    ]
    if not mine:
        c.evidence.append(f"no certification of {current.adapter_module} in this journal")
        return c
    seq, cert = mine[-1]
    certified = cert.adapter or cert.name
    c.evidence.append(f"latest certify: seq {seq}, {certified}, {when(cert.ts_ns)}: {cert.detail}")
    if certified != current.adapter:
        c.evidence.append(f"stale: certified {certified}, this release runs {current.adapter}")
    elif cert.config_id != current.config_id:
        was = cert.config_id or "none (run without --config/--profile)"
        c.evidence.append(
            f"stale: config changed since certify (certified {was}, now {current.config_id})"
        )
    elif not cert.passed:
        c.evidence.append("it failed: see its report for the failing scenarios")
    elif missing := [g for g in GROUPS if g not in cert.covers]:
        c.evidence.append(f"groups not passed whole: {', '.join(missing)}")
    else:
        c.passed = True
        c.todo = ""
    return c


def alerts(found: Evidence, calendar: str, now_ns: int) -> Criterion:
    from livegate.observe.alerts import open_alerts

    c = Criterion("alerts", True)
    c.todo = "resolve the cause, then `livegate alerts --ack KEY --who --why` for what was raised"
    changes = [e for _, e in found.alerts]
    seq_of = {id(e): seq for seq, e in found.alerts}
    for key, change in open_alerts(changes).items():
        if change.level in ("P0", "P1"):
            c.passed = False
            c.evidence.append(
                f"open {change.level} {key} (seq {seq_of[id(change)]}, {when(change.ts_ns)}):"
                f" {change.text}"
            )
    last = _last_session(calendar, found, now_ns)
    if last is not None:
        opened, closed = last
        for seq, change in found.alerts:
            if change.state != "RAISED" or change.level not in ("P0", "P1"):
                continue
            if not opened <= change.ts_ns <= closed:
                continue
            acked = any(
                later.key == change.key and later.state == "ACKNOWLEDGED" and s > seq
                for s, later in found.alerts
            )
            if not acked:
                c.passed = False
                c.evidence.append(
                    f"{change.level} {change.key} raised in the last session (seq {seq},"
                    f" {when(change.ts_ns)}) and never acknowledged"
                )
    if c.passed:
        c.evidence.append(f"no open P0/P1; {len(found.alerts)} alert change(s) in the journal")
        c.todo = ""
    return c


def _last_session(calendar: str, found: Evidence, now_ns: int) -> tuple[int, int] | None:
    if not calendar or not found.first_ns:
        return None
    from livegate.risk.sessions import trading_sessions

    try:
        done = [
            s for s in trading_sessions(calendar, found.first_ns, now_ns) if s.close_ns <= now_ns
        ]
    except ValueError:
        return None
    return (done[-1].open_ns, done[-1].close_ns) if done else None


def rollback(found: Evidence, current: Current, rules: GateFile, now_ns: int) -> Criterion:
    c = Criterion("rollback", False)
    c.todo = (
        "run `livegate drill rollback --config FILE --profile P --evidence DIR`"
        f" (it must pass within {rules.rollback_max_age_days:g} days)"
    )
    drills_ = [(s, e) for s, e in found.of_kind("drill") if e.name == "rollback"]
    mine = [(s, e) for s, e in drills_ if e.config_id == current.config_id]
    if not mine:
        other = ""
        if drills_:
            seq, last = drills_[-1]
            other = f"; the last one (seq {seq}) was for config {last.config_id or '(its own)'}"
        c.evidence.append(f"no rollback drill for config {current.config_id}{other}")
        return c
    seq, drill = mine[-1]
    age = _age_days(drill.ts_ns, now_ns)
    c.evidence.append(
        f"rollback drill: seq {seq}, {when(drill.ts_ns)}, {age:.1f} days old: {drill.detail}"
    )
    if not drill.passed:
        c.evidence.append("it failed")
    elif age > rules.rollback_max_age_days:
        c.evidence.append(f"stale: older than {rules.rollback_max_age_days:g} days")
    else:
        c.passed, c.todo = True, ""
    return c


def drills(found: Evidence, current: Current, rules: GateFile, now_ns: int) -> Criterion:
    c = Criterion("drills", False)
    limit = rules.drills_max_age_days
    c.todo = (
        f"run `livegate certify ... --evidence DIR` (its faults group) for {current.adapter}"
        f" within {limit:g} days"
        + (", or `livegate drill all --evidence DIR`" if _is_sim(current) else "")
    )
    certs = [
        (s, e)
        for s, e in found.of_kind("certify")
        if (e.adapter or e.name) == current.adapter and e.passed and "faults" in e.covers
    ]
    if certs and _age_days(certs[-1][1].ts_ns, now_ns) <= limit:
        seq, cert = certs[-1]
        c.evidence.append(f"certify's fault scenarios passed: seq {seq}, {when(cert.ts_ns)}")
        c.passed, c.todo = True, ""
        return c
    if certs:
        c.evidence.append(
            f"certify's faults passed at seq {certs[-1][0]}, older than {limit:g} days"
        )
    if _is_sim(current):
        latest = {e.name: (s, e) for s, e in found.of_kind("drill") if e.name in FAULT_DRILLS}
        fresh = {
            name
            for name, (_, e) in latest.items()
            if e.passed and _age_days(e.ts_ns, now_ns) <= limit
        }
        missing = [d for d in FAULT_DRILLS if d not in fresh]
        if not missing:
            c.evidence.append(
                f"all {len(FAULT_DRILLS)} failure drills passed within {limit:g} days"
            )
            c.passed, c.todo = True, ""
            return c
        c.evidence.append(f"failure drills not passed within {limit:g} days: {', '.join(missing)}")
    if not certs:
        c.evidence.append(f"no passing fault evidence for {current.adapter}")
    return c


def _is_sim(current: Current) -> bool:
    return current.adapter_module.startswith("livegate.broker.sim")


def release_controls(found: Evidence, current: Current, rules: GateFile, now_ns: int) -> Criterion:
    c = Criterion("release controls", True)
    todo: list[str] = []
    plan = current.rollout
    if plan is None:
        c.passed = False
        c.evidence.append(current.rollout_error or "no rollout file in this release")
        todo.append("name a rollout file with capped stages in the profile (docs/release.md)")
    else:
        named = found.stages[-1][1].stage if found.stages else None
        stage = plan.stage(named)
        caps = {k: v for k, v in stage.limits().items() if k in CAPS}
        where = f"seq {found.stages[-1][0]}" if found.stages else "the first stage"
        if caps:
            shown = ", ".join(f"{k}={v}" for k, v in caps.items())
            c.evidence.append(f"stage {stage.name} ({where}): {shown}")
        else:
            c.passed = False
            c.evidence.append(f"stage {stage.name} ({where}) has no caps")
            todo.append("`livegate rollout STAGE --who --why` to a stage with caps")
    stops = [(s, e) for s, e in found.safe_stops if e.complete]
    if stops and _age_days(stops[-1][1].ts_ns, now_ns) <= rules.safe_stop_max_age_days:
        seq, stop = stops[-1]
        c.evidence.append(
            f"safe-stop exercised: seq {seq}, {when(stop.ts_ns)},"
            f" {stop.cancelled} cancelled in {stop.millis} ms"
        )
    else:
        c.passed = False
        c.evidence.append(
            f"no complete safe-stop within {rules.safe_stop_max_age_days:g} days"
            if stops
            else "the kill switch was never exercised"
        )
        todo.append("exercise `livegate safe-stop --who --why` outside trading hours")
    if rules.require_webhook and "webhook" not in current.alert_sinks:
        c.passed = False
        c.evidence.append(f"alert sinks: {', '.join(current.alert_sinks) or 'unknown'}; no webhook")
        todo.append("serve with --webhook URL (or the profile's webhook) so alerts reach a person")
    elif "webhook" in current.alert_sinks:
        c.evidence.append("alerts reach a webhook")
    c.todo = "; ".join(todo)
    return c
