"""Archives (.tar.gz, .zip) extracted once into the cache, safely: unsafe paths, links, special files and bombs are
refused with one sentence, and a refused or broken archive leaves nothing behind. Local archives in CNN_LAB_DATA
stand in for downloads."""
from __future__ import annotations

import shutil
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Callable

from filelock import FileLock

from cnn_lab.data.folders import load_folder, visible_entries
from cnn_lab.data.splits import SPLITS, DatasetError, DatasetUnavailable, ImageDataset
from cnn_lab.downloads import Hooks
from cnn_lab.limits import enforce_disk_budget
from cnn_lab.paths import cache_root, data_root
from cnn_lab.settings import load_settings


def extract_archive(archive: str | Path, max_bytes: int = 2 * 2**30, max_files: int = 200_000) -> Path:
    """Extract a .tar.gz or .zip once into the cache and return the folder. Unsafe paths, links, special files and
    bombs are refused with one sentence; the extraction happens in a temporary folder that is renamed only when
    complete, so a refused or broken archive leaves nothing behind."""
    archive = Path(archive)
    stat = archive.stat()
    target = cache_root() / "extracted" / f"{archive.name}-{stat.st_size}-{stat.st_mtime_ns}"
    if (target / ".complete").exists():
        return target
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    partial.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, partial, max_bytes, max_files)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, partial, max_bytes, max_files)
        else:
            raise DatasetError(f"{archive.name} is not a zip or tar archive: CNN Lab reads photos from class "
                               "folders, as they are or zipped (.zip, .tar.gz).")
        (partial / ".complete").touch()
        # Two extractions of the same archive (two people's uploads, two processes) finish one at a time: else one
        # could remove the other's finished folder while it is read, or fail to rename onto it.
        with FileLock(target.with_name(f".{target.name}.lock")):
            if not (target / ".complete").exists():  # else another upload of the same file got there first
                shutil.rmtree(target, ignore_errors=True)  # an older, incomplete extraction
                partial.rename(target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, UnicodeError) as error:
        raise DatasetError(f"The archive {archive.name} is damaged or cannot be read ({type(error).__name__}); "
                           "it was not used.") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    enforce_disk_budget(keep=target)
    return target


def _check_unpacked_size(archive: Path, files: int, unpacked: int, max_bytes: int, max_files: int) -> None:
    """Refuse, before extracting anything, an archive with too many files, too many bytes in all, or far more bytes
    than its own size (a bomb: photos barely compress, so a real archive unpacks to about its own size)."""
    ratio = unpacked / max(1, archive.stat().st_size)
    if files > max_files or unpacked > max_bytes or ratio > load_settings().archive_max_ratio:
        raise DatasetError(f"The archive {archive.name} unpacks to {unpacked / 2**20:,.0f} MB in {files:,} "
                           f"file{'s' if files != 1 else ''} ({ratio:,.0f} times its own size), more than this server "
                           "extracts; it was not used.")


def _extract_tar(archive: Path, target: Path, max_bytes: int, max_files: int) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        _check_unpacked_size(archive, len(members), sum(m.size for m in members), max_bytes, max_files)
        odd = next((m for m in members if not (m.isfile() or m.isdir())), None)
        if odd is not None:
            kind = "link" if (odd.issym() or odd.islnk()) else "special file"
            raise DatasetError(f"The archive {archive.name} holds a {kind} ({odd.name}); only files and folders are "
                               "allowed, so it was not used.")
        try:
            tar.extractall(target, filter="data")
        except tarfile.FilterError as error:  # absolute or escaping paths, odd permissions
            raise DatasetError(f"The archive {archive.name} holds an unsafe entry ({error}); it was not used.") from None


def _extract_zip(archive: Path, target: Path, max_bytes: int, max_files: int) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        _check_unpacked_size(archive, len(infos), sum(i.file_size for i in infos), max_bytes, max_files)
        for info in infos:
            path = (target / info.filename).resolve()
            if not path.is_relative_to(target.resolve()) or info.filename.startswith(("/", "\\")):
                raise DatasetError(f"The zip {archive.name} holds an unsafe path ({info.filename}); it was not used.")
        for info in infos:
            path = target / info.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(path, "wb") as dst:
                written = 0
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size:  # a lying header: stop before it fills the disk
                        raise DatasetError(f"The zip {archive.name} holds a file larger than its header says.")
                    dst.write(chunk)


def dataset_root(folder: Path) -> Path:
    """The folder that holds the classes or the splits: skips single wrapper folders such as `boats9/`. A single
    folder of photos alone is a class, not a wrapper, so that a zip of one class hears that it has one class."""
    while True:
        children = visible_entries(folder)
        only = children[0] if len(children) == 1 and children[0].is_dir() else None
        if only is None or only.name in SPLITS or not any(p.is_dir() for p in visible_entries(only)):
            return folder
        folder = only


def local_archive(stem: str) -> Path | None:
    """`<data_root>/<stem>.tar.gz` (or `.zip`, or an extracted folder), when it is on this machine."""
    root = data_root()
    if root is None:
        return None
    for candidate in (root / f"{stem}.tar.gz", root / f"{stem}.zip", root / stem):
        if candidate.exists():
            return candidate
    return None


def load_archive(archive: Path, **options) -> ImageDataset:
    """The photos in an archive, extracted once; `options` as for load_folder. A sentence about the photos names the
    archive the person gave (an upload keeps its own name), not the cache folder it was extracted into: "The folder
    boats.zip/kayak has no class folders", not a server's path and a hash."""
    extracted = extract_archive(archive)
    try:
        return load_folder(dataset_root(extracted), **options)
    except DatasetError as error:
        raise DatasetError(str(error).replace(str(extracted), archive.name)) from None


def load_local(stem: str, size: int, hooks: Hooks | None = None,
               peak_gb: Callable[[int], float] | None = None) -> ImageDataset:
    """A dataset in CNN_LAB_DATA by its stem, extracted once; `peak_gb` as for load_folder."""
    source = local_archive(stem)
    if source is None:
        raise DatasetUnavailable(f"{stem} is not on this machine: put {stem}.tar.gz in the folder named by CNN_LAB_DATA.")
    options = dict(size=size, hooks=hooks, peak_gb=peak_gb)
    dataset = load_folder(dataset_root(source), **options) if source.is_dir() else load_archive(source, **options)
    dataset.name = stem
    return dataset
