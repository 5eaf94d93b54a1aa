"""The console in a real browser (Debian's chromium, driven by Playwright) beside a real
`livegate serve` on the sim broker, each in its own process, started as docs/console.md
shows: an order appears without a reload, an alert is acknowledged, a diff resolved,
safe-stop cancels every open order at the sim broker and the page shows HALTED; a
viewer can act on nothing. The screenshots in docs/console.md are taken here."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any, TypeVar

import pytest

from livegate.broker.sim import SimAdapter
from livegate.console.auth import hash_password
from livegate.drills.children import spawn
from livegate.drills.sim_process import SimProcess
from livegate.journal import replay_file
from livegate.model import OrderIntent, Side
from livegate.model.enums import OrderType, TimeInForce
from livegate.model.events import AlertChanged, DiffResolved, SafeStopRequested
from livegate.model.samples import DEMO_START_PRICES
from livegate.model.secret import Secret

T = TypeVar("T")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("no chromium here (.ci/run installs Debian's)", allow_module_level=True)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "images"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROFILES = """\
[profiles.sim]
environment = "sim"
broker = "sim"
port = {port}
api_key = "env:LG_SIM_KEY"
data_dir = "svc"

[profiles.sim.console.users]
alice = {{ role = "operator", password = "env:LG_ALICE" }}
bob = {{ role = "viewer", password = "env:LG_BOB" }}
"""


@dataclass
class Desk:
    folder: Path
    sim: SimProcess
    env: dict[str, str]
    url: str = ""
    console: subprocess.Popen[bytes] | None = None
    serve: subprocess.Popen[bytes] | None = None

    def livegate(self, *args: str) -> subprocess.Popen[bytes]:
        return spawn(
            [sys.executable, "-m", "livegate", *args],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def broker(self) -> SimAdapter:
        return SimAdapter("127.0.0.1", self.sim.port, Secret(self.sim.key), "sim")

    def broker_open_orders(self) -> list[str]:
        async def ask() -> list[str]:
            adapter = self.broker()
            await adapter.connect()
            await adapter.authenticate()
            try:
                return [r.client_order_id or "" for r in await adapter.open_orders()]
            finally:
                await adapter.close()

        return run_async(ask())


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run off this thread: Playwright's sync API keeps a loop running on it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    folder = tmp_path_factory.mktemp("console")
    (folder / "sim").mkdir()
    sim = SimProcess(folder / "sim", f"lg_sim_{secrets.token_hex(8)}")
    sim.start()

    async def quotes() -> None:  # the market the demo strategy trades on
        for symbol, mid in DEMO_START_PRICES.items():
            await sim.control(
                "quote",
                symbol=symbol,
                bid=str(mid - D("0.02")),
                ask=str(mid + D("0.02")),
                bid_size="300",
                ask_size="300",
            )

    asyncio.run(quotes())
    (folder / "profiles.toml").write_text(PROFILES.format(port=sim.port))
    env = {
        **os.environ,
        "COLUMNS": "40",
        "LG_SIM_KEY": sim.key,
        "LG_ALICE": hash_password("alice-password"),
        "LG_BOB": hash_password("bob-password"),
    }
    desk = Desk(folder, sim, env)
    first = desk.livegate(
        "serve",
        "--config",
        "profiles.toml",
        "--profile",
        "sim",
        "--run-for",
        "1",
        "--metrics-port",
        "0",
    )
    assert first.wait(60) == 0, first.stdout.read() if first.stdout else ""
    desk.console = desk.livegate(
        "console", "--config", "profiles.toml", "--profile", "sim", "--port", "0"
    )
    assert desk.console.stdout is not None
    for _ in range(5):
        line = desk.console.stdout.readline().decode()
        if found := re.search(r"ready: (http://127\.0\.0\.1:\d+/)", line):
            desk.url = found.group(1)
            break
    assert desk.url, "the console did not say where it listens"
    try:
        yield desk
    finally:
        stop(desk.serve)
        stop(desk.console)
        sim.stop()


@pytest.fixture(scope="module")
def browser(desk: Desk) -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def log_in(browser: object, desk: Desk, user: str, password: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations: yes
    page.goto(desk.url)
    assert "/login" in page.url  # no session: the login page
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(desk.url)
    return page


def act(page, form: str, why: str, **fields: str) -> str:  # type: ignore[no-untyped-def]
    """Fill a form's reason (and choices), press its button, return the flash it leads to."""
    target = page.locator(form).first
    for name, value in fields.items():
        target.locator(f"select[name={name}]").select_option(value)
    target.locator("input[name=why]").fill(why)
    # The POST and its redirect: the flash read must be the new page's, not the old one's.
    with page.expect_navigation(timeout=30_000):
        target.locator("button[type=submit]").click()
    flash = page.locator(".flash").first
    flash.wait_for(timeout=20_000)
    return str(flash.inner_text())


