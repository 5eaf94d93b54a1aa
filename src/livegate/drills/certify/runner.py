"""Run the matrix against one adapter: each scenario on a bench of its own, timed,
with its checks and evidence, then one certificate for the lot."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from livegate.drills.certify.harness import Bench, Check, NotApplicable, as_target
from livegate.drills.certify.matrix import matrix
from livegate.drills.certify.scenarios import Scenario
from livegate.drills.certify.target import CertifyEnv, Factory
from livegate.ops.config_files import adapter_version

PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not applicable"


@dataclass
class Outcome:
    id: str
    group: str
    criterion: str
    critical: bool
    status: str
    detail: str
    seconds: float
    checks: list[Check] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


@dataclass
class Certificate:
    factory: str
    adapter: str
    adapter_module: str
    adapter_version: str
    capabilities: dict[str, bool]
    config_id: str
    started_ns: int
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every applicable critical scenario passed (and at least one applied)."""
        critical = [o for o in self.outcomes if o.critical and o.status != NOT_APPLICABLE]
        return bool(critical) and all(o.status == PASSED for o in critical)

    def covers(self, whole: set[str]) -> tuple[str, ...]:
        """The groups, among those that ran `whole` (not cut by --only), with at least
        one scenario passed and none failed: what the go-live gate may count."""
        found = []
        for group in sorted(whole):
            mine = [o for o in self.outcomes if o.group == group]
            passed = any(o.status == PASSED for o in mine)
            if passed and not any(o.status == FAILED for o in mine):
                found.append(group)
        return tuple(found)

    def counts(self) -> dict[str, int]:
        out = {PASSED: 0, FAILED: 0, NOT_APPLICABLE: 0}
        for o in self.outcomes:
            out[o.status] += 1
        return out


def load_factory(spec: str) -> Factory:
    """`MODULE:FACTORY` (importable, or from the current folder) or `PATH.py:FACTORY`."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise ValueError(f"{spec!r}: expected MODULE:FACTORY or PATH.py:FACTORY")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ValueError(f"{spec!r}: no such file {path}")
            loaded = importlib.util.spec_from_file_location(path.stem, path)
            assert loaded is not None and loaded.loader is not None
            module = importlib.util.module_from_spec(loaded)
            sys.modules[path.stem] = module
            loaded.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # as `python -m` would
            module = importlib.import_module(where)
        factory = getattr(module, attr)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise ValueError(f"{spec!r}: {exc}") from None
    if not callable(factory):
        raise ValueError(f"{spec!r} is not callable")
    return factory  # type: ignore[no-any-return]


async def certify(
    spec: str,
    directory: Path,
    only: set[str] | None = None,
    settings: dict[str, object] | None = None,
    config_id: str = "",
    progress: Callable[[Outcome], None] | None = None,
    factory: Factory | None = None,
) -> Certificate:
    made = factory or load_factory(spec)
    probe_dir = directory / "probe"
    probe_dir.mkdir(parents=True, exist_ok=True)
    probe = as_target(made(CertifyEnv(probe_dir, False, dict(settings or {}))))
    if probe is None:
        raise ValueError(f"{spec}: the factory built nothing")
    adapter = probe.adapter
    certificate = Certificate(
        spec,
        adapter.name,
        type(adapter).__module__,
        adapter_version(adapter),
        msgspec.to_builtins(adapter.capabilities),
        config_id,
        time.time_ns(),
    )
    if probe.close is not None:
        closing = probe.close()
        if asyncio.iscoroutine(closing):
            await closing
    started = time.monotonic()
    for scenario in matrix(probe.time_in_force):
        if only and scenario.group not in only and scenario.id not in only:
            continue
        outcome = await run_scenario(scenario, made, directory / scenario.id, settings, spec)
        certificate.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    certificate.seconds = time.monotonic() - started
    return certificate


async def run_scenario(
    scenario: Scenario,
    factory: Factory,
    directory: Path,
    settings: dict[str, object] | None,
    spec: str = "",
) -> Outcome:
    bench = Bench(factory, directory, dict(settings or {}), spec=spec)
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    status, detail = PASSED, ""
    try:
        await asyncio.wait_for(scenario.run(bench), 120)
        failed = [c for c in bench.checks if not c.ok]
        if failed:
            status = FAILED
            detail = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        elif not bench.checks:
            status, detail = FAILED, "the scenario checked nothing"
    except NotApplicable as exc:
        status, detail = NOT_APPLICABLE, str(exc)
    except Exception as exc:  # an adapter's exception is a finding, not a crash of the kit
        status, detail = FAILED, f"{type(exc).__name__}: {exc}"
    if status == FAILED and bench.gateway is not None and bench.gateway.running:
        with contextlib.suppress(Exception):  # evidence: where in the journal to look
            bench.evidence.append(bench.seqs(*bench.evidence))
    try:
        await bench.close()
    except Exception as exc:
        if status == PASSED:
            status, detail = FAILED, f"could not stop cleanly: {exc!r}"
    return Outcome(
        scenario.id,
        scenario.group,
        scenario.criterion,
        scenario.critical,
        status,
        detail,
        time.monotonic() - started,
        bench.checks,
        bench.evidence,
    )
