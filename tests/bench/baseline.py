"""airbench94, the peer our speedrun is measured against, run in the same bench process's run, on the same GPU and the
same JPEG copy of CIFAR-10: its own runner (`../shared/baselines/airbench/run.sh`, beside the datasets folder) in a
child process, and its FLOP utilisation counted the way ours is. Its code is only run and imported, never copied."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import torch
import torch.nn.functional as F

from cnn_lab.paths import data_root
from tests.bench.common import Row, mean
from tests.bench.utilisation import CLASSES, SHAPE, cell, counter, fastest_conv, matmul_peak

SUMMARY = re.compile(r"airbench94 mean acc ([0-9.]+) \(std ([0-9.]+)\) mean time ([0-9.]+) s over (\d+) runs")
# one row of its table per epoch: | run | epoch | train_loss | train_acc | val_acc | tta_val_acc | total_time_seconds |
EPOCH_ROW = re.compile(r"^\|\s*\d*\s*\|\s*(\d+)\s*\|.*\|\s*([0-9.]+)\s*\|\s*$", re.M)


def airbench_folder() -> Path | None:
    """The peers' programs sit beside the datasets folder (`../shared/baselines`), where there is one."""
    root = data_root()
    folder = root.parent / "baselines" / "airbench" if root else None
    return folder if folder and (folder / "run.sh").is_file() else None


def load_airbench(folder: Path):
    """airbench94.py as a module. Importing it runs its definitions and turns cuDNN's autotuner on for the whole
    process, which would change the timings of the rows after this one: that setting is put back."""
    sys.path.insert(0, str(folder))
    autotune = torch.backends.cudnn.benchmark
    try:
        import airbench94
    finally:
        sys.path.remove(str(folder))
        torch.backends.cudnn.benchmark = autotune
    return airbench94


def airbench_flops(airbench94) -> tuple[float, float, float]:
    """(FLOPs per training image, forward and backward, of airbench94's own network in its own fp16 and layout; its
    fastest convolution's FLOP/s; the fp16 matmul peak). Its whitening layer is frozen, as in its run."""
    batch = airbench94.hyp["opt"]["batch_size"]
    model = airbench94.make_net()  # on the GPU, in fp16, channels-last
    device = next(model.parameters()).device
    x = torch.randn(batch, *SHAPE, device=device, dtype=torch.half).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    with counter() as counted:
        F.cross_entropy(model(x).float(), y).backward()
    return (counted.get_total_flops() / batch, fastest_conv(model, SHAPE, batch, torch.half),
            matmul_peak(device, torch.half))


@dataclass
class AirbenchRuns:
    """What airbench94's runner printed for N runs after its warm-up run."""
    accuracy: float  # mean test accuracy, with its test-time augmentation
    std: float
    seconds: float  # mean timed seconds: whitening, training, and the test-time augmentation
    runs: int
    training_seconds: float  # mean seconds its table shows after the last epoch: whitening and training


def parse_runner(stdout: str) -> AirbenchRuns | None:
    """The runner's summary line and its per-epoch tables; None if it printed no summary (it failed)."""
    found = SUMMARY.search(stdout)
    if found is None:
        return None
    epochs = [(int(epoch), float(time)) for epoch, time in EPOCH_ROW.findall(stdout)]
    last = max(epoch for epoch, _ in epochs)
    after_last = [time for epoch, time in epochs if epoch == last][1:]  # the warm-up run left out
    return AirbenchRuns(float(found[1]), float(found[2]), float(found[3]), int(found[4]), mean(after_last))


def airbench_row(quick: bool) -> Row:
    """airbench94's mean accuracy and time over N runs after a warm-up run (its runner's own figures), and its
    utilisation as ours is read: the images its training steps take (its loader drops the last part batch of the
    50,000) times their FLOPs, over its training's seconds."""
    folder = airbench_folder()
    if folder is None or not torch.cuda.is_available():
        return Row("airbench94, beside the speedrun", "skipped",
                   "needs a GPU and ../shared/baselines/airbench" if folder is None else "needs a GPU")
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(["bash", str(folder / "run.sh"), "2" if quick else "5", sys.executable],
                              capture_output=True, text=True, env={**os.environ, "AIRBENCH_WORK": work})
    runs = parse_runner(done.stdout)
    if runs is None:
        return Row("airbench94, beside the speedrun", "failed", (done.stderr or done.stdout).strip()[-300:])
    airbench94 = load_airbench(folder)
    per_image, conv_peak, peak = airbench_flops(airbench94)
    batch = airbench94.hyp["opt"]["batch_size"]
    images = ceil(50_000 // batch * airbench94.hyp["opt"]["train_epochs"]) * batch
    return Row(f"airbench94 (its own runner, {runs.runs} runs after a warm-up, fp16), same GPU and data",
               f"{runs.accuracy:.2%} in {runs.seconds:.2f} s",
               f"std {runs.std:.2%}; training {runs.training_seconds:.2f} s of it, "
               f"{images / runs.training_seconds:,.0f} img/s",
               f"{cell(per_image * images / runs.training_seconds, conv_peak, peak)}; {per_image / 1e6:.0f} MFLOP "
               "per training image")
