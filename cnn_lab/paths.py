"""Where CNN Lab keeps its cache (decoded datasets, features, runs) and finds local data."""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def cache_root() -> Path:
    """`CNN_LAB_CACHE`, else `$XDG_CACHE_HOME/cnn_lab`, else `~/.cache/cnn_lab`."""
    if os.environ.get("CNN_LAB_CACHE"):
        root = Path(os.environ["CNN_LAB_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnn_lab"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def written_whole(path: Path, durable: bool = False) -> Iterator[Path]:
    """A temporary file beside `path` to write; once written, it replaces `path` in one step (a rename). So a reader
    never sees half a file, a killed process never leaves one, and two writers at once (two people's apps on one
    server) each write their own temporary file. Its name keeps the suffix (numpy adds ".npz" otherwise).
    `durable`: flushed to the disk before and after the rename, so that a power cut leaves the old file or the new,
    never an empty one (for the few files that cannot be rebuilt, such as the class's names)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as file:
                os.fsync(file.fileno())
        tmp.replace(path)
        if durable:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


def data_root() -> Path | None:
    """The folder of local datasets: `CNN_LAB_DATA`, else `../shared/datasets` beside the project.
    `CNN_LAB_DATA=` (set but empty) means no data folder at all, as on a newcomer's machine."""
    if "CNN_LAB_DATA" in os.environ:
        return Path(os.environ["CNN_LAB_DATA"]) if os.environ["CNN_LAB_DATA"] else None
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    return shared if shared.is_dir() else None
