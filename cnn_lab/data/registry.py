"""The dataset registry: every dataset by name (the built-in digits, torchvision's sets, local archives), loaded as
uint8 tensors, and whether each can be used on this machine right now."""
from __future__ import annotations

import contextlib
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cnn_lab.data.archives import load_local, local_archive
from cnn_lab.data.folders import load_folder
from cnn_lab.data.splits import DatasetError, DatasetUnavailable, ImageDataset, Split, split_one
from cnn_lab.downloads import DownloadCancelled, DownloadError, Reporter, fetch, reachable
from cnn_lab.paths import cache_root


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels): real data that ships with the package, read
    from its CSV file (64 pixels and the label a row) without importing scikit-learn, which takes a second."""
    package = Path(importlib.util.find_spec("sklearn").origin).parent
    table = np.loadtxt(package / "datasets" / "data" / "digits.csv.gz", delimiter=",", dtype=np.float64)
    images = torch.from_numpy((table[:, :-1].reshape(-1, 8, 8) * (255 / 16)).round().astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    splits = split_one(Split(images, labels), {"train": 0.8, "test": 0.2}, seed=0)
    return ImageDataset("digits", [str(d) for d in range(10)], splits)


def _torchvision_files(cls_name: str, root: Path) -> list[tuple[list[str], Path, str]]:
    """What torchvision would download for this set: (mirror URLs, where the file goes, md5) per file."""
    import torchvision.datasets as tvd

    dataset_cls = getattr(tvd, cls_name)
    if hasattr(dataset_cls, "tgz_md5"):  # CIFAR-10 and CIFAR-100: one archive
        return [([dataset_cls.url], root / dataset_cls.filename, dataset_cls.tgz_md5)]
    raw = root / cls_name / "raw"  # MNIST and Fashion-MNIST: four files, from any of the mirrors
    return [([mirror + name for mirror in dataset_cls.mirrors], raw / name, md5) for name, md5 in dataset_cls.resources]


def _download_torchvision(cls_name: str, title: str, root: Path, reporter: Reporter) -> None:
    """Fetch the set's files with progress and cancel; torchvision then finds them verified and only extracts."""
    files = _torchvision_files(cls_name, root)
    for index, (urls, dest, md5) in enumerate(files, start=1):
        label = title if len(files) == 1 else f"{title} (file {index} of {len(files)})"
        errors = []
        for url in urls:
            try:
                fetch(url, dest, label, md5, reporter)
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


def _torchvision_set(name: str, title: str, cls_name: str,
                     local_stem: str | None) -> Callable[[Reporter], ImageDataset]:
    def load(reporter: Reporter) -> ImageDataset:
        if local_stem and local_archive(local_stem):
            return load_local(local_stem, size=32 if "cifar" in local_stem else 28, reporter=reporter)
        import torchvision.datasets as tvd

        root = cache_root() / "torchvision"
        _download_torchvision(cls_name, title, root, reporter)
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
    load: Callable[[Reporter], ImageDataset]
    source: str  # where the data comes from, in a few words
    shape: tuple[int, int, int]  # one image, (C, H, W), as the trainer receives it
    classes: int
    local_stem: str | None = None  # an archive in CNN_LAB_DATA that stands in for the download
    download_folder: str | None = None  # what torchvision leaves in the cache once downloaded
    download_mb: int = 0  # the size of the download
    server: str = ""  # a URL on the download's server, to tell whether it can be reached
    about: str = ""  # in plain words, for a page that offers it: what it is and where it comes from
    todo: str = ""  # what a person does to have it here, when it is not


