"""Where a transfer run's photos come from: boats9 (an archive in CNN_LAB_DATA), the Kaggle boat types (downloaded
once through kagglehub), an uploaded zip or a folder; each loaded at the backbone's input size, with a validation
split."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnn_lab import data as datasets
from cnn_lab.downloads import DownloadCancelled, Reporter, Progress, reachable
from cnn_lab.paths import cache_root
from cnn_lab.train import TrainConfig, resolve_device
from cnn_lab.transfer.config import TransferConfig
from cnn_lab.transfer.memory import estimated_peak_gb

KAGGLE_BOATS = "clorichel/boat-types-recognition"
KAGGLE_SERVER = "https://www.kaggle.com/"


def _kaggle_marker() -> Path:
    return cache_root() / "kaggle" / "boat-types.txt"  # holds the folder kagglehub gave, once it is whole


def kaggle_boats_folder() -> Path | None:
    """The Kaggle boat types, when they were downloaded before."""
    marker = _kaggle_marker()
    folder = Path(marker.read_text().strip()) if marker.exists() else None
    return folder if folder is not None and folder.is_dir() else None


@contextlib.contextmanager
def kaggle_progress(reporter: Reporter):
    """kagglehub draws its progress with tqdm: for this download, a tqdm that reports to the reporter and stops when
    it is cancelled. kagglehub resumes a partial file on the next try and checks its checksum, so a cancelled download
    does not break the next one."""
    import kagglehub.clients
    from tqdm import tqdm

    start = time.perf_counter()

    class Reporting(tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            reporter.check()
            shown = super().update(n)
            if reporter.report:
                total = int(self.total) if self.total else None
                reporter.report(Progress("downloading the Kaggle boat types", int(self.n), total,
                                         time.perf_counter() - start))
            return shown

    original = kagglehub.clients.tqdm
    kagglehub.clients.tqdm = Reporting
    try:
        yield
    finally:
        kagglehub.clients.tqdm = original


def download_kaggle_boats(reporter: Reporter | None = None) -> Path:
    """The Kaggle boat-types dataset through kagglehub, when the network and Kaggle allow."""
    reporter = reporter or Reporter()
    if kaggle_boats_folder():
        return kaggle_boats_folder()
    if not reachable(KAGGLE_SERVER):
        raise datasets.DatasetUnavailable(
            f"The Kaggle dataset {KAGGLE_BOATS} cannot be downloaded now: this machine cannot reach kaggle.com. "
            "Use boats9 or your own photos instead."
        )
    try:
        import kagglehub

        with kaggle_progress(reporter):
            folder = datasets.dataset_root(Path(kagglehub.dataset_download(KAGGLE_BOATS)))
    except DownloadCancelled:
        raise
    except Exception as error:  # noqa: BLE001 - kagglehub raises many kinds of network and credential errors
        raise datasets.DatasetUnavailable(
            f"The Kaggle dataset {KAGGLE_BOATS} could not be downloaded ({type(error).__name__}): the network is "
            "unreachable or Kaggle credentials are missing; use boats9 or a folder on this machine instead."
        ) from None
    _kaggle_marker().parent.mkdir(parents=True, exist_ok=True)
    _kaggle_marker().write_text(str(folder))
    return folder


@dataclass(frozen=True)
class DataSource:
    """A way the transfer page offers photos: a registered dataset (cnn_lab.data.DATASETS, described there), the
    Kaggle download, or a person's own photos."""
    title: str
    about: str  # in plain words: what it is and where it comes from
    todo: str  # what to do to use it
    ready: Callable[[], bool]  # usable now, with no action from the user

    @classmethod
    def registered(cls, name: str) -> DataSource:
        spec = datasets.DATASETS[name]
        return cls(name, spec.about, spec.todo, lambda: datasets.where_here(name) is not None)


SOURCES: dict[str, DataSource] = {
    "boats9": DataSource.registered("boats9"),
    "kaggle": DataSource(
        "Kaggle boat types", "The course's Kaggle dataset of boat photos (about 1,500 photos in 9 classes), "
        "downloaded once through kagglehub.",
        "Connect this machine to the internet (if Kaggle asks, put your API token in ~/.kaggle/kaggle.json), "
        "choose it below and press Download.",
        lambda: kaggle_boats_folder() is not None),
    "upload": DataSource(
        "Upload a zip", "Your own photos, zipped with one folder per class (<class>/<photo>), at least 3 per class.",
        "Zip your class folders and upload the zip below.", lambda: False),
    "folder": DataSource(
        "A folder on this machine", "Your own photos in class folders: <root>/<class>/, or already split as "
        "<root>/{train,val,test}/<class>/.", "Type the folder's path below.", lambda: False),
}


def first_ready_source() -> str | None:
    return next((name for name, source in SOURCES.items() if source.ready()), None)


def load_images(config: TransferConfig, reporter: Reporter | None = None) -> datasets.ImageDataset:
    """The dataset at the backbone's input size: boats9 from CNN_LAB_DATA, a folder, or an archive; the first
    decoding at this size reports its count to `reporter`. On a shared server, a job whose whole peak memory would
    pass the budget is refused first."""
    on_gpu = resolve_device(TrainConfig(device=config.device)).type == "cuda"
    peak = lambda images: estimated_peak_gb(config, images, on_gpu)  # noqa: E731
    if config.data == "boats9":
        return datasets.load_local("boats9", size=config.image_size, reporter=reporter, peak_gb=peak)
    path = Path(config.data)
    options = dict(size=config.image_size, seed=config.seed, reporter=reporter, upload=True, peak_gb=peak)
    return datasets.load_archive(path, **options) if path.is_file() else datasets.load_folder(path, **options)


def with_val_id(dataset: datasets.ImageDataset) -> str:
    """The source id of the dataset once with_val has given it a validation split."""
    return dataset.source_id if "val" in dataset.splits else dataset.source_id + "-val"


def with_val(dataset: datasets.ImageDataset, seed: int) -> datasets.ImageDataset:
    """Make sure there is a validation split (15% of train, stratified) for early stopping and curves."""
    if "val" in dataset.splits:
        return dataset
    parts = datasets.stratified_split(dataset.splits["train"].labels, {"train": 0.85, "val": 0.15}, seed,
                                      dataset.classes)
    train_split = dataset.splits["train"]
    splits = {**dataset.splits, "train": datasets.split_of(train_split, parts["train"]),
              "val": datasets.split_of(train_split, parts["val"])}
    return datasets.ImageDataset(dataset.name, dataset.classes, splits, dataset.skipped, with_val_id(dataset))
