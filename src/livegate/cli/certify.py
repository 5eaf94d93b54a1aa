"""`livegate certify MODULE:FACTORY`: the conformance matrix against an adapter, as a report."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from livegate.cli.output import console, fail, say

if TYPE_CHECKING:
    from livegate.drills.certify.runner import Outcome


def certify_command(
    factory: Annotated[
        str,
        typer.Argument(help="MODULE:FACTORY, a callable returning the adapter (docs/certify.md)."),
    ],
    config: Annotated[
        Path | None, typer.Option("--config", help="Profiles file: the factory gets the profile.")
    ] = None,
    profile_name: Annotated[
        str | None, typer.Option("--profile", help="A profile of --config.")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="A group (or scenario id); repeatable.")
    ] = None,
    report: Annotated[
        Path, typer.Option("--report", help="Where the report and each scenario's files go.")
    ] = Path("livegate-certify"),
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="A gateway's data folder: it journals the verdict."),
    ] = None,
) -> None:
    """Run the certification matrix through the real Gateway against an adapter.

    Prints each scenario as it ends, then writes certify.json, certify-junit.xml
    and certify.html to --report. Exit 0 only when every applicable critical
    scenario passed; 1 otherwise.
    """
    from livegate.drills.certify.matrix import GROUPS, matrix
    from livegate.drills.certify.report import write_reports
    from livegate.drills.certify.runner import FAILED, PASSED, certify, load_factory

    settings: dict[str, Any] = {}
    config_id = ""
    if (config is None) != (profile_name is None):
        fail("--config and --profile go together")
    if config is not None and profile_name is not None:
        settings, config_id, profile_dir = _profile(config, profile_name)
        evidence = evidence or profile_dir
    known = set(GROUPS) | {s.id for s in matrix(("DAY", "GTC", "IOC"))}
    unknown = [g for g in only or [] if g not in known]
    if unknown:
        fail(f"--only {unknown[0]!r}: choose a group ({', '.join(GROUPS)}) or a scenario id")
    if evidence is not None:
        from livegate.cli.datadir import journal_of

        journal_of(evidence)
    try:
        made = load_factory(factory)
    except ValueError as exc:
        fail(str(exc))
    runs = report / "runs" / time.strftime("%Y%m%d-%H%M%S")
    # The scenarios provoke errors on purpose (refused keys, lost answers): their log
    # lines are the gateway doing its job, not news for the person running certify.
    logging.getLogger("livegate").setLevel(logging.CRITICAL)
    marks = {PASSED: "[green]pass[/]", FAILED: "[red]FAIL[/]"}

    def show(outcome: Outcome) -> None:
        mark = marks.get(outcome.status, "[dim]n/a[/]")
        console.print(f"{mark} {outcome.id} ({outcome.seconds:.2f}s)", highlight=False)
        if outcome.status != PASSED and outcome.detail:
            console.print(f"     {outcome.detail}", highlight=False, markup=False)

    with console.status("certifying…"):
        try:
            certificate = asyncio.run(
                certify(factory, runs, set(only or []) or None, settings, config_id, show, made)
            )
        except ValueError as exc:
            fail(str(exc))
    paths = write_reports(certificate, report)
    counts = certificate.counts()
    verdict = "PASS" if certificate.passed else "FAIL"
    say(
        f"certify {verdict}: {certificate.adapter} ({certificate.adapter_module}"
        f" {certificate.adapter_version}): {counts['passed']} passed, {counts['failed']} failed,"
        f" {counts['not applicable']} not applicable in {certificate.seconds:.1f}s"
    )
    for kind, path in paths.items():
        say(f"  {kind}: {path}")
    if evidence is not None:
        from livegate.engine.control import write_evidence_command

        write_evidence_command(
            evidence / "control", "certify",
            f"{certificate.adapter_module} {certificate.adapter_version}", certificate.passed,
            int(certificate.seconds * 1000), config_id,
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['not applicable']}"
            f" not applicable; {paths['json']}",
            f"{certificate.adapter_module} {certificate.adapter_version}",
            certificate.covers(set(GROUPS) if not only else set(only) & set(GROUPS)),
        )  # fmt: skip
        say(f"  evidence left for the gateway on {evidence}")
    if not certificate.passed:
        raise typer.Exit(1)


def _profile(config: Path, name: str) -> tuple[dict[str, Any], str, Path | None]:
    import msgspec

    from livegate.ops.config_files import load_config
    from livegate.ops.profiles import ProfileError, load_profiles

    try:
        profiles = load_profiles(config)
        if name not in profiles:
            raise ProfileError(f"{config}: no profile {name!r} (it has: {', '.join(profiles)})")
        profile = profiles[name]
        loaded = load_config(profile)
    except ProfileError as exc:
        fail(str(exc))
    data_dir = Path(profile.data_dir)
    found = data_dir if (data_dir / "journal.sqlite").exists() else None
    return msgspec.to_builtins(profile), loaded.config_id, found
