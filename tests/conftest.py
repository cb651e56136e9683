"""Shared fixtures: a private cache per test session, and the real datasets when they are on this machine."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _data_dir() -> Path | None:
    """The folder the app would use (cnn_lab.paths.data_root): `CNN_LAB_DATA=` means none, as on a bare clone."""
    from cnn_lab.paths import data_root

    root = data_root()
    return root if root is not None and root.is_dir() else None


DATA_DIR = _data_dir()


@pytest.fixture(scope="session", autouse=True)
def lab_cache(tmp_path_factory) -> Path:
    """Every test session gets its own cache, shared by its tests, so archives are extracted only once."""
    cache = Path(os.environ.get("CNN_LAB_TEST_CACHE") or tmp_path_factory.mktemp("cnn_lab_cache"))
    os.environ["CNN_LAB_CACHE"] = str(cache)
    os.environ["CNN_LAB_DATA"] = str(DATA_DIR or "")  # the app started by the browser tests sees the same
    return cache


def wait_for(predicate, seconds: float = 60.0, every: float = 0.05) -> bool:
    """Poll `predicate` until it holds (True) or `seconds` pass (False): a wait, never a speed assertion."""
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def require_archive(stem: str) -> Path:
    if DATA_DIR is None:
        pytest.skip("real data not found: set CNN_LAB_DATA or provide ../shared/datasets")
    archive = DATA_DIR / f"{stem}.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} is absent")
    return archive


@pytest.fixture(scope="session")
def cifar10(lab_cache):
    """CIFAR-10 decoded from the JPEG archive (once per session; later loads hit the array cache)."""
    require_archive("cifar10-jpg")
    from cnn_lab import data

    return data.load_dataset("cifar10")


@pytest.fixture(scope="session")
def boats9_folder(lab_cache) -> Path:
    """The extracted boats9 tree (train/val/test/<class>/)."""
    from cnn_lab import data

    return data.dataset_root(data.extract_archive(require_archive("boats9")))
