"""`livegate certify`: every adapter livegate ships passes, and each broken adapter of the
gallery fails, naming the scenario and the evidence. A kit that passes a broken adapter
is the defect this exists to prevent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from livegate.drills.certify.runner import FAILED, NOT_APPLICABLE, PASSED, Certificate, certify

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "COLUMNS": "40", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}


def run(spec: str, directory: Path, only: set[str] | None = None) -> Certificate:
    return asyncio.run(certify(spec, directory, only))


def outcomes(certificate: Certificate) -> dict[str, str]:
    return {o.id: o.status for o in certificate.outcomes}


@pytest.mark.parametrize(
    ("spec", "not_applicable"),
    [
        (
            "livegate.drills.certify.shipped:paper",
            {"session.bad-key", "rejects.throttling"},
        ),
        ("livegate.drills.certify.shipped:sim", set()),
    ],
)
def test_every_shipped_adapter_passes_the_whole_matrix(
    spec: str, not_applicable: set[str], tmp_path: Path
) -> None:
    certificate = run(spec, tmp_path)
    failed = {o.id: o.detail for o in certificate.outcomes if o.status == FAILED}
    assert not failed
    assert certificate.passed
    na = {o.id for o in certificate.outcomes if o.status == NOT_APPLICABLE}
    assert na == not_applicable  # each with its reason, never counted as passed
    assert all(o.detail for o in certificate.outcomes if o.status == NOT_APPLICABLE)
    assert len(certificate.outcomes) >= 28
    print(f"certify {spec}: {certificate.seconds:.1f}s")


def test_the_fix_adapter_passes_against_ordermatch_with_its_limits_not_applicable(
    tmp_path: Path,
) -> None:
    from livegate.drills.ordermatch import OrderMatchMissing, find_binary

    try:
        find_binary(tmp_path / "binary-check")
    except OrderMatchMissing as exc:
        if os.environ.get("CI"):
            raise  # CI installs it: missing there is a failure, not a skip
        pytest.skip(str(exc))
    certificate = run("livegate.drills.certify.shipped_fix:fix", tmp_path)
    assert certificate.passed, [o.detail for o in certificate.outcomes if o.status == FAILED]
    status = outcomes(certificate)
    for scenario in ("rejects.off-tick", "orders.market", "session.bad-key"):
        assert status[scenario] == NOT_APPLICABLE  # what ordermatch cannot do, with reasons
    for scenario in ("recovery.missed-while-down", "ambiguous.lost-place-answer",
                     "recovery.restart-open-orders", "orders.partial-then-full"):  # fmt: skip
        assert status[scenario] == PASSED
    print(f"certify fix: {certificate.seconds:.1f}s")


def test_the_worked_example_passes_with_what_it_cannot_do_not_applicable(tmp_path: Path) -> None:
    certificate = run(f"{ROOT / 'examples' / 'vendor_sdk_adapter.py'}:certify_target", tmp_path)
    assert certificate.passed, [o.detail for o in certificate.outcomes if o.status == FAILED]
    status = outcomes(certificate)
    assert status["orders.market"] == NOT_APPLICABLE  # it takes limit orders only
    assert status["rejects.insufficient-funds"] == PASSED
    assert status["ambiguous.lost-place-answer"] == PASSED  # resolved from its order list


GALLERY = {
    # broken adapter: (a scenario that must fail, words its evidence must hold)
    "resends_under_new_id": ("orders.limit-buy", "an id we never sent: LG"),
    "drops_fills_on_reconnect": ("recovery.missed-while-down", "position quantity differs"),
    "cumulative_goes_backwards": ("orders.partial-then-full", "STALE_REPORT"),
    "cancel_not_idempotent": ("orders.cancel-finished", "KeyError"),
    "forgets_ids_on_restart": ("recovery.restart-open-orders", "can be cancelled"),
    "network_error_after_sending": ("orders.limit-buy", "the broker still has it working"),
    # Which order first shows the second copy of a fill depends on when it lands
    # (a loaded machine lets a market order's verdict run before it): any of these.
    # On a full order the copy is an OVERFILL; on one still partly open it fits, is
    # counted, and reconciliation names it: a fill the broker does not list.
    "fill_twice_under_two_ids": (
        ("orders.market", "orders.limit-buy", "orders.partial-then-full"),
        ("OVERFILL", "a fill we counted that the broker does not list"),
    ),
}


@pytest.mark.parametrize("broken", sorted(GALLERY))
def test_certify_fails_each_broken_adapter_naming_the_scenario_and_evidence(
    broken: str, tmp_path: Path
) -> None:
    scenarios, words = GALLERY[broken]
    if isinstance(scenarios, str):
        scenarios = (scenarios,)
    if isinstance(words, str):
        words = (words,)
    # The groups of the scenarios that must catch it (the whole matrix against a broken
    # adapter waits out every scenario it breaks: minutes, for the same verdict).
    groups = {s.split(".")[0] for s in scenarios}
    certificate = run(f"tests.broken_adapters:{broken}", tmp_path, groups)
    assert not certificate.passed
    failed = {o.id: o for o in certificate.outcomes if o.status == FAILED}
    caught = [s for s in scenarios if s in failed and any(w in failed[s].detail for w in words)]
    assert caught, {s: failed[s].detail if s in failed else "passed" for s in scenarios}
    assert failed[caught[0]].evidence  # the client ids (and journal seqs) to look at


def test_the_command_writes_json_junit_and_html_and_leaves_evidence(tmp_path: Path) -> None:
    from .helpers import start_and_stop

    data = tmp_path / "desk"
    data.mkdir()

    start_and_stop(data)
    result = subprocess.run(
        [sys.executable, "-m", "livegate", "certify", "tests.broken_adapters:cancel_not_idempotent",
         "--only", "orders", "--report", "report", "--evidence", "desk"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "FAIL orders.cancel-finished" in result.stdout
    assert "certify FAIL" in result.stdout and "ERROR" not in result.stdout + result.stderr
    report = json.loads((tmp_path / "report" / "certify.json").read_text())
    assert report["passed"] is False and report["adapter"] == "paper"
    assert {o["group"] for o in report["outcomes"]} == {"orders"}
    suite = ET.parse(tmp_path / "report" / "certify-junit.xml").getroot()
    failures = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failures == ["orders.cancel-finished"]
    assert "FAIL" in (tmp_path / "report" / "certify.html").read_text()

    start_and_stop(data)  # the gateway journals the certificate, for the gate
    from livegate.journal.sqlite import events_of_kinds

    evidence = events_of_kinds(data / "journal.sqlite", "evidence")
    assert [(e.kind, e.passed) for e in evidence] == [("certify", False)]  # type: ignore[union-attr]
    bad = subprocess.run([sys.executable, "-m", "livegate", "certify", "no.such:it"],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
