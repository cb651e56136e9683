"""What a transfer run is asked to do: TransferConfig, the three modes, and the recipes the page and the CLI start
from (every field stays editable)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from cnn_lab.train import TrainConfig

MODES = ("probe", "partial", "full")
MAX_FROZEN_VIEWS = 8  # each view keeps the frozen blocks' output of every training photo in memory


@dataclass
class TransferConfig:
    data: str = "boats9"  # "boats9" (from CNN_LAB_DATA), a folder path, or a .zip / .tar.gz path
    backbone: str = "efficientnet_lite0"
    mode: str = "probe"  # probe: cached features | partial: the last `unfreeze` blocks | full
    unfreeze: int = 2
    epochs: int = 30
    lr: float = 0.05
    backbone_lr_factor: float = 0.1  # full fine-tuning: the backbone learns this much slower than the head
    batch_size: int = 64
    weight_decay: float = 0.05  # strong: 1,280 features from 872 images overfit easily
    label_smoothing: float = 0.1
    augment_preset: str = ""  # fine-tuning only
    head_from_probe: bool = False  # fine-tuning: start from a linear probe's head (LP-FT), not a random one
    frozen_views: int = 0  # partial: 0 = the frozen blocks run at every step (GPU); N = once, on N views (CPU)
    tta: bool = False  # fine-tuning: test on the average of flipped and shifted views
    flip_features: bool = True  # probe: train on mirrored images' features too, average both at test time
    # 224, not 160: the two tie on boats9 (92.4%), but 160 loses 2.2 points on CIFAR-10's photos and 7.7 on an unseen
    # boat set (docs/benchmarks-log.md: the sizes are chosen on two datasets, the larger kept unless the smaller
    # holds on both)
    image_size: int = 224
    seed: int = 0
    device: str = "auto"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | dict) -> "TransferConfig":
        return cls(**(json.loads(text) if isinstance(text, str) else text))


# Starting points for the page and the CLI; every field stays editable.
CPU_RECIPE = "Fine-tune on a CPU (minutes)"
AMX_RECIPE = "Fine-tune on a CPU with AMX (best in 5 minutes)"
GPU_RECIPE = "Fine-tune (best on boats9, for a GPU)"
_CPU_RECIPE_CONFIG = TransferConfig(mode="partial", unfreeze=2, frozen_views=4, epochs=4, lr=0.02, weight_decay=5e-4,
                                    batch_size=32, image_size=288, augment_preset="photos: zoom crop and colour",
                                    head_from_probe=True)
PRESETS: dict[str, tuple[str, TransferConfig]] = {
    "Linear probe (seconds, even on a CPU)": (
        "Keep the pretrained network as it is and train only a new last layer on what it sees (a linear probe). "
        "The network runs once over the photos (at 224 pixels, the size it was trained at) and its outputs are "
        "kept, so the new layer trains in seconds: about 92% on boats9, under a minute on 2 CPU cores.",
        TransferConfig(),
    ),
    "Course: ResNet18 frozen (lesson 29)": (
        "The course's transfer practical: torchvision's ResNet18 pretrained on ImageNet, frozen, with a new "
        "512 -> classes linear head (a linear probe at 224 pixels). It needs ResNet18's weights (downloaded at "
        "Start, or already cached); offline, use EfficientNet-Lite0, which ships with the app.",
        TransferConfig(backbone="resnet18", image_size=224, flip_features=False),
    ),
    CPU_RECIPE: (
        "Train a new last layer first, then fine-tune the last two blocks with it (LP-FT), in minutes on a CPU. "
        "The blocks that stay frozen are most of the work, so they run only once, over 4 versions of each photo "
        "(the photo, its mirror, two zoomed crops with changed colours) at 288 pixels, each batch norm merged into "
        "the convolution before it (the same numbers, one step fewer); then the last two blocks and the new last "
        "layer train on what they produced, 4 epochs over every version, and the test uses each photo and its "
        "mirror. On boats9: about 96.6% in under 2 minutes on 2 cores of a CPU that computes in bf16 (16-bit "
        "numbers, twice as fast: the frozen blocks use it there), about 5 minutes on others (BENCHMARKS.md has "
        "the 3-seed means).",
        _CPU_RECIPE_CONFIG,
    ),
    AMX_RECIPE: (
        f"\"{CPU_RECIPE}\" with twice the views and one block more, for a CPU that multiplies bf16 matrices in "
        "hardware (AMX: Intel Xeon since its 4th generation; the home page says whether this one has it). The frozen "
        "blocks run once over 8 versions of each photo (the photo, its mirror, six zoomed crops with changed colours) "
        "at 288 pixels; then the last three blocks and the new last layer train on them, 4 epochs. On boats9: about "
        "97.7% in 4 to 5 minutes on 2 cores with AMX (a little over 5 when the same machine ran slower; "
        f"BENCHMARKS.md has the 3-seed means). Other CPUs take twice as long and more: \"{CPU_RECIPE}\" is the "
        "recipe for 5 minutes there.",
        replace(_CPU_RECIPE_CONFIG, unfreeze=3, frozen_views=8),
    ),
    GPU_RECIPE: (
        "Train a new last layer first, then fine-tune it with the last 4 blocks (LP-FT), on zoomed crops, mirror "
        "images and colour changes at 288 pixels; the test averages the answers for flipped and shifted versions "
        "of each photo (test-time augmentation). Best on boats9, and meant for a GPU.",
        TransferConfig(mode="partial", unfreeze=4, epochs=20, lr=0.02, weight_decay=5e-4, batch_size=32,
                       image_size=288, augment_preset="photos: zoom crop and colour", head_from_probe=True, tta=True),
    ),
}


def preset(name: str) -> TransferConfig:
    """A fresh copy of a preset's config."""
    return replace(PRESETS[name][1])


def trainer_config(config: TransferConfig, **settings) -> TrainConfig:
    """The trainer's config for one stage of a transfer run: the settings a transfer config gives as they are (no
    validation split carved: the transfer data has one), and the stage's own `settings`."""
    return TrainConfig(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                       weight_decay=config.weight_decay, label_smoothing=config.label_smoothing, seed=config.seed,
                       device=config.device, val_fraction=0.0, **settings)
