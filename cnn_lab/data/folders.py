"""Image folders in ImageFolder layout, pre-split (`root/{train,val,test}/<class>/`) or not (`root/<class>/`),
decoded in parallel into one array a split allocated up front, all splits within the decode budget; unreadable
files are skipped and counted."""
from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from cnn_lab.data.cache import cached
from cnn_lab.data.splits import SPLITS, DatasetError, ImageDataset, Split, split_one
from cnn_lab.downloads import Reporter
from cnn_lab.images import ImageError, read_rgb
from cnn_lab.limits import LimitError, check_decode_budget, check_job_memory, check_upload, in_use


def _fingerprint_tree(root: Path) -> str:
    entries = []
    for folder, _, files in os.walk(root):
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            entries.append(f"{os.path.relpath(os.path.join(folder, name), root)}:{stat.st_size}:{stat.st_mtime_ns}")
    entries.sort()
    return hashlib.sha1("\n".join(entries).encode()).hexdigest()


def visible_entries(folder: Path) -> list[Path]:
    """A folder's entries that are the person's own: not hidden (.DS_Store, ._1.jpg), and not the __MACOSX folder
    that macOS's Finder adds to the zips it makes."""
    return [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in visible_entries(folder) if p.is_dir())
    if not classes:
        raise DatasetError(f"The folder {folder} has no class folders: put the photos of each class in a folder named "
                           "after it (kayak/1.jpg, tug/2.jpg).")
    found = {c.name: sorted(f for f in c.rglob("*") if f.is_file() and not f.name.startswith(".")) for c in classes}
    empty = [name for name, files in found.items() if not files]
    if empty:
        raise DatasetError(f"The class folder(s) {', '.join(empty)} in {folder} hold no files.")
    return found


def class_names(root: str | Path) -> list[str]:
    """A folder's classes, from its sub-folder names alone (nothing is read): what a preview needs."""
    root = Path(root)
    root = root / "train" if (root / "train").is_dir() else root
    return sorted(p.name for p in visible_entries(root) if p.is_dir()) if root.is_dir() else []


def _decode(path: Path, size: int) -> np.ndarray | None:
    """One file -> uint8 (3, size, size), or None when it is not a readable image."""
    try:
        img = read_rgb(path)
    except ImageError:
        return None
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def _decode_split(files: dict[str, list[Path]], classes: list[str], size: int, reporter: Reporter) -> tuple[Split, int]:
    """Decode every file into one array allocated up front, reporting the count to `reporter` every 256 images."""
    paths = [(path, classes.index(name)) for name, group in files.items() for path in group]
    images = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def decode_into(index: int) -> bool:
        array = _decode(paths[index][0], size)
        if array is not None:
            images[index] = array
        return array is not None

    readable = np.zeros(len(paths), dtype=bool)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for index, ok in enumerate(pool.map(decode_into, range(len(paths)))):
            readable[index] = ok
            if index % 256 == 255 or index == len(paths) - 1:
                reporter.count("decoding the images", index + 1, len(paths), started)
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
    reporter: Reporter | None = None,
    upload: bool = False,
    peak_gb: Callable[[int], float] | None = None,
) -> ImageDataset:
    """An ImageFolder tree, pre-split (`root/{train,val,test}/<class>/`) or not (`root/<class>/`), at size x size;
    the decoding (only on the first load: the decoded tensors are cached) reports its count to `reporter`. An
    `upload` (a person's own zip or folder, not one inside CNN_LAB_DATA) must pass the upload limits first, in
    shared mode; so must the job's whole peak memory, `peak_gb(number of files)`, when the job says what it is."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"The folder {root} does not exist.")
    try:
        if upload:
            check_upload(root, size)
        if peak_gb is not None:
            files = sum(1 for f in root.rglob("*") if f.is_file() and not f.name.startswith("."))
            check_job_memory(peak_gb(files), files, size)
    except LimitError as error:
        raise DatasetError(str(error)) from None
    fingerprint = f"{root.resolve()}|{size}|{_fingerprint_tree(root)}"
    # The seed and fractions draw the splits a folder lacks; a folder split three ways on disk is decoded once for
    # every seed (before, each seed decoded all its photos again and evicted the other seed's arrays)
    if not all((root / name).is_dir() for name in SPLITS):
        fingerprint += f"|{fractions}|{seed}"
    with in_use(root):  # while its photos are decoded, another person's upload cannot push it out of the disk budget
        return cached(f"folder-{root.name}", fingerprint,
                      lambda: _decode_folder(root, size, fractions, seed, reporter or Reporter()))


def _fits_the_budget(groups: list[dict[str, list[Path]]], size: int) -> None:
    """Every split's files together must fit the decode budget (checked before any image is decoded)."""
    try:
        check_decode_budget(sum(len(paths) for group in groups for paths in group.values()), 3, size)
    except LimitError as error:
        raise DatasetError(str(error)) from None


def _enough_photos(root: Path, files: dict[str, list[Path]], splits: list[str]) -> None:
    """Refuse, before any photo is decoded, a folder that no classifier can learn from and be tested on: one class,
    or a class with fewer photos than the splits it must fill (one photo in each)."""
    if len(files) < 2:
        raise DatasetError(f"The folder {root} has only one class ({next(iter(files))}): a classifier needs at least "
                           "two.")
    few = sorted(name for name, paths in files.items() if len(paths) < len(splits))
    if few:
        raise DatasetError(f"In {root}, {', '.join(few)} {'has' if len(few) == 1 else 'have'} fewer than {len(splits)} "
                           f"photos: each class needs at least one for each of {', '.join(splits)}.")


def _decode_folder(root: Path, size: int, fractions: dict[str, float] | None, seed: int,
                   reporter: Reporter) -> ImageDataset:
    present = [name for name in SPLITS if (root / name).is_dir()]
    if "train" in present:
        files = {name: _class_files(root / name) for name in present}
        classes = sorted(files["train"])
        for name in present:
            unknown = set(files[name]) - set(classes)
            if unknown:
                raise DatasetError(f"The {name} split has classes that train lacks: {', '.join(sorted(unknown))}.")
        fractions = fractions or {"train": 0.8, "test": 0.2}  # drawn from train when there is no test split
        _enough_photos(root / "train", files["train"], ["train"] if "test" in present else list(fractions))
        _fits_the_budget(list(files.values()), size)
        splits, skipped = {}, 0
        for name in present:
            splits[name], count = _decode_split(files[name], classes, size, reporter)
            skipped += count
        if "test" not in splits:
            splits = split_one(splits["train"], fractions, seed, classes) | {
                k: v for k, v in splits.items() if k != "train"
            }
    else:
        files = _class_files(root)
        classes = sorted(files)
        fractions = fractions or {"train": 0.7, "val": 0.15, "test": 0.15}
        _enough_photos(root, files, list(fractions))
        _fits_the_budget([files], size)
        everything, skipped = _decode_split(files, classes, size, reporter)
        splits = split_one(everything, fractions, seed, classes)
    return ImageDataset(root.name, classes, splits, skipped)
