"""Dataset registry: every dataset becomes uint8 image tensors (N, C, H, W), int64 labels and class names.

Decoding happens once; later loads read a cache of arrays keyed by a fingerprint of the source, so a
changed source (a file added, removed or edited) is decoded again.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from cnn_lab.downloads import DownloadCancelled, DownloadError, Hooks, fetch, reachable
from cnn_lab.images import ImageError, read_rgb
from cnn_lab.limits import LimitError, check_decode_budget, enforce_disk_budget
from cnn_lab.paths import cache_root, data_root

SPLITS = ("train", "val", "test")


class DatasetUnavailable(RuntimeError):
    """The data cannot be had right now (offline, not on this machine); the message says how to provide it."""


class DatasetError(ValueError):
    """A dataset folder or archive that cannot be used as it is; the message is one sentence."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageDataset:
    name: str
    classes: list[str]
    splits: dict[str, Split]  # "train", "test" and, when the source has one, "val"
    skipped: int = 0  # files that were not images or were corrupt
    source_id: str = ""  # names the exact source and settings (a hash), for caches built on top of this one

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"].images.shape[1:])

    def class_counts(self, split: str = "train") -> list[int]:
        return torch.bincount(self.splits[split].labels, minlength=len(self.classes)).tolist()


# ---------------------------------------------------------------- the array cache


def _cache_file(key: str, fingerprint: str) -> Path:
    folder = cache_root() / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:16]}.npz"


def _save(path: Path, dataset: ImageDataset) -> None:
    arrays = {f"{name}_x": s.images.numpy() for name, s in dataset.splits.items()}
    arrays |= {f"{name}_y": s.labels.numpy() for name, s in dataset.splits.items()}
    meta = json.dumps({"name": dataset.name, "classes": dataset.classes, "skipped": dataset.skipped})
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")  # each writer its own temporary file
    np.savez(tmp, meta=np.array(meta), **arrays)
    tmp.replace(path)
    for stale in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _load(path: Path) -> ImageDataset:
    with np.load(path) as arrays:
        meta = json.loads(str(arrays["meta"]))
        splits = {
            name: Split(torch.from_numpy(arrays[f"{name}_x"]), torch.from_numpy(arrays[f"{name}_y"]))
            for name in SPLITS
            if f"{name}_x" in arrays
        }
    return ImageDataset(meta["name"], meta["classes"], splits, meta["skipped"])


def cached(key: str, fingerprint: str, build: Callable[[], ImageDataset]) -> ImageDataset:
    """Return the cached arrays for (key, fingerprint), building and saving them on a miss."""
    path = _cache_file(key, fingerprint)
    try:
        dataset = _load(path)
    except FileNotFoundError:
        dataset = None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # unreadable (cut short, corrupt): rebuild
        path.unlink(missing_ok=True)
        dataset = None
    if dataset is None:
        dataset = build()
        _save(path, dataset)
    dataset.source_id = path.stem
    return dataset


# ---------------------------------------------------------------- splits


def stratified_split(labels: torch.Tensor, fractions: dict[str, float], seed: int = 0) -> dict[str, torch.Tensor]:
    """Indices per split, the same class proportions in each; every class gets at least one image per split."""
    generator = torch.Generator().manual_seed(seed)
    names = list(fractions)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < len(names):
            raise DatasetError(
                f"Class {label} has only {len(members)} image(s): at least {len(names)} are needed "
                f"to put one in each of {', '.join(names)}."
            )
        members = members[torch.randperm(len(members), generator=generator)]
        counts = [max(1, round(fractions[name] * len(members))) for name in names[1:]]
        counts.insert(0, len(members) - sum(counts))
        if counts[0] < 1:
            raise DatasetError(f"Class {label} has too few images ({len(members)}) for the split {fractions}.")
        for name, chunk in zip(names, torch.split(members, counts)):
            parts[name].append(chunk)
    return {name: torch.cat(chunks).sort().values for name, chunks in parts.items()}


def split_of(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index], split.labels[index])


# ---------------------------------------------------------------- image folders


