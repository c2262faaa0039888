"""The web front end's accounts and sessions, in one local SQLite file.

Passwords are stored as argon2id hashes (argon2-cffi); a session is a random
token in the browser's cookie and only its SHA-256 on disk, with the time it
was created and last used, so the server can end it (logout, idle timeout,
absolute lifetime, a disabled account) whatever the browser keeps.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("head", "leader", "agent", "technician")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")  # sites and agent ids: protocol-style ids
MIN_PASSWORD = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    sites TEXT NOT NULL DEFAULT '[]',
    agent_id TEXT,
    hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    changed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    name TEXT,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    seen REAL NOT NULL
);
"""


class AccountError(ValueError):
    """Bad input for an account: one line for the user."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    sites: tuple[str, ...] = field(default=())
    agent_id: str | None = None
    disabled: bool = False


@dataclass(frozen=True)
class Session:
    token_hash: str
    user: User | None  # None: not logged in yet (carries the login form's CSRF token)
    csrf: str
    created: float
    seen: float


def check_user(name: str, role: str, sites, agent_id: str | None) -> None:
    if not NAME_RE.match(name):
        raise AccountError(f"user name {name!r}: 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)")
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    for s in sites:
        if not ID_RE.match(s):
            raise AccountError(f"site {s!r} is not a site id (1-32 of A-Z a-z 0-9 - _ .)")
    if role == "leader" and not sites:
        raise AccountError("a leader needs at least one --site (the sites they lead)")
    if role == "agent" and not agent_id:
        raise AccountError("an agent account needs --agent-id (the agent id the roster uses)")
    if agent_id is not None and not ID_RE.match(agent_id):
        raise AccountError(f"agent id {agent_id!r} is not an id (1-32 of A-Z a-z 0-9 - _ .)")
    if role != "agent" and agent_id:
        raise AccountError("--agent-id is for agent accounts only")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if any(ord(c) < 32 for c in password):
        raise AccountError("the password contains a control character")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, path, clock=time.time, hasher: PasswordHasher | None = None):
        self.path = Path(path)
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AccountError(f"accounts file {self.path}: cannot open it ({exc})") from None
        # Verifying a login for a name that does not exist costs as long as for one that does.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    def close(self) -> None:
        self.db.close()

    def _q(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    # ---- users ---------------------------------------------------------------------------

    @staticmethod
    def _user(row) -> User:
        name, role, sites, agent_id, disabled = row
        return User(name, role, tuple(json.loads(sites)), agent_id, bool(disabled))

    def get(self, name: str) -> User | None:
        rows = self._q("SELECT name, role, sites, agent_id, disabled FROM users WHERE name = ?", (name,))
        return self._user(rows[0]) if rows else None

    def users(self) -> list[User]:
        return [self._user(r) for r in self._q("SELECT name, role, sites, agent_id, disabled FROM users ORDER BY name")]

    def add(self, name: str, role: str, password: str, sites=(), agent_id: str | None = None) -> User:
        check_user(name, role, sites, agent_id)
        check_password(password)
        if self.get(name) is not None:
            raise AccountError(f"user {name!r} exists already (set-role, passwd or disable change it)")
        self._q("INSERT INTO users (name, role, sites, agent_id, hash, changed) VALUES (?, ?, ?, ?, ?, ?)",
                (name, role, json.dumps(list(sites)), agent_id, self.hasher.hash(password), self.clock()))
        return self.get(name)

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise AccountError(f"no user {name!r} (seatmon web user add creates one)")
        return user

    def set_role(self, name: str, role: str, sites=(), agent_id: str | None = None) -> User:
        self._existing(name)
        check_user(name, role, sites, agent_id)
        self._q("UPDATE users SET role = ?, sites = ?, agent_id = ?, changed = ? WHERE name = ?",
                (role, json.dumps(list(sites)), agent_id, self.clock(), name))
        return self.get(name)

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        self._existing(name)
        self._q("UPDATE users SET disabled = ?, changed = ? WHERE name = ?", (int(disabled), self.clock(), name))
        if disabled:
            self._q("DELETE FROM sessions WHERE name = ?", (name,))
        return self.get(name)

    def set_password(self, name: str, password: str) -> None:
        self._existing(name)
        check_password(password)
        self._q("UPDATE users SET hash = ?, changed = ? WHERE name = ?", (self.hasher.hash(password), self.clock(), name))
        self._q("DELETE FROM sessions WHERE name = ?", (name,))  # every other browser logs in again

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is theirs and the account enabled; else None."""
        rows = self._q("SELECT hash FROM users WHERE name = ?", (name,))
        stored = rows[0][0] if rows else self._dummy
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        if self.hasher.check_needs_rehash(stored):
            self._q("UPDATE users SET hash = ? WHERE name = ?", (self.hasher.hash(password), name))
        user = self.get(name)
        return None if user is None or user.disabled else user

    # ---- sessions ------------------------------------------------------------------------

    def new_session(self, user: User | None) -> tuple[str, Session]:
        """A fresh session (the token goes into the cookie, only its hash is kept)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        s = Session(_hash_token(token), user, secrets.token_urlsafe(32), now, now)
        self._q("INSERT INTO sessions (token_hash, name, csrf, created, seen) VALUES (?, ?, ?, ?, ?)",
                (s.token_hash, user.name if user else None, s.csrf, now, now))
        return token, s

    def session(self, token: str | None, idle_s: float, lifetime_s: float) -> Session | None:
        """The live session of a cookie's token; None when there is none or it
        has expired (idle or too old; then it is deleted). A session whose user
        was disabled or removed ends too."""
        if not token:
            return None
        h = _hash_token(token)
        rows = self._q("SELECT name, csrf, created, seen FROM sessions WHERE token_hash = ?", (h,))
        if not rows:
            return None
        name, csrf, created, seen = rows[0]
        now = self.clock()
        user = self.get(name) if name else None
        if now - seen > idle_s or now - created > lifetime_s or (name and (user is None or user.disabled)):
            self.end_session(h)
            return None
        self._q("UPDATE sessions SET seen = ? WHERE token_hash = ?", (now, h))
        return Session(h, user, csrf, created, now)

    def end_session(self, token_hash: str) -> None:
        self._q("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def purge(self, idle_s: float, lifetime_s: float) -> int:
        now = self.clock()
        with self._lock:
            cur = self.db.execute("DELETE FROM sessions WHERE seen < ? OR created < ?", (now - idle_s, now - lifetime_s))
            return cur.rowcount
