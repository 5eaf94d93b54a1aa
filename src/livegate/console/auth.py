"""Who may see the console and who may act: logins, sessions, CSRF, failed-login limits.

Users and roles come from the profile (`[profiles.P.console.users]`); each
user's password is stored only as a scrypt hash behind a credential
reference (env:VAR or file:PATH:SECTION), so no password or hash is ever in
the profile, a page or a log. Sessions live in the console's memory: a
restarted console asks everyone to log in again, which is the safe failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from livegate.ops.profiles import Profile, ProfileError, resolve_reference

ROLES = ("viewer", "operator")
_N, _R, _P = 2**14, 8, 1  # scrypt cost: about 50 ms per check on this class of machine
_PREFIX = "scrypt"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`: what a console user's credential reference holds."""
    if not password:
        raise ValueError("a password cannot be empty")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(
        (_PREFIX, str(_N), str(_R), str(_P), _b64(salt), _b64(digest))
    )  # fmt: skip


def check_password(password: str, stored: str) -> bool:
    try:
        prefix, n, r, p, salt, digest = stored.split("$")
        if prefix != _PREFIX:
            return False
        expected = base64.b64decode(digest.encode() + b"==")
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt.encode() + b"=="),
            n=int(n), r=int(r), p=int(p), dklen=len(expected),
        )  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def valid_hash(stored: str) -> bool:
    parts = stored.split("$")
    return len(parts) == 6 and parts[0] == _PREFIX and all(x.isdigit() for x in parts[1:4])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)

    @property
    def operator(self) -> bool:
        return self.role == "operator"


def load_users(profile: Profile) -> dict[str, User]:
    """The profile's console users with their hashes, resolved now (a missing variable or
    a plain password instead of a hash is refused by name, before the console listens)."""
    users = {}
    for name, spec in profile.console.users.items():
        stored = resolve_reference(profile, spec.password, "password_hash")
        if not valid_hash(stored):
            raise ProfileError(
                f"profile {profile.name!r}: console user {name!r}: {spec.password} does not hold"
                " a password hash (make one with `livegate console-password`)"
            )
        users[name] = User(name, spec.role, stored)
    if not users:
        raise ProfileError(
            f"profile {profile.name!r} has no console users: add [profiles.{profile.name}"
            ".console.users] (docs/console.md)"
        )
    return users


@dataclass
class Session:
    user: User
    csrf: str
    expires: float


class Sessions:
    """Logged-in sessions by their cookie token, each with its own CSRF token."""

    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: User) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.monotonic() + self.lifetime_s)
        with self._lock:
            self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if session.expires < time.monotonic():
                del self._by_token[token]
                return None
            session.expires = time.monotonic() + self.lifetime_s  # idle timeout
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token or "")


class LoginLimiter:
    """At most `attempts` failed logins per user name and per client address within
    `window_s`; after that every login from either is refused until the window passes,
    a right password included (a guesser learns nothing from the answer)."""

    def __init__(self, attempts: int = 5, window_s: float = 300.0) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, user: str, address: str) -> float:
        """0 when a login may be tried now; else the seconds until one may."""
        now = time.monotonic()
        with self._lock:
            worst = 0.0
            for key in (f"user:{user}", f"addr:{address}"):
                failures = self._recent(key, now)
                if len(failures) >= self.attempts:
                    worst = max(worst, failures[0] + self.window_s - now)
            return worst

    def failed(self, user: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"user:{user}", f"addr:{address}"):
                self._recent(key, now).append(now)


_DUMMY = hash_password("livegate-console-no-such-user", salt=b"0" * 16)


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """The user, or None; an unknown name costs the same hash as a wrong password."""
    user = users.get(name)
    ok = check_password(password, user.password_hash if user else _DUMMY)
    return user if ok and user is not None else None
