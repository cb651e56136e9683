"""Downloads with progress and cancel. A file is written under a temporary name and renamed only once it is
whole (and its checksum matches), so a failed or cancelled download leaves nothing that breaks the next try.

`Reporter` carries where a long step's progress goes and the event that cancels it (hooks.py's forward hooks are
another idea); a training job passes its log and its Stop flag, a page passes a background task's. Page-started downloads run in `BACKGROUND`, owned by the process, so a
refresh or a second tab finds the same download instead of starting another.
"""
from __future__ import annotations

import hashlib
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cnn_lab.metrics import StoppedBeforeTraining


class DownloadError(RuntimeError):
    """A download that did not complete; the message is one sentence."""


class DownloadCancelled(DownloadError, StoppedBeforeTraining):
    """The user cancelled the download (or stopped the job that needed it)."""


@dataclass
class Progress:
    """How far a long step before training is: a download (in bytes), or images decoded or passed through a
    frozen backbone (in images)."""
    label: str  # what is happening, e.g. "downloading CIFAR-10" or "decoding the images"
    done: int  # bytes or images so far
    total: int | None  # in all, when known
    seconds: float
    unit: str = "bytes"  # or "images"

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def text(self) -> str:
        """'downloading CIFAR-10: 12.0 of 170.5 MB · 4.0 MB/s · ETA 40 s', or 'decoding the images: 1,200 of
        20,000 images · 150 images/s · ETA 112 s'."""
        rate = self.done / max(self.seconds, 1e-3)
        eta = f" · ETA {(self.total - self.done) / rate:.0f} s" if self.total and rate > 0 else ""
        if self.unit == "images":
            return f"{self.label}: {self.done:,} of {self.total or 0:,} images · {rate:,.0f} images/s{eta}"
        size = f"{self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB" if self.total else f"{self.done / 1e6:.1f} MB"
        return f"{self.label}: {size} · {rate / 1e6:.1f} MB/s{eta}"


@dataclass
class Reporter:
    """Where a download's or a decoding's progress goes, and the event that stops it."""
    report: Callable[[Progress], None] | None = None
    cancel: threading.Event | None = None

    def count(self, label: str, done: int, total: int, started: float) -> None:
        """Report `done` of `total` images of a long step before training (decoding, feature extraction)."""
        if self.report is not None:
            self.report(Progress(label, done, total, time.perf_counter() - started, unit="images"))

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled("The download was cancelled; nothing was kept, and the next try starts afresh.")


def fetch(url: str, dest: Path, label: str, md5: str | None = None, reporter: Reporter | None = None,
          timeout: float = 20.0, every: float = 0.25) -> Path:
    """Download `url` to `dest` (nothing to do when it is already there), reporting progress every `every` s."""
    reporter = reporter or Reporter()
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")  # each download its own temp file
    start = last = time.perf_counter()
    digest = hashlib.md5()
    try:
        reporter.check()
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(1 << 16):
                reporter.check()
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if reporter.report and time.perf_counter() - last >= every:
                    last = time.perf_counter()
                    reporter.report(Progress(f"downloading {label}", done, total, last - start))
        if total is not None and done != total:
            raise DownloadError(f"The download of {label} broke off after {done:,} of {total:,} bytes; try again.")
        if md5 and digest.hexdigest() != md5:
            raise DownloadError(f"The download of {label} is corrupt (its checksum does not match); try again.")
        if reporter.report:
            reporter.report(Progress(f"downloading {label}", done, total, time.perf_counter() - start))
        partial.replace(dest)
        return dest
    except (urllib.error.URLError, OSError) as error:  # DNS, refused, timed out, HTTP errors, a full disk
        reason = getattr(error, "reason", None) or error
        raise DownloadError(f"{label} could not be downloaded ({type(error).__name__}: {reason}).") from None
    finally:
        partial.unlink(missing_ok=True)


_reachable_cache: dict[str, tuple[float, bool]] = {}


def reachable(url: str, timeout: float = 2.0, ttl: float = 30.0) -> bool:
    """Whether the host of `url` answers a TCP connection (checked at most every `ttl` seconds per host)."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    key = f"{host}:{port}"
    seen = _reachable_cache.get(key)
    if seen and time.monotonic() - seen[0] < ttl:
        return seen[1]
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        ok = True
    except OSError:
        ok = False
    _reachable_cache[key] = (time.monotonic(), ok)
    return ok


# ---------------------------------------------------------------- downloads started from a page


@dataclass
class Task:
    name: str
    label: str
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: Progress | None = None
    status: str = "running"  # running | done | failed | cancelled
    message: str = ""
    result: Path | None = None
    thread: threading.Thread | None = None
    started_by: str = "you"  # who may cancel it, besides an admin: every page of a class server shows it

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Background:
    """One download per name at a time, in a thread owned by the process."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def start(self, name: str, label: str, work: Callable[[Reporter], Path], started_by: str = "you") -> Task:
        with self._lock:
            task = self._tasks.get(name)
            if task and task.alive:
                return task  # a second tab or a double click joins the download under way
            task = Task(name, label, started_by=started_by)
            reporter = Reporter(report=lambda progress: setattr(task, "progress", progress), cancel=task.cancel)
            task.thread = threading.Thread(target=self._run, args=(task, work, reporter), name=f"download-{name}",
                                           daemon=True)
            self._tasks[name] = task
            task.thread.start()
            return task

    @staticmethod
    def _run(task: Task, work: Callable[[Reporter], Path], reporter: Reporter) -> None:
        try:
            task.result = work(reporter)
            task.status = "done"
        except DownloadCancelled as error:
            task.status, task.message = "cancelled", str(error)
        except Exception as error:  # noqa: BLE001 - the page shows the sentence; a thread must never die silently
            task.status, task.message = "failed", str(error)

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def forget(self, name: str) -> None:
        with self._lock:
            task = self._tasks.get(name)
            if task and not task.alive:
                del self._tasks[name]


BACKGROUND = Background()
