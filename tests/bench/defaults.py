"""The transfer recipes' defaults, chosen on two datasets (issue 33): boats9, and CIFAR-10's photos brought up to
the backbone's input size. A default chosen on boats9 alone can overfit it: the probe's 160 px equalled 224 px there
and lost 7.7 points to it on an unseen boat set. The rules: keep the larger image size unless the smaller one holds
on both; for epochs and views, keep the setting whose validation accuracy, averaged over the two, is best (the
test split only reports)."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cnn_lab import data as datasets
from cnn_lab import transfer
from cnn_lab.metrics import MetricLog
from cnn_lab.paths import cache_root
from tests.bench.common import Row

# CIFAR-10 photos a class in each split of the second dataset: as many as boats9 has (about 100 a class for
# training), with a test split ten times boats9's, so that one photo is 0.1 point and not 0.85
PER_CLASS = {"train": 100, "val": 50, "test": 100}
PROBE = "Linear probe (seconds, even on a CPU)"
SIZES = {PROBE: (160, 224), transfer.CPU_RECIPE: (224, 288)}
# Epochs and views, each changed alone from the recipe (the probe's views: each photo, or each photo and its mirror)
VARIANTS = {
    PROBE: ({"epochs": 10}, {"epochs": 100}, {"flip_features": False}),
    transfer.CPU_RECIPE: ({"epochs": 2}, {"epochs": 6}, {"frozen_views": 2}, {"frozen_views": 8}),
}


@dataclass(frozen=True)
class Measured:
    validation: float  # the last epoch's validation accuracy
    test: float
    seconds: float


def cifar_folder(root: Path) -> Path:
    """A folder of CIFAR-10's JPEGs laid out as a learner's upload (train/val/test/<class>/), PER_CLASS photos a
    class: validation photos from CIFAR-10's training set, after the training ones."""
    source = datasets.dataset_root(datasets.extract_archive(datasets.local_archive("cifar10-jpg")))
    for split, count in PER_CLASS.items():
        for folder in sorted((source / ("test" if split == "test" else "train")).iterdir()):
            files = sorted(folder.iterdir())
            first = PER_CLASS["train"] if split == "val" else 0  # validation: the training photos' next ones
            chosen = files[first:first + count]
            (root / split / folder.name).mkdir(parents=True)
            for file in chosen:
                shutil.copy(file, root / split / folder.name / file.name)
    return root


def one_run(config: transfer.TransferConfig, fresh: bool = True) -> Measured:
    """A run from decoded photos, its features extracted anew unless not `fresh`."""
    if fresh:
        shutil.rmtree(cache_root() / "features", ignore_errors=True)
    log, start = MetricLog(), time.perf_counter()
    result = transfer.run_transfer(config, log=log)
    return Measured(log.epochs[-1].val_acc, result.test_acc, time.perf_counter() - start)


def size_rows(places: dict[str, str], quick: bool) -> list[Row]:
    """Each recipe at its two image sizes on each dataset, timed from decoded photos."""
    rows = []
    for name, sizes in SIZES.items():
        for where, data in places.items():
            config = replace(transfer.preset(name), data=data, epochs=1 if quick else transfer.preset(name).epochs)
            for size in sizes:  # decoded before the timed runs, as a learner's second run finds them
                transfer.load_images(replace(config, image_size=size))
            measured = {size: one_run(replace(config, image_size=size)) for size in sizes}
            rows.append(Row(f"\"{name}\" on {where}: image size " + " vs ".join(f"{s} px" for s in sizes),
                            " vs ".join(f"{run.test:.1%}" for run in measured.values()),
                            "; ".join(f"{size} px: {run.test:.1%} test in {run.seconds:.0f} s"
                                      for size, run in measured.items())))
    return rows


def words(change: dict) -> str:
    return ", ".join(f"{field}={value}" for field, value in change.items()) or "the recipe as it is"


def variant_rows(places: dict[str, str], quick: bool) -> list[Row]:
    """Each recipe and each of its VARIANTS on both datasets (seed 0), and the one the rule keeps."""
    rows = []
    for name, variants in VARIANTS.items():
        means = {}
        for change in ({}, *variants):
            runs = {}
            for where, data in places.items():
                config = replace(transfer.preset(name), data=data, **change)
                # the probe's features depend on neither its epochs nor its head, so they are extracted once
                runs[where] = one_run(replace(config, epochs=1) if quick else config, fresh=name != PROBE)
            means[words(change)] = sum(run.validation for run in runs.values()) / len(runs)
            rows.append(Row(f"\"{name}\", {words(change)}: validation on " + " and ".join(places),
                            f"{' and '.join(f'{run.validation:.1%}' for run in runs.values())} "
                            f"(mean {means[words(change)]:.1%})",
                            "; ".join(f"{where}: {run.test:.1%} test in {run.seconds:.0f} s"
                                      for where, run in runs.items())))
        rows.append(Row(f"\"{name}\": the rule keeps", kept(means), "the best validation accuracy averaged over "
                        "both datasets; a tie keeps the recipe as it is"))
    return rows


def kept(means: dict[str, float]) -> str:
    """The variant (in words) with the best mean validation accuracy; a tie keeps the recipe as it is."""
    return max(means, key=lambda key: (round(means[key], 4), key == words({})))


def bench_defaults(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """The image sizes (`defaults`)."""
    with tempfile.TemporaryDirectory() as folder:
        return size_rows(places(Path(folder)), quick)


def bench_variants(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """The epochs and views (`variants`)."""
    with tempfile.TemporaryDirectory() as folder:
        return variant_rows(places(Path(folder)), quick)


def places(folder: Path) -> dict[str, str]:
    """The two datasets, by name: each as a transfer config's `data`."""
    return {"boats9": "boats9", "CIFAR-10 (1,000 training photos)": str(cifar_folder(folder))}
