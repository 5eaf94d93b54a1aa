"""The console's guards without a browser: logins, roles, CSRF, failed-login limits,
users from credential references; and `livegate orders`, the console's orders view
on the command line. (The browser walks through it in test_console_browser.py.)"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from livegate.console.app import create_app
from livegate.console.auth import (
    LoginLimiter,
    User,
    check_password,
    hash_password,
    load_users,
)
from livegate.ops.profiles import ProfileError, load_profiles
from tests.helpers import start_and_stop

PAGES = [
    "/",
    "/orders",
    "/fills",
    "/positions",
    "/diffs",
    "/alerts",
    "/releases",
    "/orders/X",
    "/releases/X",
]
ACTIONS = ["trading-state", "safe-stop", "alert-ack", "diff-ack", "diff-resolve", "fallback",
           "rollback", "reconcile"]  # fmt: skip
NARROW = {**os.environ, "COLUMNS": "40", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def users() -> dict[str, User]:
    return {
        "alice": User("alice", "operator", hash_password("alice-password")),
        "bob": User("bob", "viewer", hash_password("bob-password")),
    }


@pytest.fixture
def data(tmp_path: Path) -> Path:
    start_and_stop(tmp_path / "svc")
    return tmp_path / "svc"


def login(client: TestClient, user: str, password: str) -> int:
    page = client.get("/login")
    token = client.cookies.get("livegate_login")
    assert token and token in page.text
    answer = client.post(
        "/login",
        data={"username": user, "password": password, "csrf": token, "next": "/"},
        follow_redirects=False,
    )
    return answer.status_code


def control_files(data: Path) -> list[str]:
    control = data / "control"
    return sorted(p.name for p in control.iterdir()) if control.exists() else []


def csrf_of(client: TestClient) -> str:
    page = client.get("/").text
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_without_a_session_every_page_redirects_to_login_and_every_post_is_refused(
    data: Path, users: dict[str, User]
) -> None:
    client = TestClient(create_app(data, users))
    for page in PAGES:
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303, page
        assert answer.headers["location"].startswith("/login?next="), page
    assert client.get("/live/overview").status_code == 401
    for action in ACTIONS:
        answer = client.post(f"/actions/{action}", data={"why": "x", "csrf": "guess"})
        assert answer.status_code == 401, action
    assert not (data / "control" / "safe-stop.json").exists()


def test_a_post_without_the_sessions_csrf_token_is_refused_and_sends_nothing(
    data: Path, users: dict[str, User]
) -> None:
    client = TestClient(create_app(data, users))
    assert login(client, "alice", "alice-password") == 303
    before = control_files(data)
    for form in ({"why": "x"}, {"why": "x", "csrf": "not-the-token"}):
        answer = client.post("/actions/safe-stop", data=form, follow_redirects=False)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    assert control_files(data) == before
    # The login form has its own token: a login posted from elsewhere is refused.
    fresh = TestClient(create_app(data, users))
    answer = fresh.post("/login", data={"username": "alice", "password": "alice-password"})
    assert answer.status_code == 403


def test_a_viewer_sees_the_pages_but_every_action_is_refused(
    data: Path, users: dict[str, User]
) -> None:
    client = TestClient(create_app(data, users))
    assert login(client, "bob", "bob-password") == 303
    overview = client.get("/")
    assert overview.status_code == 200 and "bob (viewer)" in overview.text
    for page in ("overview", "orders", "fills", "positions", "diffs", "alerts", "releases"):
        assert client.get(f"/live/{page}").status_code == 200, page
        assert client.get("/" if page == "overview" else f"/{page}").status_code == 200, page
    assert "/actions/safe-stop" not in overview.text  # no buttons for a viewer
    csrf = csrf_of(client)
    for action in ACTIONS:
        answer = client.post(
            f"/actions/{action}", data={"why": "x", "csrf": csrf, "state": "HALTED"}
        )
        assert answer.status_code == 403, action
        assert "viewer" in answer.text
    assert control_files(data) == []
    audit = (data / "console-audit.jsonl").read_text()
    assert audit.count('"refused: viewer"') == len(ACTIONS)


def test_an_operator_action_needs_a_reason_and_is_queued_when_no_gateway_runs(
    data: Path, users: dict[str, User]
) -> None:
    client = TestClient(create_app(data, users, action_wait_s=0.3))
    assert login(client, "alice", "alice-password") == 303
    csrf = csrf_of(client)
    answer = client.post("/actions/safe-stop", data={"csrf": csrf, "why": "  "})
    assert "say why" in answer.text
    assert not (data / "control" / "safe-stop.json").exists()
    answer = client.post("/actions/trading-state", data={"csrf": csrf, "why": "x", "state": "OFF"})
    assert "'OFF' is not a trading state" in html.unescape(answer.text)
    answer = client.post("/actions/safe-stop", data={"csrf": csrf, "why": "drill"})
    assert "no gateway is running; queued" in answer.text
    assert "service down" in answer.text
    assert (data / "control" / "safe-stop.json").exists()


def test_failed_logins_are_limited_even_for_the_right_password(
    data: Path, users: dict[str, User]
) -> None:
    client = TestClient(create_app(data, users, limiter=LoginLimiter(attempts=3, window_s=60)))
    assert [login(client, "alice", "wrong") for _ in range(3)] == [401, 401, 401]
    assert login(client, "alice", "alice-password") == 429
    # Per address too: another name from the same address is refused as well.
    assert login(client, "bob", "bob-password") == 429
    audit = (data / "console-audit.jsonl").read_text()
    assert "alice-password" not in audit and "wrong" not in audit


def test_a_password_is_stored_as_a_salted_hash_and_checked_in_constant_form() -> None:
    one, two = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert one != two and one.startswith("scrypt$")
    assert check_password("s3cret-pass", one) and check_password("s3cret-pass", two)
    assert not check_password("s3cret-pasS", one)
    assert not check_password("s3cret-pass", "not a hash")


def write_profiles(folder: Path, users: str) -> Path:
    path = folder / "profiles.toml"
    path.write_text(
        '[profiles.paper]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "svc"\n\n'
        "[profiles.paper.console.users]\n" + users
    )
    return path


def test_users_come_from_credential_references_and_a_plain_password_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "console-secrets.toml"
    secrets.write_text(f'[bob]\npassword_hash = "{hash_password("bob-password")}"\n')
    secrets.chmod(0o600)
    monkeypatch.setenv("LG_ALICE", hash_password("alice-password"))
    path = write_profiles(
        tmp_path,
        'alice = { role = "operator", password = "env:LG_ALICE" }\n'
        f'bob = {{ role = "viewer", password = "file:{secrets}:bob" }}\n',
    )
    users = load_users(load_profiles(path)["paper"])
    assert {u.name: u.role for u in users.values()} == {"alice": "operator", "bob": "viewer"}
    monkeypatch.setenv("LG_ALICE", "alice-password")  # a password where a hash belongs
    with pytest.raises(ProfileError, match="user 'alice': env:LG_ALICE does not hold a password"):
        load_users(load_profiles(path)["paper"])
    monkeypatch.delenv("LG_ALICE")
    with pytest.raises(ProfileError, match="LG_ALICE is not set"):
        load_users(load_profiles(path)["paper"])
    bad_role = write_profiles(tmp_path, 'carol = { role = "admin", password = "env:X" }\n')
    with pytest.raises(ProfileError, match="role"):
        load_profiles(bad_role)


def livegate(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livegate", *args],
        cwd=cwd, env=NARROW, capture_output=True, text=True, timeout=120, input=stdin,
    )  # fmt: skip


def test_console_refuses_a_profile_without_users_and_a_folder_that_is_not_a_journal(
    tmp_path: Path,
) -> None:
    (tmp_path / "profiles.toml").write_text(
        '[profiles.paper]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "svc"\n'
    )
    result = livegate("console", "--config", "profiles.toml", "--profile", "paper", cwd=tmp_path)
    assert result.returncode == 2
    assert "has no console users" in result.stderr
    hashed = livegate("console-password", "--stdin", cwd=tmp_path, stdin="a-long-password\n")
    assert hashed.returncode == 0 and check_password("a-long-password", hashed.stdout.strip())
    assert "a-long-password" not in hashed.stdout
    short = livegate("console-password", "--stdin", cwd=tmp_path, stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    write_profiles(tmp_path, 'alice = { role = "operator", password = "env:LG_A" }\n')
    env_result = subprocess.run(
        [sys.executable, "-m", "livegate", "console", "--config", "profiles.toml",
         "--profile", "paper"],
        cwd=tmp_path, env={**NARROW, "LG_A": hashed.stdout.strip()}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert env_result.returncode == 2
    assert "svc: no such folder (not a livegate data folder)" in env_result.stderr


def test_orders_lists_the_journal_newest_first_with_filters(tmp_path: Path) -> None:
    serve = livegate(
        "serve", "--dir", "svc", "--demo", "60", "--run-for", "2", "--metrics-port", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert serve.returncode == 0, serve.stderr
    every = livegate("orders", "--dir", "svc", "--limit", "1000", cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert every.stdout.startswith("60 orders in svc, ")
    ids = [line.split("│")[1].strip() for line in every.stdout.splitlines() if "│ LG" in line]
    assert len(ids) == 60 and ids == sorted(ids, reverse=True)
    open_only = livegate("orders", "--dir", "svc", "--open", "--symbol", "AAPL", cwd=tmp_path)
    rows = [line for line in open_only.stdout.splitlines() if "│ LG" in line]
    assert rows and all("AAPL" in r for r in rows)
    assert all(s not in r for r in rows for s in ("│ FILLED", "│ CANCELLED", "│ REJECTED"))
    one = livegate("orders", "--dir", "svc", "--id", ids[5], cwd=tmp_path)
    shown = [line for line in one.stdout.splitlines() if "│ LG" in line]
    assert len(shown) == 1 and ids[5] in shown[0]
    none = livegate("orders", "--dir", "svc", "--symbol", "NOPE", cwd=tmp_path)
    assert none.returncode == 1 and "showing 0" in none.stdout
    typo = livegate("orders", "--dir", "svc", "--status", "FILED", cwd=tmp_path)
    assert typo.returncode == 2 and "'FILED' is not an order status" in typo.stderr


def test_a_rollback_from_the_console_writes_the_files_back_and_is_journaled_with_who_and_why(
    tmp_path: Path, users: dict[str, User]
) -> None:
    from livegate.journal import replay_file
    from livegate.model.events import OperatorAction
    from tests.test_release_cli import RISK, serve, stop, write_config

    write_config(tmp_path)
    stop(serve(tmp_path))
    first = (tmp_path / "risk.toml").read_text()
    (tmp_path / "risk.toml").write_text(RISK.replace("1000", "5"))  # release B
    running = serve(tmp_path)
    try:
        client = TestClient(create_app(tmp_path / "data", users, action_wait_s=10))
        assert login(client, "alice", "alice-password") == 303
        page = client.get("/releases").text
        ids = [c.split('"')[0] for c in page.split('name="config_id" value="')[1:]]
        assert len(ids) == 1  # the running release has no rollback button
        snapshot = html.unescape(client.get(f"/releases/{ids[0]}").text)
        assert 'max_order_qty = "1000"' in snapshot  # its files as they ran
        assert '-max_order_qty = "5"' in snapshot and '+max_order_qty = "1000"' in snapshot
        assert client.get("/releases/nope").status_code == 404
        answer = client.post(
            "/actions/rollback",
            data={"csrf": csrf_of(client), "why": "B halves the limit", "config_id": ids[0],
                  "back": "/releases"},
        )  # fmt: skip
        text = html.unescape(answer.text)
        assert f"files of config {ids[0]} written back" in text
        assert "the rollback's record: applied by the gateway (journal seq" in text
        assert "livegate serve --config" in text
    finally:
        stop(running)
    assert (tmp_path / "risk.toml").read_text() == first
    actions = [e for _, e in replay_file(tmp_path / "data" / "journal.sqlite")
               if isinstance(e, OperatorAction)]  # fmt: skip
    assert [(a.action, a.who, a.why) for a in actions] == [
        ("config-rollback", "alice", "B halves the limit")
    ]
