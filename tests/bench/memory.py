"""How much memory a transfer job takes at its peak (issue 32), the figures a decode budget that bounds the whole
job (not only its decoded arrays) must be sized on. Each job is the CLI in its own process on a folder of photos
of noise, decoded at 160x160; its peak is the kernel's count of its resident memory (ru_maxrss). Two folder sizes
a mode give the job's fixed part (the interpreter, torch, the backbone, a batch's activations) and its cost per
decoded byte."""
from __future__ import annotations

import tempfile
from pathlib import Path

from cnn_lab import data as datasets
from tests.bench.common import Row
from tests.helpers import noise_folder, peak_of_cli

SIZE = 160  # the probe's default image size
MODES = {"probe": ["--mode", "probe"], "fine-tune": ["--mode", "full", "--epochs", "1"]}


def peak_gb(mode: str, per_class: int, root: Path) -> tuple[float, float]:
    """(the job's peak in GB, its decoded arrays in GB) on two classes of `per_class` noise photos."""
    folder = noise_folder(root / f"noise-{per_class}", ["a", "b"], per_class=per_class, size=(SIZE, SIZE))
    done, peak = peak_of_cli(["transfer", "--data", str(folder), *MODES[mode], "--set", f"image_size={SIZE}"],
                             {"CNN_LAB_CACHE": str(root / f"cache-{mode}-{per_class}")})
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} job failed: {done.stderr[-1000:]}")
    return peak, 2 * per_class * 3 * SIZE * SIZE / 2**30


def bench_memory(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    counts = (250, 750) if quick else (500, 2000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            (small, small_arrays), (large, large_arrays) = [peak_gb(mode, n, Path(tmp)) for n in counts]
            copies = (large - small) / (large_arrays - small_arrays)
            base = small - copies * small_arrays
            rows.append((f"Peak memory of a {mode} job, {2 * counts[0]:,} and {2 * counts[1]:,} images at {SIZE} px",
                         f"{small:.2f} and {large:.2f} GB",
                         f"decoded arrays {small_arrays:.2f} and {large_arrays:.2f} GB: the job takes {base:.2f} GB "
                         f"plus {copies:.1f} times its arrays"))
    return rows
