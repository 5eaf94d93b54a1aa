"""The data folder: one way to name it, checked before anything is written.

Every command takes the folder as `--dir` (default `livegate-service`, where
`livegate serve` keeps its files). The older form, the folder as the first
argument, still works with a deprecation warning. A folder without a
journal is refused by name: a typo must never look like success, least of
all for the kill switch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from livegate.cli.output import fail, warn

DEFAULT_DIR = Path("livegate-service")
JOURNAL = "journal.sqlite"

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help=f"The gateway's data folder (its journal); default: {DEFAULT_DIR}.",
        show_default=False,
    ),
]
LegacyDirArgument = Annotated[
    Path | None,
    typer.Argument(help="Deprecated: the data folder; use --dir.", show_default=False),
]


def choose_dir(legacy: Path | None, option: Path | None) -> Path:
    """The folder from --dir, or from the deprecated positional form."""
    if legacy is not None:
        if option is not None and option != legacy:
            fail(f"two data folders given: {legacy} and --dir {option}; use --dir only")
        warn(f"the data folder as an argument is deprecated: use --dir {legacy}")
        return legacy
    return option if option is not None else DEFAULT_DIR


def journal_of(directory: Path) -> Path:
    """The folder's journal, refusing a folder that is not a livegate data folder."""
    if not directory.is_dir():
        fail(f"{directory}: no such folder (not a livegate data folder); check the path")
    journal = directory / JOURNAL
    from livegate.journal.locate import exists

    if not exists(journal):
        fail(
            f"{directory} is not a livegate data folder: it has no {JOURNAL}"
            " (check the path, or start the gateway there first)"
        )
    return journal


WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for the running gateway to confirm (0: do not wait).",
    ),
]

NOT_CONFIRMED = 3  # exit code: the command is queued, but no gateway said it applied it


def send_and_confirm(
    directory: Path, kind: str, send: Callable[[], str], wait: float, what: str
) -> int:
    """Leave a command for the gateway (`send` returns its id) and wait until the
    gateway journals an event of `kind` carrying that id: its journal seq, or exit 3."""
    from livegate.ops.commands import send_and_wait

    sent = send_and_wait(directory, kind, send, wait)
    if sent.seq is not None:
        return sent.seq
    queued = f"the command stays queued in {directory / 'control'}"
    if wait == 0:
        typer.echo(f"{what}: queued (command {sent.command_id}); not waiting for the gateway")
        raise typer.Exit(0)
    if not sent.running:
        typer.echo(
            f"{what}: no gateway is running on {directory}; {queued}"
            " and is applied when the gateway starts",
            err=True,
        )
    else:
        typer.echo(
            f"{what}: the running gateway did not confirm within {wait:g}s; {queued}", err=True
        )
    raise typer.Exit(NOT_CONFIRMED)


def ask_service(
    directory: Path,
    op: str,
    wait: float,
    refused: str = "",
    refused_code: int = 2,
    **fields: object,
) -> dict[str, Any]:
    """A request the running service answers (reconciliation, a fallback), and its answer.

    No answer within `wait`: the request is withdrawn and the command exits 3.
    A refusal exits `refused_code` with the service's reason after `refused`.
    """
    from livegate.ops.commands import ask

    answer = ask(directory, op, wait, **fields)
    if answer is None:
        fail(f"the gateway running on {directory} did not answer within {wait:g}s", 3)
    if not answer.get("ok"):
        fail(f"{refused}{answer.get('error')}", refused_code)
    return answer
