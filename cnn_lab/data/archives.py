"""Archives (.tar.gz, .zip) extracted once into the cache, safely: unsafe paths, links, special files and bombs are
refused with one sentence, and a refused or broken archive leaves nothing behind. Local archives in CNN_LAB_DATA
stand in for downloads."""
from __future__ import annotations

import lzma
import shutil
import struct
import tarfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock

from cnn_lab.data.folders import load_folder, visible_entries
from cnn_lab.data.splits import SPLITS, DatasetError, DatasetUnavailable, ImageDataset
from cnn_lab.downloads import Reporter
from cnn_lab.limits import enforce_disk_budget, in_data_folder
from cnn_lab.paths import cache_root, data_root
from cnn_lab.settings import load_settings


# How an archive's name says what it is. Its kind is chosen by its name, and its content must agree: a bzip2 tar
# named "photos.zip" is refused before a byte of it is unpacked, instead of going down the tar path unchecked.
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
RATIO_FLOOR_BYTES = 2**20  # a small archive may unpack to this much whatever its ratio (tar's headers compress well)


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may unpack to: a number of files, and bytes in all (the least of a size limit and a number
    of times the archive's own size: a bomb's sign, since photos barely compress)."""
    archive: Path
    max_files: int
    max_bytes: int

    @classmethod
    def of(cls, archive: Path, max_bytes: int, max_files: int | None) -> ArchiveLimits:
        settings = load_settings()
        allowed = max(settings.archive_max_ratio * archive.stat().st_size, RATIO_FLOOR_BYTES)
        return cls(archive, max_files or settings.archive_max_files, int(min(max_bytes, allowed)))

    def refuse_if_over(self, files: int, unpacked: int, so_far: bool = False) -> None:
        """Refuse at the first limit passed: called before a zip's members are read (from the counts its directory
        declares), and as a tar is read, member by member (`so_far`: the counts up to this member)."""
        name, at_least = self.archive.name, "at least " if so_far else ""
        if files > self.max_files:
            raise DatasetError(f"The archive {name} holds {at_least}{files:,} files, more than the "
                               f"{self.max_files:,} this server takes from one archive; it was not used.")
        if unpacked > self.max_bytes:
            ratio = unpacked / max(1, self.archive.stat().st_size)
            raise DatasetError(f"The archive {name} unpacks to {at_least}{unpacked / 2**20:,.0f} MB in {files:,} "
                               f"file{'s' if files != 1 else ''} ({ratio:,.0f} times its own size), more than this "
                               "server extracts; it was not used.")


def extract_archive(archive: str | Path, max_bytes: int = 2 * 2**30, max_files: int | None = None) -> Path:
    """Extract a .zip or a tar (.tar.gz, ...) once into the cache and return the folder. Unsafe paths, links,
    special files and bombs are refused with one sentence, at the first limit passed; the extraction happens in a
    temporary folder that is renamed only when complete, so a refused or broken archive leaves nothing behind."""
    archive = Path(archive)
    is_zip = archive.name.lower().endswith(ZIP_SUFFIXES)
    if not (is_zip or archive.name.lower().endswith(TAR_SUFFIXES)):
        raise DatasetError(f"{archive.name} is not a zip or tar archive: CNN Lab reads photos from class folders, "
                           "as they are or zipped (.zip, .tar.gz).")
    if is_zip != zipfile.is_zipfile(archive):  # the name says one kind, the content another
        raise DatasetError(f"{archive.name} is not a zip or tar archive as its name says (it is damaged, or another "
                           "kind of file renamed); it was not used.")
    limits = ArchiveLimits.of(archive, max_bytes, max_files)
    stat = archive.stat()
    target = cache_root() / "extracted" / f"{archive.name}-{stat.st_size}-{stat.st_mtime_ns}"
    if (target / ".complete").exists():
        return target
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    partial.mkdir(parents=True)
    try:
        (_extract_zip if is_zip else _extract_tar)(archive, partial, limits)
        (partial / ".complete").touch()
        # Two extractions of the same archive (two people's uploads, two processes) finish one at a time: else one
        # could remove the other's finished folder while it is read, or fail to rename onto it.
        with FileLock(target.with_name(f".{target.name}.lock")):
            if not (target / ".complete").exists():  # else another upload of the same file got there first
                shutil.rmtree(target, ignore_errors=True)  # an older, incomplete extraction
                partial.rename(target)
    except NotImplementedError:  # a zip member compressed with a method Python's zipfile lacks
        raise DatasetError(f"The archive {archive.name} uses a compression method this server cannot read; zip it "
                           "again with the usual settings (deflate).") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, UnicodeError, zlib.error, lzma.LZMAError) as error:
        raise DatasetError(f"The archive {archive.name} is damaged or cannot be read ({type(error).__name__}); "
                           "it was not used.") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    enforce_disk_budget(keep=target)
    return target


def _extract_tar(archive: Path, target: Path, limits: ArchiveLimits) -> None:
    """A tar read member by member: each is checked (count, bytes unpacked so far, type) and extracted before the
    next is read, so a bomb of empty members is refused after the first limit it passes, not after a list of all
    of them is built. (Not tarfile's stream mode, "r|*": it copies its whole decompressed buffer at each header
    read, so a bomb whose blocks decompress to megabytes makes every member cost milliseconds.)"""
    with tarfile.open(archive, mode="r:*") as tar:
        for files, member in enumerate(tar, start=1):
            # tar.offset: the bytes decompressed so far, the headers included
            limits.refuse_if_over(files, tar.offset, so_far=True)
            if not (member.isfile() or member.isdir()):
                kind = "link" if (member.issym() or member.islnk()) else "special file"
                raise DatasetError(f"The archive {archive.name} holds a {kind} ({member.name}); only files and "
                                   "folders are allowed, so it was not used.")
            try:
                tar.extract(member, target, filter="data")
            except tarfile.FilterError as error:  # absolute or escaping paths, odd permissions
                raise DatasetError(f"The archive {archive.name} holds an unsafe entry ({error}); it was not "
                                   "used.") from None


def declared_zip_entries(archive: Path) -> int | None:
    """How many entries a zip's end-of-central-directory record declares, read from its last bytes before the
    directory itself is parsed (zipfile builds an object per entry: half a million of them in a 25 MB upload)."""
    with open(archive, "rb") as file:
        file.seek(0, 2)
        tail_start = max(0, file.tell() - (22 + 65535))  # the record (22 bytes) and a comment of at most 64 kB
        file.seek(tail_start)
        tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise zipfile.BadZipFile("no end of central directory")
    entries = struct.unpack("<H", tail[at + 10:at + 12])[0]
    return entries if entries != 0xFFFF else None  # zip64 keeps its count elsewhere: counted once parsed


def _extract_zip(archive: Path, target: Path, limits: ArchiveLimits) -> None:
    declared = declared_zip_entries(archive)
    if declared is not None:
        limits.refuse_if_over(declared, 0)
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        limits.refuse_if_over(len(infos), sum(i.file_size for i in infos))
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
    settings = load_settings()
    upload = options.get("upload") and settings.shared and not in_data_folder(archive)
    # A person's archive on a class server brings at most the images one upload may: refused before extracting more
    extracted = extract_archive(archive, max_files=settings.upload_max_images if upload else None)
    try:
        return load_folder(dataset_root(extracted), **options)
    except DatasetError as error:
        raise DatasetError(str(error).replace(str(extracted), archive.name)) from None


def load_local(stem: str, size: int, reporter: Reporter | None = None,
               peak_gb: Callable[[int], float] | None = None) -> ImageDataset:
    """A dataset in CNN_LAB_DATA by its stem, extracted once; `peak_gb` as for load_folder."""
    source = local_archive(stem)
    if source is None:
        raise DatasetUnavailable(f"{stem} is not on this machine: put {stem}.tar.gz in the folder named by CNN_LAB_DATA.")
    options = dict(size=size, reporter=reporter, peak_gb=peak_gb)
    dataset = load_folder(dataset_root(source), **options) if source.is_dir() else load_archive(source, **options)
    dataset.name = stem
    return dataset