def _fingerprint_tree(root: Path) -> str:
    entries = []
    for folder, _, files in os.walk(root):
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            entries.append(f"{os.path.relpath(os.path.join(folder, name), root)}:{stat.st_size}:{stat.st_mtime_ns}")
    entries.sort()
    return hashlib.sha1("\n".join(entries).encode()).hexdigest()


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"The folder {folder} has no class sub-folders (expected <class>/<image> files).")
    found = {c.name: sorted(f for f in c.rglob("*") if f.is_file() and not f.name.startswith(".")) for c in classes}
    empty = [name for name, files in found.items() if not files]
    if empty:
        raise DatasetError(f"The class folder(s) {', '.join(empty)} in {folder} hold no files.")
    return found


def _decode(path: Path, size: int) -> np.ndarray | None:
    """One file -> uint8 (3, size, size), or None when it is not a readable image."""
    try:
        img = read_rgb(path)
    except ImageError:
        return None
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def _decode_split(files: dict[str, list[Path]], classes: list[str], size: int) -> tuple[Split, int]:
    """Decode every file into one array allocated up front (after checking it fits the memory budget)."""
    paths = [(path, classes.index(name)) for name, group in files.items() for path in group]
    try:
        check_decode_budget(len(paths), 3, size)
    except LimitError as error:
        raise DatasetError(str(error)) from None
    images = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def decode_into(index: int) -> bool:
        array = _decode(paths[index][0], size)
        if array is not None:
            images[index] = array
        return array is not None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        readable = np.fromiter(pool.map(decode_into, range(len(paths))), dtype=bool, count=len(paths))
    if not readable.any():
        raise DatasetError("None of the files in this folder is a readable image.")
    labels = torch.tensor([label for _, label in paths], dtype=torch.int64)[torch.from_numpy(readable)]
    kept = images if readable.all() else images[readable]  # a copy only when files were skipped
    return Split(torch.from_numpy(kept), labels), int((~readable).sum())


