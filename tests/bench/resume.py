"""What resumable runs cost: at the end of each epoch the trainer copies the run's whole state to the CPU
(`resume.capture`) and the job manager writes it to resume.pt. Measured inside real runs of two presets on CIFAR-10:
the seconds each epoch spends on it, beside the epoch's own seconds, and the file's size."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from cnn_lab import data as datasets
from cnn_lab import runs
from cnn_lab.presets import preset
from cnn_lab.train import Saving, fit, loop
from tests.bench.common import Row, median

PRESETS = ["Course: CNN", "CPU: 80% in five minutes"]


def _one_run(name: str, cifar: datasets.ImageDataset, quick: bool) -> Row:
    config = preset(name)
    if quick:
        config.epochs = 1
    capture, spent = loop.resume.capture, []

    def timed_capture(*args):  # the trainer's own capture, timed where it is called
        start = time.perf_counter()
        checkpoint = capture(*args)
        spent.append(time.perf_counter() - start)
        return checkpoint

    with tempfile.TemporaryDirectory() as folder:
        def on_epoch(model, epochs, checkpoint) -> None:
            start = time.perf_counter()
            checkpoint.save(Path(folder))
            spent[-1] += time.perf_counter() - start

        loop.resume.capture = timed_capture
        try:
            result = fit(config, dataset=cifar, saving=Saving(on_epoch))
        finally:
            loop.resume.capture = capture
        size = (Path(folder) / runs.CHECKPOINT_FILE).stat().st_size / 1e6
    per_epoch = result.seconds / len(spent)
    return (f"Saving the resumable state: {name} ({len(spent)} epochs)", f"{median(spent):.3f} s per epoch",
            f"{median(spent) / per_epoch:.2%} of an epoch's {per_epoch:.1f} s; resume.pt {size:.1f} MB per run "
            f"(one file, replaced each epoch); test accuracy {result.test_acc:.1%}")


def bench_resume(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    return [_one_run(name, cifar, quick) for name in PRESETS]
