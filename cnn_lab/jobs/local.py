"""The thread executor: a job runs in a background thread of the app's process (the embedded default)."""
from __future__ import annotations

import threading
from typing import Callable


class ThreadExecutor:
    def launch(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

