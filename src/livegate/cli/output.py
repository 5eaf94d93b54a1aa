"""How every command prints: tables for people, errors that are never wrapped.

An error line is something a person pastes into a search and a program
greps, so it goes to stderr as plain text, one line, whatever the terminal
width. Tables fit a terminal when there is one; piped or captured (a test, a
log, `| grep`), they take the width their content needs, so what a command
prints never depends on COLUMNS or on how long a path is.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console, ConsoleDimensions

# Wide enough that no table or line of ours is wrapped when not on a terminal.
PIPE_WIDTH = 4096


class _Console(Console):
    @property
    def size(self) -> ConsoleDimensions:
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(PIPE_WIDTH, 25)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console(highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr, unwrapped, and exit with `code`.

    2: the command line or its input is wrong; 1: the command ran and the
    answer is bad (a failed drill, unresolved diffs).
    """
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def say(message: str) -> None:
    """A plain line on stdout, never wrapped (paths, ids, figures)."""
    typer.echo(message)


F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(command: F) -> F:
    """Ordinary failures (a locked or corrupt journal, a bad file) as one error line.

    A traceback is for a bug in livegate, not for a wrong path or a journal
    another process holds.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from livegate.model.errors import LivegateError

        try:
            return command(*args, **kwargs)
        except LivegateError as exc:
            fail(str(exc))
        except sqlite3.DatabaseError as exc:
            fail(f"a journal could not be read: {exc}")
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))

    return wrapper  # type: ignore[return-value]
