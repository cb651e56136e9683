"""The thread executor: a job runs in a background thread of the app's process (the embedded default)."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable


class ThreadExecutor:
    def launch(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread


def wait_until_gone(thread: threading.Thread, timeout: float = 10.0) -> None:
    """Join `thread`, then wait until the operating system has ended it too (on Linux). Python counts a thread
    ended before its C++ thread-locals (torch's, OpenMP's) are torn down; a process that exits in that moment can
    abort with "terminate called without an active exception", as a command-line run once did in CI."""
    thread.join(timeout)
    task = Path(f"/proc/self/task/{thread.native_id}")
    deadline = time.monotonic() + timeout
    while thread.native_id is not None and task.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