_CIFAR_SERVER = "https://www.cs.toronto.edu/"
DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("Digits (8x8, built in)", lambda reporter: load_digits(), "ships with scikit-learn",
                          (1, 8, 8), 10),
    "cifar10": DatasetSpec(
        "CIFAR-10", _torchvision_set("cifar10", "CIFAR-10", "CIFAR10", "cifar10-jpg"), "torchvision download", (3, 32, 32), 10,
        local_stem="cifar10-jpg", download_folder="cifar-10-batches-py", download_mb=170, server=_CIFAR_SERVER,
    ),
    "cifar100": DatasetSpec(
        "CIFAR-100", _torchvision_set("cifar100", "CIFAR-100", "CIFAR100", None), "torchvision download", (3, 32, 32), 100,
        download_folder="cifar-100-python", download_mb=169, server=_CIFAR_SERVER,
    ),
    "mnist": DatasetSpec(
        "MNIST", _torchvision_set("mnist", "MNIST", "MNIST", None), "torchvision download", (1, 28, 28), 10,
        download_folder="MNIST",
        download_mb=12, server="https://ossci-datasets.s3.amazonaws.com/",
    ),
    "fashion_mnist": DatasetSpec(
        "Fashion-MNIST", _torchvision_set("fashion_mnist", "Fashion-MNIST", "FashionMNIST", None),
        "torchvision download", (1, 28, 28), 10, download_folder="FashionMNIST", download_mb=31,
        server="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    "boats9": DatasetSpec(
        "Boats (9 classes, 64x64)", lambda reporter: load_local("boats9", size=64, reporter=reporter), "local archive",
        (3, 64, 64), 9,
        local_stem="boats9",
        about="1,095 photos of boats in 9 classes (carriers, cruise ships, destroyers, fishing boats, kayaks, "
              "sailboats, security boats, submarines, tugs), already split into train, validation and test sets; it "
              "comes as one file, boats9.tar.gz (10 MB), from the course's materials.",
        todo="Put boats9.tar.gz in a folder and start the app with CNN_LAB_DATA set to that folder.",
    ),
}


FOLDER_SHAPE = (3, 32, 32)  # a person's own image folder, as the trainer receives it


def image_shape(name: str) -> tuple[int, int, int]:
    """One image of the dataset, (C, H, W), as the trainer receives it: known before any data loads."""
    return DATASETS[name].shape if name in DATASETS else FOLDER_SHAPE


FOLDER_CLASSES_GUESS = 100  # a folder's classes are unknown until it is read: enough for sizing a model's last layer


def class_count(name: str) -> int:
    """How many classes the dataset has, known before any data loads (a folder's: a generous guess)."""
    return DATASETS[name].classes if name in DATASETS else FOLDER_CLASSES_GUESS


def load_dataset(name: str, reporter: Reporter | None = None) -> ImageDataset:
    """A registered dataset by name, or an image folder by path (at FOLDER_SHAPE); raises DatasetUnavailable or
    DatasetError with a sentence for the page. A download reports to `reporter` and stops when it cancels."""
    if name in DATASETS:
        return DATASETS[name].load(reporter or Reporter())
    if not name.strip():
        raise DatasetError("Type the path of an image folder first.")
    if Path(name).is_dir():
        return load_folder(name, size=FOLDER_SHAPE[-1], reporter=reporter, upload=True)  # a person's own folder
    raise DatasetError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, or an existing folder.")


@dataclass(frozen=True)
class Availability:
    on_machine: bool  # built in, a local archive, or already downloaded
    note: str  # a few words for the home page
    advice: str = ""  # when it is not on the machine: one sentence on what happens or what to do
    can_download: bool = False  # not here, but its server answers: Start downloads it


def where_here(name: str) -> str | None:
    """Where a registered dataset is on this machine ("built in", "on this machine", "downloaded"), or None; asks
    no network, so a page may call it on every rerun."""
    spec = DATASETS[name]
    if name == "digits":
        return "built in"
    if spec.local_stem and local_archive(spec.local_stem):
        return "on this machine"
    if spec.download_folder and (cache_root() / "torchvision" / spec.download_folder).exists():
        return "downloaded"
    return None


def availability(name: str) -> Availability:
    """Whether a registered dataset can be used now, and if not, what a newcomer can do."""
    spec = DATASETS[name]
    here = where_here(name)
    if here:
        return Availability(True, here)
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
