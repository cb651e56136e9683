"""Budgets and fences for a server that strangers use: which folders a browser may point the app at, where
uploads go (filed by their content, so the same file is stored and extracted once, under the person's own name),
how much disk the uploads and caches may take (the oldest go first), how much memory one job may take, and how many
images, and how many decoded pixels per uploaded byte, one person's upload may bring."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from cnn_lab.paths import cache_root, data_root, written_whole
from cnn_lab.runs import runs_root
from cnn_lab.settings import load_settings


class LimitError(ValueError):
    """An input beyond what this server allows; the message is one sentence."""


def uploads_root() -> Path:
    root = cache_root() / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    return root


def owner_mark(owner: str) -> str:
    """The file that marks an upload folder as given by `owner` (a hash: nobody's name is written beside the files)."""
    return f".by-{hashlib.sha256(owner.encode()).hexdigest()[:16]}"


def allowed_folder(text: str, owner: str | None = None) -> Path:
    """The folder a page was given, resolved. Refused: an empty path (both modes); in shared mode anything outside
    the data folder (resolved first, so `..` and symbolic links cannot leave it), except `owner`'s own uploads. The
    refusal names no path of the server's."""
    if not text.strip():
        raise LimitError("Type a folder's path: an empty path is not a folder.")
    path = Path(text.strip()).expanduser().resolve()
    if load_settings().shared and not (in_data_folder(path) or _own_upload(path, owner)):
        raise LimitError("On this shared server only folders inside the class's data folder (the one its teacher "
                         "set up) can be used; upload your own photos as a zip instead.")
    return path


def _own_upload(path: Path, owner: str | None) -> bool:
    """Whether `path` lies in an upload folder that `owner` gave (its content's hash folder holds their mark)."""
    root = uploads_root().resolve()
    if owner is None or path == root or not path.is_relative_to(root):
        return False
    return (root / path.relative_to(root).parts[0] / owner_mark(owner)).exists()


def in_data_folder(path: Path) -> bool:
    """Whether a path lies inside CNN_LAB_DATA: data the server's owner put there, not a person's upload."""
    root = data_root()
    return root is not None and path.resolve().is_relative_to(root.resolve())


def upload_name(name: str) -> str:
    """The name an upload is stored under: the person's own file name, so that every sentence about it names what they
    gave, made safe: no folders (`../`), no leading dot, only letters, digits, spaces, dots, dashes, underscores and
    round brackets, at most about 100 characters, and its archive suffix kept."""
    base = Path(name.replace("\\", "/")).name
    suffix = ".tar.gz" if base.lower().endswith(".tar.gz") else Path(base).suffix.lower()
    stem = re.sub(r"[^\w .()-]+", "_", base[: len(base) - len(suffix)]).strip(" .")[:100]
    return f"{stem or 'upload'}{re.sub(r'[^a-z0-9.]', '', suffix)[:10]}"


def save_upload(content: bytes, name: str, owner: str = "you") -> Path:
    """Store an upload as `uploads/<hash of its content>/<its own name>`: the same file twice is one file, extracted
    once; the same bytes under another name are a link to that file (no second copy), under the name this person
    gave it, so that nobody sees another person's file name. The folder is marked as `owner`'s, and counts against
    their disk quota (shared mode)."""
    folder = uploads_root() / hashlib.sha256(content).hexdigest()[:24]
    check_person_disk(owner, len(content))
    folder.mkdir(exist_ok=True)
    (folder / owner_mark(owner)).touch()
    path = folder / upload_name(name)
    if not path.exists():
        stored = next((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), None)
        if stored is not None:
            with contextlib.suppress(OSError):  # no links on this file system, or another app linked it meanwhile
                os.link(stored, path)
        if not path.exists():  # the first name for these bytes, or no link was made
            with written_whole(path) as tmp:
                tmp.write_bytes(content)
    os.utime(folder)  # used now: the disk budget removes the least recently used first
    enforce_disk_budget(keep=path)
    return path


def person_disk_bytes(owner: str) -> int:
    """What `owner` keeps on this server's disk: their run folders (trained and imported) and their uploads."""
    total = 0
    for folder in runs_root().iterdir():
        with contextlib.suppress(OSError, ValueError, KeyError):
            if json.loads((folder / "status.json").read_text()).get("owner", "you") == owner:
                total += _size(folder)
    mark = owner_mark(owner)
    return total + sum(_size(folder) for folder in uploads_root().iterdir() if (folder / mark).exists())


def check_person_disk(owner: str, adding: int = 0) -> None:
    """Refuse, in shared mode, what would take `owner` past their share of the disk (CNN_LAB_PERSON_DISK_MB)."""
    settings = load_settings()
    if not settings.shared:
        return
    used, quota = person_disk_bytes(owner) + adding, settings.person_disk_mb * 2**20
    if used > quota:
        raise LimitError(f"This would bring your runs and uploads on this server to {used / 2**20:,.0f} MB, over the "
                         f"{settings.person_disk_mb:,.0f} MB each person may keep: delete some of your runs first.")


BUDGETED = ("uploads", "extracted", "datasets", "features")  # what the disk budget may remove, under the cache


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _usage(path: Path) -> tuple[float, int] | None:
    """When an entry was last used, and its bytes; None when it went meanwhile (the apps of a shared server share
    one cache: another may have just removed or replaced it)."""
    try:
        return path.stat().st_mtime, _size(path)
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def in_use(path: Path) -> Iterator[None]:
    """Mark a cache entry as used by this process while the block runs (a marker file naming it, so that other
    processes sharing the cache see it too): the disk budget never removes it, so a folder is never taken away from
    under a job that decodes it."""
    folder = cache_root() / ".in-use"
    folder.mkdir(exist_ok=True)
    marker = folder / f"{os.getpid()}-{secrets.token_hex(4)}"
    marker.write_text(str(Path(path).resolve()))
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def _used_now() -> list[Path]:
    """The entries some living process marked with in_use; a dead process's markers are removed."""
    used = []
    folder = cache_root() / ".in-use"
    for marker in folder.iterdir() if folder.is_dir() else ():
        try:
            with contextlib.suppress(PermissionError):  # alive, as another user
                os.kill(int(marker.name.split("-")[0]), 0)
            used.append(Path(marker.read_text()))
        except ProcessLookupError:
            marker.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue  # written or removed this instant
    return used


def enforce_disk_budget(budget_bytes: int | None = None, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used uploads, extractions and caches until they fit the budget; returns what
    went. `keep` (what is being used now), and whatever a job marked in use, is never removed."""
    budget = budget_bytes if budget_bytes is not None else int(load_settings().disk_budget_gb * 2**30)
    usage = {}
    for folder in BUDGETED:
        if (cache_root() / folder).is_dir():
            for entry in (cache_root() / folder).iterdir():
                if not entry.name.startswith(".") and (used := _usage(entry)) is not None:
                    usage[entry] = used
    total, removed = sum(size for _, size in usage.values()), []
    kept = ([keep] if keep is not None else []) + _used_now()
    for entry in sorted(usage, key=lambda e: usage[e][0]):
        if total <= budget:
            break
        if any(entry == path or path.is_relative_to(entry) or path.is_relative_to(entry.resolve()) for path in kept):
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        total -= usage[entry][1]
        removed.append(entry)
    return removed


def check_decode_budget(count: int, channels: int, size: int) -> None:
    """Refuse, before decoding anything, a dataset whose arrays would pass the memory budget."""
    needed = count * channels * size * size
    budget = load_settings().decode_budget_gb * 2**30
    if needed > budget:
        raise LimitError(
            f"Decoding these {count:,} images at {size}x{size} pixels would take {needed / 2**30:.1f} GB of memory, "
            f"over this server's {budget / 2**30:.1f} GB limit: use fewer images or a smaller image size."
        )


def check_job_memory(peak_gb: float, images: int, size: int) -> None:
    """Refuse, before decoding anything, a job whose whole peak memory (estimated from measured figures: its photos,
    its network, its training) would pass the budget. Shared mode only: on their own machine, a person decides."""
    budget = load_settings().decode_budget_gb
    if load_settings().shared and peak_gb > budget:
        raise LimitError(
            f"This job would take about {peak_gb:.1f} GB of memory at its peak (its {images:,} photos at {size}x{size} "
            f"pixels and the network training on them), over this server's {budget:.1f} GB limit for one job: use "
            "fewer photos, a smaller image size, or the linear probe."
        )


MAX_IMAGE_SIDE = 1024  # pixels: the largest image side a model here is fed (transfer's sizes, imported models)

# Bytes a training step holds per parameter: float32 weights, their gradients, and up to two optimizer states
# (Adam's moments; SGD with momentum keeps one). Per activation value: its float32 output, and its gradient.
BYTES_PER_PARAMETER = 4 * 4
BYTES_PER_ACTIVATION = 4 * 2


def training_memory_gb(parameters: int, activations_per_image: int, batch: int) -> float:
    """A training step's memory, from the model's size on the meta device: its parameters and one batch's
    activations (the decoded data is checked on its own, before it is decoded)."""
    return (parameters * BYTES_PER_PARAMETER + activations_per_image * batch * BYTES_PER_ACTIVATION) / 2**30


def check_training_memory(parameters: int, activations_per_image: int, batch: int) -> None:
    """Refuse, before anything is built or loaded, a model whose parameters and one batch's activations would pass
    the budget for one job's memory: in both modes, since an out-of-memory laptop is a failure too."""
    needed = training_memory_gb(parameters, activations_per_image, batch)
    budget = load_settings().decode_budget_gb
    if needed > budget:
        raise LimitError(f"This model has {parameters:,} parameters; training it in batches of {batch:,} would take "
                         f"about {needed:,.1f} GB of memory, over the {budget:g} GB one job may use here: choose "
                         "smaller widths or hidden sizes, or a smaller batch.")


def check_upload(root: Path, size: int) -> None:
    """Refuse, before decoding anything, a person's zip or folder (in shared mode; not one inside CNN_LAB_DATA) with
    more images than one upload may bring, or one that decoding at size x size would blow up far beyond its bytes
    (thousands of 1-pixel GIFs become thousands of full-size arrays)."""
    settings = load_settings()
    if not settings.shared or in_data_folder(root):
        return
    files = []
    for file in root.rglob("*"):  # counted as they are found: a tree of millions is refused at the first one too many
        if file.is_file() and not file.name.startswith("."):
            files.append(file)
            if len(files) > settings.upload_max_images:
                break
    count, stored_bytes = len(files), sum(f.stat().st_size for f in files)
    if count > settings.upload_max_images:
        raise LimitError(f"This upload holds more than {settings.upload_max_images:,} files, the most one upload may "
                         "bring to this shared server: use fewer images.")
    pixels = count * size * size
    per_byte = pixels / max(1, stored_bytes)
    if per_byte > settings.upload_max_pixels_per_byte:
        stored = f"{stored_bytes / 2**20:.1f} MB" if stored_bytes >= 2**20 else f"{stored_bytes / 2**10:.1f} kB"
        decoded = f"{pixels / 1e6:,.0f} million" if pixels >= 1e6 else f"{pixels:,}"
        raise LimitError(f"These {count:,} files take {stored} but would decode to {decoded} pixels at {size}x{size} "
                         f"({per_byte:,.0f} per byte, over this server's {settings.upload_max_pixels_per_byte:,.0f}): "
                         "use real photos, not tiny or empty images.")