def load_folder(
    root: str | Path,
    size: int = 32,
    fractions: dict[str, float] | None = None,
    seed: int = 0,
) -> ImageDataset:
    """An ImageFolder tree, pre-split (`root/{train,val,test}/<class>/`) or not (`root/<class>/`), at size x size."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"The folder {root} does not exist.")
    fingerprint = f"{root.resolve()}|{size}|{fractions}|{seed}|{_fingerprint_tree(root)}"
    return cached(f"folder-{root.name}", fingerprint, lambda: _decode_folder(root, size, fractions, seed))


def _decode_folder(root: Path, size: int, fractions: dict[str, float] | None, seed: int) -> ImageDataset:
    present = [name for name in SPLITS if (root / name).is_dir()]
    if "train" in present:
        files = {name: _class_files(root / name) for name in present}
        classes = sorted(files["train"])
        for name in present:
            unknown = set(files[name]) - set(classes)
            if unknown:
                raise DatasetError(f"The {name} split has classes that train lacks: {', '.join(sorted(unknown))}.")
        splits, skipped = {}, 0
        for name in present:
            splits[name], count = _decode_split(files[name], classes, size)
            skipped += count
        if "test" not in splits:
            splits = _split_one(splits["train"], fractions or {"train": 0.8, "test": 0.2}, seed) | {
                k: v for k, v in splits.items() if k != "train"
            }
    else:
        files = _class_files(root)
        classes = sorted(files)
        everything, skipped = _decode_split(files, classes, size)
        splits = _split_one(everything, fractions or {"train": 0.7, "val": 0.15, "test": 0.15}, seed)
    if len(classes) < 2:
        raise DatasetError(f"The folder {root} has only one class ({classes[0]}): a classifier needs at least two.")
    return ImageDataset(root.name, classes, splits, skipped)


def _split_one(split: Split, fractions: dict[str, float], seed: int) -> dict[str, Split]:
    return {name: split_of(split, index) for name, index in stratified_split(split.labels, fractions, seed).items()}


# ---------------------------------------------------------------- archives


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
            raise DatasetError(f"{archive.name} is neither a zip nor a tar archive.")
        (partial / ".complete").touch()
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


def _extract_tar(archive: Path, target: Path, max_bytes: int, max_files: int) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        if len(members) > max_files or sum(m.size for m in members) > max_bytes:
            raise DatasetError(f"The archive {archive.name} is too large to extract here.")
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
        if len(infos) > max_files or sum(i.file_size for i in infos) > max_bytes:
            raise DatasetError(f"The zip {archive.name} unpacks to more than the allowed size; it was not extracted.")
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
    """The folder that holds the classes or the splits: skips single wrapper folders such as `boats9/`."""
    while True:
        children = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(children) == 1 and children[0].is_dir() and children[0].name not in SPLITS:
            folder = children[0]
        else:
            return folder


def local_archive(stem: str) -> Path | None:
    """`<data_root>/<stem>.tar.gz` (or `.zip`, or an extracted folder), when it is on this machine."""
    root = data_root()
    if root is None:
        return None
    for candidate in (root / f"{stem}.tar.gz", root / f"{stem}.zip", root / stem):
        if candidate.exists():
            return candidate
    return None


def load_local(stem: str, size: int) -> ImageDataset:
    source = local_archive(stem)
    if source is None:
        raise DatasetUnavailable(f"{stem} is not on this machine: put {stem}.tar.gz in the folder named by CNN_LAB_DATA.")
    folder = source if source.is_dir() else extract_archive(source)
    dataset = load_folder(dataset_root(folder), size=size)
    dataset.name = stem
    return dataset


# ---------------------------------------------------------------- built-in and torchvision sets


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels): real data that ships with the package."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy((bunch.images * (255 / 16)).round().astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    splits = _split_one(Split(images, labels), {"train": 0.8, "test": 0.2}, seed=0)
    return ImageDataset("digits", [str(d) for d in range(10)], splits)


def _torchvision_files(cls_name: str, root: Path) -> list[tuple[list[str], Path, str]]:
    """What torchvision would download for this set: (mirror URLs, where the file goes, md5) per file."""
    import torchvision.datasets as tvd

    dataset_cls = getattr(tvd, cls_name)
    if hasattr(dataset_cls, "tgz_md5"):  # CIFAR-10 and CIFAR-100: one archive
        return [([dataset_cls.url], root / dataset_cls.filename, dataset_cls.tgz_md5)]
    raw = root / cls_name / "raw"  # MNIST and Fashion-MNIST: four files, from any of the mirrors
    return [([mirror + name for mirror in dataset_cls.mirrors], raw / name, md5) for name, md5 in dataset_cls.resources]


def _download_torchvision(cls_name: str, title: str, root: Path, hooks: Hooks) -> None:
    """Fetch the set's files with progress and cancel; torchvision then finds them verified and only extracts."""
    files = _torchvision_files(cls_name, root)
    for index, (urls, dest, md5) in enumerate(files, start=1):
        label = title if len(files) == 1 else f"{title} (file {index} of {len(files)})"
        errors = []
        for url in urls:
            try:
                fetch(url, dest, label, md5, hooks)
                break
            except DownloadCancelled:
                raise
            except DownloadError as error:
                errors.append(error)
        else:
            raise DatasetUnavailable(
                f"{title} could not be downloaded: this machine cannot reach its server ({errors[-1]}) Use the "
                f"built-in Digits, or put the files in {root} (or an image-folder copy in CNN_LAB_DATA)."
            )


def _torchvision_set(name: str, title: str, cls_name: str, local_stem: str | None) -> Callable[[Hooks], ImageDataset]:
    def load(hooks: Hooks) -> ImageDataset:
        if local_stem and local_archive(local_stem):
            return load_local(local_stem, size=32 if "cifar" in local_stem else 28)
        import torchvision.datasets as tvd

        root = cache_root() / "torchvision"
        _download_torchvision(cls_name, title, root, hooks)
        dataset_cls = getattr(tvd, cls_name)
        with contextlib.redirect_stdout(io.StringIO()):  # "Files already downloaded and verified"
            parts = {split: dataset_cls(root, train=(split == "train"), download=True) for split in ("train", "test")}
        splits = {}
        for split, tv in parts.items():
            array = np.asarray(tv.data)
            images = torch.from_numpy(array).permute(0, 3, 1, 2) if array.ndim == 4 else torch.from_numpy(array)[:, None]
            splits[split] = Split(images.contiguous(), torch.as_tensor(tv.targets, dtype=torch.int64))
        return ImageDataset(name, list(parts["train"].classes), splits)

    return load


