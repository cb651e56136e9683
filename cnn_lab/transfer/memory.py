"""How much memory a transfer job takes at its peak, estimated before any photo is decoded, so that a class server
can refuse the job that would pass its memory budget (CNN_LAB_DECODE_BUDGET_GB) instead of running out of memory.

The figures are measured (docs/benchmarks-log.md, `python -m tests.bench --only memory`: each recipe as its own process,
on two folder sizes). A job's peak is a fixed part, the interpreter, torch and the backbone (BASE_GB), plus what
its recipe trains with: a batch's activations kept for backpropagation, which grow with the batch and the image's
area (on a GPU they are in the GPU's memory, not the server's), plus a number of copies of its decoded photos
(the photos themselves, the features or frozen blocks' outputs cached from them, the augmented views)."""
from __future__ import annotations

from dataclasses import dataclass

from cnn_lab.transfer.config import TransferConfig

BASE_GB = 1.2  # the interpreter, torch, torchvision and EfficientNet-Lite0, with a probe's batch through it


@dataclass(frozen=True)
class Footprint:
    """What one recipe adds to BASE_GB, as measured at `size` pixels and batches of `batch`."""
    activations_gb: float  # a training batch's activations (and gradients) on a CPU
    copies: float  # bytes held per byte of decoded photos
    size: int
    batch: int
    views: int = 0  # the frozen views it was measured with ...
    copies_per_view: float = 0.0  # ... and what each view more adds: the frozen blocks' outputs, kept twice


FOOTPRINTS: dict[str, Footprint] = {
    "probe": Footprint(0.0, 1.0, 160, 64),  # no backpropagation: nothing but the photos grows with the folder
    # the CPU recipes: the frozen blocks' outputs of each view are kept (192x9x9 floats at 288 px, for the last 2 to 4
    # blocks): 2.7 copies at 4 views, 5.4 at 8 (the AMX recipe; docs/benchmarks-log.md, 4 Dec)
    "frozen": Footprint(0.6, 2.7, 288, 32, views=4, copies_per_view=0.7),
    "partial": Footprint(0.1, 15.0, 288, 32),  # the last blocks train on photos through the frozen ones
    "full": Footprint(2.6, 1.5, 160, 64),  # every block trains: a batch's every activation is kept
}


def footprint_of(config: TransferConfig) -> Footprint:
    if config.mode == "partial":
        return FOOTPRINTS["frozen" if config.frozen_views else "partial"]
    return FOOTPRINTS[config.mode]


def estimated_peak_gb(config: TransferConfig, images: int, on_gpu: bool) -> float:
    """The job's peak resident memory in GB, for `images` photos decoded at the config's size."""
    footprint = footprint_of(config)
    scale = (config.image_size / footprint.size) ** 2 * config.batch_size / footprint.batch
    activations = 0.0 if on_gpu else footprint.activations_gb * scale
    copies = footprint.copies + footprint.copies_per_view * (config.frozen_views - footprint.views)
    return BASE_GB + activations + copies * images * 3 * config.image_size ** 2 / 2**30
