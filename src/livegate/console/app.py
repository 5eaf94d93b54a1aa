"""The operations console: one page for the person on call, in its own process.

It reads the journal read-only (`ops.views.JournalView`) and the service's
status file, and acts only through the control folder (`console.actions`),
so a slow page or a crashed console can never stall trading. Every page
needs a session; every state-changing request is a POST carrying the
session's CSRF token, from an operator, with a reason.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from livegate.console.actions import ActionError, Actions
from livegate.console.auth import LoginLimiter, Session, Sessions, User, authenticate, csrf_ok
from livegate.console.pages import page_context, when
from livegate.ops.views import JournalView

SESSION_COOKIE = "livegate_session"
LOGIN_COOKIE = "livegate_login"  # the login form's own CSRF token (no session yet)
PAGES = ("overview", "orders", "fills", "positions", "diffs", "alerts", "releases")


def create_app(
    directory: Path,
    users: dict[str, User],
    session_minutes: int = 480,
    action_wait_s: float = 10.0,
    limiter: LoginLimiter | None = None,
) -> FastAPI:
    view = JournalView(directory)
    view.refresh()  # the whole journal once, before the first page; then what is new
    sessions = Sessions(session_minutes * 60.0)
    limiter = limiter or LoginLimiter()
    actions = Actions(directory, action_wait_s)
    flashes: dict[str, list[tuple[bool, str]]] = {}
    templates = Environment(
        loader=PackageLoader("livegate.console", "templates"),
        autoescape=select_autoescape(default=True),
    )
    # Macros as globals: a live region is rendered as a block alone, without the
    # page's own imports.
    macros = templates.get_template("macros.html").module
    templates.globals.update(
        {name: getattr(macros, name) for name in ("action", "service_line", "orders_table")}
    )
    app = FastAPI(title="livegate console", docs_url=None, redoc_url=None, openapi_url=None)

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=_NO_STORE)

    def session_of(request: Request) -> tuple[str | None, Session | None]:
        token = request.cookies.get(SESSION_COOKIE)
        return token, sessions.get(token)

    def to_login(request: Request) -> RedirectResponse:
        target = quote(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        )
        return RedirectResponse(f"/login?next={target}", status_code=303)

    # -- logging in and out -------------------------------------------------------------
    @app.get("/login")
    def login_page(request: Request, next: str = "/") -> Response:
        token = _new_token()
        response = render("login.html", next=_safe_next(next), login_csrf=token, error="")
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.post("/login")
    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        csrf: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        address = request.client.host if request.client else "?"
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not csrf or expected != csrf:
            return Response("refused: the login form's CSRF token is missing or wrong",
                            status_code=403, media_type="text/plain")  # fmt: skip
        wait = limiter.wait_s(username, address)
        if wait > 0:
            actions.audit(username, "login", "", f"refused: rate limited ({address})", False)
            return render("login.html", 429, next=_safe_next(next), login_csrf=expected,
                          error=f"too many failed logins: try again in {wait:.0f} s")  # fmt: skip
        user = authenticate(users, username, password)
        if user is None:
            limiter.failed(username, address)
            actions.audit(username, "login", "", f"failed ({address})", False)
            return render("login.html", 401, next=_safe_next(next), login_csrf=expected,
                          error="wrong user name or password")  # fmt: skip
        token, _ = sessions.start(user)
        actions.audit(user.name, "login", "", f"as {user.role} ({address})", True)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict")
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        token, session = session_of(request)
        if session is not None and csrf_ok(session, csrf):
            sessions.end(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # -- pages ------------------------------------------------------------------------------
    def page(request: Request, name: str, live: bool) -> Response:
        token, session = session_of(request)
        if session is None:
            if live:  # the page's poller: tell it to reload into the login page
                return Response(status_code=401)
            return to_login(request)
        view.refresh()
        context = page_context(name, view, directory, dict(request.query_params))
        context.update(page=name, user=session.user, csrf=session.csrf)
        template = templates.get_template(f"{name}.html")
        if live:  # the page's live region alone, rendered as the whole page would
            block = template.blocks["live"](template.new_context(context))
            return HTMLResponse("".join(block), headers=_NO_STORE)
        query = f"?{request.url.query}" if request.url.query else ""
        context.update(flashes=flashes.pop(token or "", []), live_url=f"/live/{name}{query}")
        return HTMLResponse(template.render(context), headers=_NO_STORE)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response(status_code=404)
        data = resources.files("livegate.console").joinpath("static", name).read_bytes()
        return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/")
    def overview(request: Request) -> Response:
        return page(request, "overview", live=False)

    @app.get("/live/{name}")
    def live(request: Request, name: str) -> Response:
        if name not in PAGES:
            return Response(status_code=404)
        return page(request, name, live=True)

    for name in PAGES[1:]:
        app.add_api_route(f"/{name}", _page_route(page, name), methods=["GET"])

    @app.get("/orders/{client_order_id}")
    def trace(request: Request, client_order_id: str) -> Response:
        _, session = session_of(request)
        if session is None:
            return to_login(request)
        from livegate.journal.locate import open_reader
        from livegate.observe.trace import trace_order

        store = open_reader(view.journal)
        try:
            lines = trace_order(store, client_order_id)
        finally:
            store.close()
        view.refresh()
        found = view.orders(search=client_order_id, limit=1)
        return render("trace.html", 200 if lines else 404, page="orders", user=session.user,
                      csrf=session.csrf, flashes=[], live_url="", order=found[0] if found else None,
                      client_order_id=client_order_id, lines=lines)  # fmt: skip

    @app.get("/releases/{config_id}")
    def snapshot(request: Request, config_id: str) -> Response:
        """One config snapshot: its files as they ran, and what differs from the running one."""
        _, session = session_of(request)
        if session is None:
            return to_login(request)
        from livegate.ops.snapshots import diff, group_releases

        view.refresh()
        known = {r.record.config_id: r for r in group_releases(view.releases)}
        found = known.get(config_id)
        current = view.book.release.release
        changes = diff(current, found.record) if found and current else ""
        return render("snapshot.html", 200 if found else 404, page="releases",
                      user=session.user, csrf=session.csrf, flashes=[], live_url="",
                      config_id=config_id, release=found, current=current, changes=changes,
                      when=when)  # fmt: skip

    # -- actions ---------------------------------------------------------------------------
    @app.post("/actions/{name}")
    async def act(request: Request, name: str) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        token, session = session_of(request)
        if session is None:
            return Response("refused: log in first", status_code=401, media_type="text/plain")
        if not csrf_ok(session, form.get("csrf")):
            actions.audit(session.user.name, name, form.get("why", ""), "refused: CSRF", False)
            return Response("refused: the CSRF token is missing or wrong", status_code=403,
                            media_type="text/plain")  # fmt: skip
        if not session.user.operator:
            actions.audit(session.user.name, name, form.get("why", ""), "refused: viewer", False)
            return Response(f"refused: {session.user.name} is a viewer; only operators act",
                            status_code=403, media_type="text/plain")  # fmt: skip
        from starlette.concurrency import run_in_threadpool

        who, why = session.user.name, form.get("why", "")
        try:  # the wait for the gateway's word blocks: off the event loop
            outcome = await run_in_threadpool(actions.run, name, who, why, form)
        except ActionError as exc:
            actions.audit(who, name, why, f"refused: {exc}", False)
            flashes.setdefault(token or "", []).append((False, str(exc)))
            return RedirectResponse(_back(form), status_code=303)
        actions.audit(who, name, why, outcome.text, outcome.ok)
        flashes.setdefault(token or "", []).append((outcome.ok, outcome.text))
        return RedirectResponse(_back(form), status_code=303)

    app.state.view = view
    app.state.started = time.time()
    return app


_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
             "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none';"
             " form-action 'self'"}  # fmt: skip
_STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


def _page_route(page: Any, name: str) -> Any:
    def route(request: Request) -> Response:
        response: Response = page(request, name, live=False)
        return response

    route.__name__ = f"page_{name}"
    return route


def _new_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def _safe_next(target: str) -> str:
    """Only a path of this console (never another site) after logging in."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _back(form: dict[str, str]) -> str:
    return _safe_next(form.get("back", "/"))
