"""Who is asking. In local mode it is always "you", who owns every job. In shared mode a person is named by
st.login (when configured: the page passes the e-mail in) or by a name they claim: the claim returns a key that
the page keeps in the URL, so a refresh, or the same link in a second tab, is the same person, and nobody else can
take the name without the key."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import shutil
import threading
import time
import unicodedata
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cnn_lab.paths import cache_root, written_whole
from cnn_lab.settings import load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Person:
    name: str
    admin: bool = False  # may pause and stop anyone's job


LOCAL = Person("you", admin=True)  # local mode: one person, who owns every job

NAME = re.compile(r"^[\w][\w .'-]{0,31}$")


RESERVED = {LOCAL.name}  # local mode's one person, who owns CLI runs and imports, and every run made before shared mode


class IdentityError(ValueError):
    """A name that cannot be claimed, or a wrong password; the message is one sentence."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _script(char: str) -> str:
    """A letter's script, from its Unicode name: LATIN, CYRILLIC, GREEK, CJK... (Japanese kana count as CJK)."""
    word = unicodedata.name(char, "UNKNOWN").split()[0]
    return "CJK" if word in ("HIRAGANA", "KATAKANA", "HANGUL") else word


def skeleton(name: str) -> str:
    """What two names are compared by: Unicode's compatibility form (NFKC: a full-width "Ａ" is "A"), case folded."""
    return unicodedata.normalize("NFKC", name).casefold()


class WrongPasswords:
    """Wrong admin passwords this process has heard in the last minute, from everyone: past the setting's number, a
    guess is refused unchecked until the minute has passed, and each one is in the server's log."""

    def __init__(self):
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, per_minute: int) -> None:
        with self._lock:
            while self._times and self._times[0] < time.monotonic() - 60:
                self._times.popleft()
            if len(self._times) >= per_minute:
                raise IdentityError("Too many wrong admin passwords were tried on this server in the last minute: "
                                    "wait a minute, then try again.")

    def wrong(self, name: str) -> None:
        with self._lock:
            self._times.append(time.monotonic())
        log.warning("A wrong admin password was given for the name %r.", name)


WRONG_PASSWORDS = WrongPasswords()


class People:
    """Claimed names, each with the hash of its key, in a small JSON file (the key itself is never stored). Every
    change is written whole and flushed to disk under a file lock (the app and a second process may share it), after
    a copy of the last good file: a damaged file is never read as "nobody", which would let anyone claim every
    name again, with its runs."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_root() / "people.json"
        self.backup = self.path.with_name(self.path.name + ".bak")

    def _read(self) -> dict[str, dict]:
        """The names; from the backup when the file is damaged; IdentityError when both are."""
        for path in (self.path, self.backup):
            try:
                return json.loads(path.read_text())
            except FileNotFoundError:
                if path == self.path and not self.backup.exists():
                    return {}  # a new server: nobody yet
            except (OSError, ValueError):
                log.error("The list of names %s is damaged.", path)
        raise IdentityError(f"The class's list of names is damaged, so nobody can join until the teacher repairs "
                            f"{self.path.name} in the server's cache folder.")

    def claim(self, name: str, admin_password: str = "", expected_password: str = "") -> tuple[Person, str]:
        """Claim a free name; returns the person and their key. An admin password, if given, must be right."""
        name = unicodedata.normalize("NFKC", " ".join(name.split()))
        if not NAME.match(name):
            raise IdentityError("A name is 1 to 32 letters, digits, spaces, dots, dashes or apostrophes.")
        if len({_script(c) for c in name if c.isalpha()}) > 1:
            raise IdentityError("A name is written in one alphabet: letters of two (a Cyrillic \"а\" among Latin "
                                "ones) would look like someone else's name.")
        if skeleton(name) in RESERVED:
            raise IdentityError(f"The name {name!r} is kept for this server's own runs; choose another.")
        admin = bool(admin_password)
        if admin:
            self._check_password(name, admin_password, expected_password)
        with FileLock(self.path.with_name(f".{self.path.name}.lock")):
            people = self._read()
            if skeleton(name) in {skeleton(n) for n in people}:
                raise IdentityError(f"The name {name!r} is taken. Choose another, or open your own link: it holds "
                                    "your key.")
            if not admin and len(people) >= load_settings().max_people:  # a teacher can always join
                raise IdentityError(f"This server has {len(people):,} names already, the most it takes; ask the "
                                    "teacher.")
            key = secrets.token_urlsafe(16)
            people[name] = {"key": _hash(key), "admin": admin}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                shutil.copyfile(self.path, self.backup)
            with written_whole(self.path, durable=True) as tmp:
                tmp.write_text(json.dumps(people, indent=1))
        return Person(name, admin), key

    @staticmethod
    def _check_password(name: str, given: str, expected: str) -> None:
        """Compared as UTF-8 bytes (compare_digest refuses text that is not ASCII), at most a few a minute."""
        WRONG_PASSWORDS.check(load_settings().admin_tries_per_minute)
        if not (expected and hmac.compare_digest(given.encode(), expected.encode())):
            WRONG_PASSWORDS.wrong(name)
            raise IdentityError("That admin password is not right; leave it empty to join as a learner.")

    def learners(self) -> list[str]:
        """The names claimed without admin rights, for the class page."""
        return sorted(name for name, record in self._read().items() if not record["admin"])

    def by_key(self, key: str) -> Person | None:
        if not key:
            return None
        digest = _hash(key)
        try:
            people = self._read()
        except IdentityError:
            return None
        for name, record in people.items():
            if hmac.compare_digest(record["key"], digest):
                return Person(name, record["admin"])
        return None


def logged_in(email: str, admins: tuple[str, ...]) -> Person:
    """A person named by st.login: their e-mail; an admin when the settings list it."""
    return Person(email, admin=email.casefold() in {a.casefold() for a in admins})
