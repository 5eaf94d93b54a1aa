"""`livegate gate DIR`: the go-live decision, PASS or FAIL with reasons (docs/go-live.md)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from livegate.cli.output import fail, say


def gate_command(
    directory: Annotated[
        Path | None, typer.Argument(help="The gateway's data folder.", show_default=False)
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--dir", help="The data folder (instead of the argument).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Profiles file: judge the release it runs.")
    ] = None,
    profile_name: Annotated[
        str | None, typer.Option("--profile", help="A profile of --config.")
    ] = None,
    gate_file: Annotated[
        Path | None, typer.Option("--gate", help="Gate thresholds (TOML); default: the profile's.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The verdict as JSON on stdout.")] = False,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write the verdict as an HTML page here.")
    ] = None,
    who: Annotated[
        str | None, typer.Option("--who", help="Who asks (journaled); default: your user name.")
    ] = None,
) -> None:
    """Evaluate the go-live gate from the folder's journal; exit 0 on PASS, 1 on FAIL.

    Criteria: certification, full trading days, alerts, rollback, drills, release
    controls. Without --config/--profile it judges the release last served there.
    The verdict is journaled (who asked, when, the result, the evidence).
    """
    from livegate.cli.datadir import DEFAULT_DIR, journal_of
    from livegate.gate.report import as_html, as_lines
    from livegate.gate.report import as_json as verdict_json
    from livegate.gate.run import record_verdict, run_gate
    from livegate.ops.profiles import ProfileError, load_profiles

    if directory is not None and data_dir is not None and directory != data_dir:
        fail(f"two data folders given: {directory} and --dir {data_dir}")
    if (config is None) != (profile_name is None):
        fail("--config and --profile go together")
    profile = None
    if config is not None and profile_name is not None:
        try:
            profiles = load_profiles(config)
        except ProfileError as exc:
            fail(str(exc))
        if profile_name not in profiles:
            fail(f"{config}: no profile {profile_name!r} (it has: {', '.join(profiles)})")
        profile = profiles[profile_name]
    folder = directory or data_dir or (Path(profile.data_dir) if profile else DEFAULT_DIR)
    journal_of(folder)
    try:
        verdict, offline = run_gate(folder, profile, gate_file)
    except ProfileError as exc:
        fail(str(exc))
    asker = who or _user()
    recorded = record_verdict(folder, verdict, asker, offline)
    if as_json:
        typer.echo(json.dumps(verdict_json(verdict, str(folder), recorded), indent=2))
    else:
        for line in as_lines(verdict, str(folder)):
            say(line)
        say(f"verdict {recorded} (asked by {asker})")
    if html_file is not None:
        html_file.write_text(as_html(verdict, str(folder)), encoding="utf-8")
        if not as_json:
            say(f"html: {html_file}")
    if not verdict.passed:
        raise typer.Exit(1)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
