"""The transfer recipes' image size, chosen on two datasets (issue 33): boats9, and CIFAR-10's photos brought up to
the backbone's input size. A default chosen on boats9 alone can overfit it: the probe's 160 px equalled 224 px there
and lost 7.7 points to it on an unseen boat set. The rule: keep the larger size unless the smaller one holds on both."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cnn_lab import data as datasets
from cnn_lab import transfer
from cnn_lab.paths import cache_root
from tests.bench.common import Row

# CIFAR-10 photos a class in each split of the second dataset: as many as boats9 has (about 100 a class for
# training), with a test split ten times boats9's, so that one photo is 0.1 point and not 0.85
PER_CLASS = {"train": 100, "val": 50, "test": 100}
SIZES = {"Linear probe (seconds, even on a CPU)": (160, 224), transfer.CPU_RECIPE: (224, 288)}


def cifar_folder(root: Path) -> Path:
    """A folder of CIFAR-10's JPEGs laid out as a learner's upload (train/val/test/<class>/), PER_CLASS photos a
    class: validation photos from CIFAR-10's training set, after the training ones."""
    source = datasets.dataset_root(datasets.extract_archive(datasets.local_archive("cifar10-jpg")))
    for split, count in PER_CLASS.items():
        for folder in sorted((source / ("test" if split == "test" else "train")).iterdir()):
            files = sorted(folder.iterdir())
            chosen = files[count:2 * count] if split == "val" else files[:count]
            (root / split / folder.name).mkdir(parents=True)
            for file in chosen:
                shutil.copy(file, root / split / folder.name / file.name)
    return root


def one_run(config: transfer.TransferConfig) -> tuple[float, float]:
    """(test accuracy, seconds) of a run from decoded photos, its features extracted anew."""
    shutil.rmtree(cache_root() / "features", ignore_errors=True)
    start = time.perf_counter()
    result = transfer.run_transfer(config)
    return result.test_acc, time.perf_counter() - start


def bench_defaults(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        places = {"boats9": "boats9", "CIFAR-10 (1,000 training photos)": str(cifar_folder(Path(folder)))}
        for name, sizes in SIZES.items():
            for where, data in places.items():
                config = replace(transfer.preset(name), data=data, epochs=1 if quick else transfer.preset(name).epochs)
                for size in sizes:  # decoded before the timed runs, as a learner's second run finds them
                    transfer.load_images(replace(config, image_size=size))
                measured = {size: one_run(replace(config, image_size=size)) for size in sizes}
                rows.append(Row(f"\"{name}\" on {where}: image size " + " vs ".join(f"{s} px" for s in sizes),
                                " vs ".join(f"{acc:.1%}" for acc, _ in measured.values()),
                                "; ".join(f"{size} px: {acc:.1%} test in {seconds:.0f} s"
                                          for size, (acc, seconds) in measured.items())))
    return rows
