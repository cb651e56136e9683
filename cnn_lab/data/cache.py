"""The array cache: a dataset is decoded once; later loads read its arrays, keyed by a fingerprint of the source,
so a changed source (a file added, removed or edited) is decoded again."""
from __future__ import annotations

import glob
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cnn_lab.data.splits import SPLITS, ImageDataset, Split
from cnn_lab.paths import cache_root, written_whole


def _cache_file(key: str, fingerprint: str) -> Path:
    folder = cache_root() / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:16]}.npz"


def _save(path: Path, dataset: ImageDataset) -> None:
    arrays = {f"{name}_x": s.images.numpy() for name, s in dataset.splits.items()}
    arrays |= {f"{name}_y": s.labels.numpy() for name, s in dataset.splits.items()}
    meta = json.dumps({"name": dataset.name, "classes": dataset.classes, "skipped": dataset.skipped})
    with written_whole(path) as tmp:
        np.savez(tmp, meta=np.array(meta), **arrays)
    for stale in path.parent.glob(glob.escape(path.name.rsplit("-", 1)[0]) + "-*.npz"):
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
