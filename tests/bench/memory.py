"""How much memory a transfer job takes at its peak (issue 32): the figures that `cnn_lab/transfer/memory.py`'s
check is sized on. Each job is the CLI in its own process, with each recipe's own image size and batch, on two
folders of photos of noise; its peak is the kernel's count of its resident memory (ru_maxrss). Two folder sizes a
recipe give its fixed part (the interpreter, torch, the backbone, a batch's activations) and its cost per decoded
byte; the last column compares them with what the check estimates."""
from __future__ import annotations

import tempfile
from pathlib import Path

from cnn_lab import data as datasets
from cnn_lab.transfer import AMX_RECIPE, CPU_RECIPE, GPU_RECIPE, TransferConfig, preset
from cnn_lab.transfer.memory import estimated_peak_gb
from tests.bench.common import Row
from tests.helpers import noise_folder, peak_of_cli

# name -> (the CLI's arguments, the config they make): one epoch is enough, the peak is reached in the first
RECIPES = {
    "linear probe (160 px)": ([], TransferConfig()),
    f"{CPU_RECIPE} (288 px)": (["--preset", CPU_RECIPE, "--epochs", "1"], preset(CPU_RECIPE)),
    f"{AMX_RECIPE} (288 px)": (["--preset", AMX_RECIPE, "--epochs", "1"], preset(AMX_RECIPE)),
    f"{GPU_RECIPE} (288 px), on this CPU": (["--preset", GPU_RECIPE, "--epochs", "1"], preset(GPU_RECIPE)),
    "full fine-tuning (160 px)": (["--mode", "full", "--epochs", "1"], TransferConfig(mode="full")),
}


def peak_gb(args: list[str], per_class: int, root: Path, name: str) -> tuple[float, float]:
    """(the job's peak in GB, its decoded arrays in GB) on two classes of `per_class` noise photos."""
    folder = noise_folder(root / f"noise-{per_class}", ["a", "b"], per_class=per_class, size=(320, 320))
    done, peak = peak_of_cli(["transfer", "--data", str(folder), *args],
                             {"CNN_LAB_CACHE": str(root / f"cache-{len(name)}-{per_class}")})
    if done.returncode != 0:
        raise RuntimeError(f"the {name} job failed: {done.stderr[-1000:]}")
    return peak, 2 * per_class * 3 * RECIPES[name][1].image_size ** 2 / 2**30


def bench_memory(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    counts = (100, 300) if quick else (150, 600)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (args, config) in RECIPES.items():
            (small, small_arrays), (large, large_arrays) = [peak_gb(args, n, Path(tmp), name) for n in counts]
            copies = (large - small) / (large_arrays - small_arrays)
            base = small - copies * small_arrays
            estimates = [estimated_peak_gb(config, 2 * n, on_gpu=False) for n in counts]
            rows.append((f"Peak memory of a job, {name}: {2 * counts[0]:,} and {2 * counts[1]:,} images",
                         f"{small:.2f} and {large:.2f} GB",
                         f"decoded arrays {small_arrays:.2f} and {large_arrays:.2f} GB: the job takes {base:.2f} GB "
                         f"plus {copies:.1f} times its arrays; the check estimates {estimates[0]:.2f} and "
                         f"{estimates[1]:.2f} GB"))
    return rows