@dataclass(frozen=True)
class DatasetSpec:
    title: str
    load: Callable[[Hooks], ImageDataset]
    source: str  # where the data comes from, in a few words
    local_stem: str | None = None  # an archive in CNN_LAB_DATA that stands in for the download
    download_folder: str | None = None  # what torchvision leaves in the cache once downloaded
    download_mb: int = 0  # the size of the download
    server: str = ""  # a URL on the download's server, to tell whether it can be reached


_CIFAR_SERVER = "https://www.cs.toronto.edu/"
DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("Digits (8x8, built in)", lambda hooks: load_digits(), "ships with scikit-learn"),
    "cifar10": DatasetSpec(
        "CIFAR-10", _torchvision_set("cifar10", "CIFAR-10", "CIFAR10", "cifar10-jpg"), "torchvision download",
        local_stem="cifar10-jpg", download_folder="cifar-10-batches-py", download_mb=170, server=_CIFAR_SERVER,
    ),
    "cifar100": DatasetSpec(
        "CIFAR-100", _torchvision_set("cifar100", "CIFAR-100", "CIFAR100", None), "torchvision download",
        download_folder="cifar-100-python", download_mb=169, server=_CIFAR_SERVER,
    ),
    "mnist": DatasetSpec(
        "MNIST", _torchvision_set("mnist", "MNIST", "MNIST", None), "torchvision download", download_folder="MNIST",
        download_mb=12, server="https://ossci-datasets.s3.amazonaws.com/",
    ),
    "fashion_mnist": DatasetSpec(
        "Fashion-MNIST", _torchvision_set("fashion_mnist", "Fashion-MNIST", "FashionMNIST", None),
        "torchvision download", download_folder="FashionMNIST", download_mb=31,
        server="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    "boats9": DatasetSpec(
        "Boats (9 classes, 64x64)", lambda hooks: load_local("boats9", size=64), "local archive", local_stem="boats9"
    ),
}


def load_dataset(name: str, hooks: Hooks | None = None) -> ImageDataset:
    """A registered dataset by name, or an image folder by path (at 32x32); raises DatasetUnavailable or
    DatasetError with a sentence for the page. A download reports to `hooks` and stops when it cancels."""
    if name in DATASETS:
        return DATASETS[name].load(hooks or Hooks())
    if not name.strip():
        raise DatasetError("Type the path of an image folder first.")
    if Path(name).is_dir():
        return load_folder(name, size=32)
    raise DatasetError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, or an existing folder.")


@dataclass(frozen=True)
class Availability:
    on_machine: bool  # built in, a local archive, or already downloaded
    note: str  # a few words for the home page
    advice: str = ""  # when it is not on the machine: one sentence on what happens or what to do
    can_download: bool = False  # not here, but its server answers: Start downloads it


def availability(name: str) -> Availability:
    """Whether a registered dataset can be used now, and if not, what a newcomer can do."""
    spec = DATASETS[name]
    if name == "digits":
        return Availability(True, "built in")
    if spec.local_stem and local_archive(spec.local_stem):
        return Availability(True, "on this machine")
    if spec.download_folder and (cache_root() / "torchvision" / spec.download_folder).exists():
        return Availability(True, "downloaded")
    if not spec.server:
        return Availability(False, f"not on this machine: put {spec.local_stem}.tar.gz in the CNN_LAB_DATA folder",
                            f"{spec.title} is not on this machine: it comes as {spec.local_stem}.tar.gz, to put in the "
                            "folder named by CNN_LAB_DATA; the built-in Digits need nothing.")
    if reachable(spec.server):
        return Availability(False, "downloads on first use (needs the network)",
                            f"{spec.title} is not on this machine yet: it downloads ({spec.download_mb} MB) when you "
                            "press Start; the progress shows below, and Stop cancels it.", can_download=True)
    return Availability(False, "downloads on first use (needs the network)",
                        f"{spec.title} is not on this machine and cannot be downloaded now: its server cannot be "
                        "reached from here. Train on the built-in Digits instead, which need no download.")