def test_an_operator_watches_orders_arrive_settles_a_diff_and_pulls_the_kill_switch(
    desk: Desk, browser: object
) -> None:
    expect = playwright.expect
    page = log_in(browser, desk, "alice", "alice-password")
    expect(page.locator("#service")).to_contain_text("service down")  # the journal as it stands

    # Orders placed by a running `serve --demo` appear without a reload.
    page.goto(desk.url + "orders")
    page.evaluate("window.notReloaded = true")
    desk.serve = desk.livegate(
        "serve",
        "--config",
        "profiles.toml",
        "--profile",
        "sim",
        "--demo",
        "40",
        "--metrics-port",
        "0",
    )
    expect(page.locator("table.orders tr[data-coid]").first).to_be_visible(timeout=30_000)
    expect(page.locator("table.orders tr[data-coid]")).to_have_count(40, timeout=30_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#live")).to_contain_text("service up", timeout=10_000)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "console-orders.png"), full_page=False)
    resting = [c for c in desk.broker_open_orders() if c.startswith("LG")]
    assert resting, "the demo left no order resting at the sim broker"

    # Someone places an order in the broker's own app: reconciliation finds it.
    async def by_hand() -> None:
        other = desk.broker()
        await other.connect()
        await other.authenticate()
        await other.place(
            OrderIntent(
                "by-hand-1",
                "default",
                "AAPL",
                Side.BUY,
                OrderType.LIMIT,
                D(1),
                D("1.00"),
                TimeInForce.DAY,
                time.time_ns(),
            )
        )
        await other.close()

    run_async(by_hand())
    page.goto(desk.url + "diffs")
    assert "new diffs: D" in act(page, "form[action='/actions/reconcile']", "check the books")
    row = page.locator("tr[data-diff]", has_text="BUY 1 AAPL")
    expect(row).to_contain_text("MISSING_LOCAL")
    diff_id = str(row.get_attribute("data-diff"))

    # The operator settles it by cancelling that order at the broker.
    text = act(
        page,
        f"tr[data-diff='{diff_id}'] form[action='/actions/diff-resolve']",
        "nobody here placed it",
        action="CANCEL_AT_BROKER",
    )
    assert f"resolve {diff_id} (CANCEL_AT_BROKER): done by the gateway" in text
    page.goto(desk.url + "diffs?all=1")
    expect(page.locator(f"tr[data-diff='{diff_id}'] .status")).to_contain_text("RESOLVED")

    # The kill switch: every open order cancelled at the sim broker, the page says HALTED.
    page.goto(desk.url)
    page.screenshot(path=str(DOCS / "console-overview.png"), full_page=False)
    text = act(
        page,
        "form[action='/actions/safe-stop']:not(:has(input[name=flatten]))",
        "drill: kill switch",
    )
    assert "safe-stop: applied by the gateway" in text
    expect(page.locator("#trading-state")).to_have_text("HALTED", timeout=10_000)
    deadline = time.monotonic() + 20
    while desk.broker_open_orders() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert desk.broker_open_orders() == []  # ours cancelled, the stray one before

    # HALTED pages the on-call (P0): the alert shows up by itself and is acknowledged.
    page.goto(desk.url + "alerts")
    expect(page.locator("tr[data-alert='halted']")).to_be_visible(timeout=10_000)
    text = act(page, "tr[data-alert='halted'] form", "halted on purpose: drill")
    assert "acknowledgement of halted: applied by the gateway" in text
    expect(page.locator("tr[data-alert='halted'] .status")).to_have_text("ACKNOWLEDGED")

    events = [e for _, e in replay_file(desk.folder / "svc" / "journal.sqlite")]
    stops = [e for e in events if isinstance(e, SafeStopRequested)]
    assert [(s.who, s.why) for s in stops] == [("alice", "drill: kill switch")]
    acks = [e for e in events if isinstance(e, AlertChanged) and e.state == "ACKNOWLEDGED"]
    assert [(a.key, a.who) for a in acks] == [("halted", "alice")]
    resolved = [e for e in events if isinstance(e, DiffResolved) and e.id == diff_id]
    assert [(r.who, r.why) for r in resolved] == [("alice", "nobody here placed it")]


def test_a_viewer_sees_everything_and_can_do_nothing(desk: Desk, browser: object) -> None:
    page = log_in(browser, desk, "bob", "bob-password")
    assert page.locator("form[action^='/actions/']").count() == 0
    for path in ("orders", "diffs?all=1", "alerts", "releases"):
        page.goto(desk.url + path)
        assert page.locator("form[action^='/actions/']").count() == 0, path
    csrf = str(page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value"))
    control = desk.folder / "svc" / "control"
    before = sorted(p.name for p in control.iterdir()) if control.exists() else []
    for action, form in (
        ("safe-stop", {}),
        ("trading-state", {"state": "ACTIVE"}),
        ("alert-ack", {"key": "halted"}),
        ("fallback", {"venue": "paper"}),
    ):
        answer = page.request.post(
            desk.url + f"actions/{action}", form={"csrf": csrf, "why": "by hand", **form}
        )
        assert answer.status == 403, action
        assert "bob is a viewer" in answer.text()
    after = sorted(p.name for p in control.iterdir()) if control.exists() else []
    assert after == before
