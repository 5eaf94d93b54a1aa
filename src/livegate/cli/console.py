"""`livegate console`: the operations console beside a running gateway; and its passwords."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from livegate.cli.datadir import DirOption, LegacyDirArgument, choose_dir, journal_of
from livegate.cli.output import fail, say, warn


def console_command(
    legacy_dir: LegacyDirArgument = None,
    directory: DirOption = None,
    config: Annotated[
        Path, typer.Option("--config", help="Profiles file: the console's users are in it.")
    ] = Path("profiles.toml"),
    profile_name: Annotated[str, typer.Option("--profile", help="The profile to watch.")] = "",
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="Port (0: any free one); default: profile's."
        ),
    ] = None,
) -> None:
    """The operations console: a web page for the person on call (docs/console.md).

    Reads the journal read-only and acts through the gateway's control folder,
    in its own process: a console crash or a slow page never stalls trading.
    The data folder is the profile's unless --dir says otherwise.
    """
    try:
        import uvicorn

        from livegate.console.app import create_app
    except ImportError as exc:
        fail(f"the console needs its extra: pip install 'livegate[console]' ({exc.name} missing)")
    from livegate.console.auth import load_users
    from livegate.ops.profiles import ProfileError, load_profiles

    if not profile_name:
        fail("say --profile: the console's users and data folder come from a profile")
    try:
        profiles = load_profiles(config)
        if profile_name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            fail(f"{config}: no profile {profile_name!r} (profiles: {known})")
        profile = profiles[profile_name]
        users = load_users(profile)
    except ProfileError as exc:
        fail(str(exc))
    if legacy_dir is None and directory is None:
        directory = Path(profile.data_dir)
    directory = choose_dir(legacy_dir, directory)
    journal_of(directory)
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"listening on {host}: put the console behind TLS before it leaves this machine")
    chosen = profile.console.port if port is None else port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, chosen))
    except OSError as exc:
        fail(f"cannot listen on {host}:{chosen}: {exc.strerror or exc}")
    sock.listen(128)
    app = create_app(directory, users, profile.console.session_minutes)
    bound = sock.getsockname()[1]
    roles = ", ".join(f"{u.name} ({u.role})" for u in users.values())
    say(f"livegate console: journal {directory.resolve()}; users {roles}")
    say(f"ready: http://{host}:{bound}/ ; stop with Ctrl-C")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


def console_password_command(
    from_stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Print a password hash for a console user's credential reference (docs/console.md).

    The password is asked for twice (or read from standard input with
    --stdin) and never printed; put the printed hash in the variable or
    secrets file the user's `password` reference names.
    """
    from livegate.console.auth import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        fail("a console password needs at least 8 characters")
    say(hash_password(password))
