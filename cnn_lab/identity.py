"""Who is asking. In local mode it is always "you", who owns every job. In shared mode a person is named by
st.login (when configured: the page passes the e-mail in) or by a name they claim: the claim returns a key that
the page keeps in the URL, so a refresh, or the same link in a second tab, is the same person, and nobody else can
take the name without the key."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cnn_lab.paths import cache_root, written_whole


@dataclass(frozen=True)
class Person:
    name: str
    admin: bool = False  # may pause and stop anyone's job


LOCAL = Person("you", admin=True)  # local mode: one person, who owns every job

NAME = re.compile(r"^[\w][\w .'-]{0,31}$")


class IdentityError(ValueError):
    """A name that cannot be claimed, or a wrong password; the message is one sentence."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class People:
    """Claimed names, each with the hash of its key, in a small JSON file (the key itself is never stored)."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_root() / "people.json"
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def claim(self, name: str, admin_password: str = "", expected_password: str = "") -> tuple[Person, str]:
        """Claim a free name; returns the person and their key. An admin password, if given, must be right."""
        name = " ".join(name.split())
        if not NAME.match(name):
            raise IdentityError("A name is 1 to 32 letters, digits, spaces, dots, dashes or apostrophes.")
        admin = bool(admin_password)
        if admin and not (expected_password and hmac.compare_digest(admin_password, expected_password)):
            raise IdentityError("That admin password is not right; leave it empty to join as a learner.")
        with self._lock:
            people = self._read()
            if name.casefold() in {n.casefold() for n in people}:
                raise IdentityError(f"The name {name!r} is taken. Choose another, or open your own link: it holds "
                                    "your key.")
            key = secrets.token_urlsafe(16)
            people[name] = {"key": _hash(key), "admin": admin}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with written_whole(self.path) as tmp:
                tmp.write_text(json.dumps(people, indent=1))
        return Person(name, admin), key

    def learners(self) -> list[str]:
        """The names claimed without admin rights, for the class page."""
        return sorted(name for name, record in self._read().items() if not record["admin"])

    def by_key(self, key: str) -> Person | None:
        if not key:
            return None
        digest = _hash(key)
        for name, record in self._read().items():
            if hmac.compare_digest(record["key"], digest):
                return Person(name, record["admin"])
        return None


def logged_in(email: str, admins: tuple[str, ...]) -> Person:
    """A person named by st.login: their e-mail; an admin when the settings list it."""
    return Person(email, admin=email.casefold() in {a.casefold() for a in admins})
