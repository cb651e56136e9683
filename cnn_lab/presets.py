"""Training presets: the course's three practicals exactly, and better recipes next to them."""
from __future__ import annotations

import copy

from cnn_lab.models import ModelSpec, course_spec
from cnn_lab.train import TrainConfig

# The course: Adam, batch 128, 5 epochs, no augmentation; 31% / 45% / 59% on CIFAR-10.
_COURSE = dict(dataset="cifar10", optimizer="adam", lr=1e-3, batch_size=128, epochs=5, schedule="constant",
               weight_decay=0.0, val_fraction=0.1)

# airbench's ideas in our trainer (the speedrun net): a whitened 2x2 stem, flips and 2-pixel shifts, label smoothing,
# biases that learn 64x faster, lookahead, one-cycle SGD with lr 1.5 and momentum 0.85.
_SPEEDRUN = dict(dataset="cifar10", optimizer="sgd", lr=1.5, momentum=0.85, schedule="onecycle", weight_decay=1.3e-3,
                 label_smoothing=0.2, augment=["flip", "crop"], crop_padding=2, channels_last=True, whiten=True,
                 bias_lr_factor=64, lookahead=True)
# The ten-minute CPU recipes: all 50,000 training images in batches of 512, in bf16 where the CPU computes it in
# hardware, the whitened stem's bias never trained, and the answers averaged over flipped and shifted copies (TTA).
_CPU_TEN_MINUTES = dict(batch_size=512, val_fraction=0.0, amp=True, tta=True, whiten_bias_epochs=0, **_SPEEDRUN)

PRESETS: dict[str, tuple[str, TrainConfig]] = {
    "Course: linear classifier": (
        "The course's first practical: one linear layer on raw pixels (about 31% on CIFAR-10).",
        TrainConfig(model=course_spec("linear"), **_COURSE),
    ),
    "Course: MLP": (
        "The course's MLP with LeakyReLU(0.2) (about 45%).",
        TrainConfig(model=course_spec("mlp", hidden=[256, 128]), **_COURSE),
    ),
    "Course: CNN": (
        "The course's CNN: three 5x5 stride-2 convolutions 3-16-32-64, then an MLP 64-32-10 (about 59%).",
        TrainConfig(model=course_spec("course_cnn"), **_COURSE),
    ),
    "Fast CNN (70%+ in 3 min on CPU)": (
        "Three blocks of convolution, batch normalisation, ReLU and pooling (24, 48 and 96 channels), trained with "
        "momentum SGD whose learning rate rises then falls (one-cycle), softened targets (label smoothing) and "
        "mirror images (random flips).",
        TrainConfig(dataset="cifar10", model=ModelSpec("cnn", widths=[24, 48, 96]), optimizer="sgd", lr=0.2,
                    batch_size=256, epochs=5, schedule="onecycle", weight_decay=5e-4, label_smoothing=0.1,
                    augment=["flip"], channels_last=True, val_fraction=0.05),
    ),
    "CPU: 70% in a minute": (
        "For a laptop with no GPU: a small, fast network (16, 32 and 64 channels) trained twice over 41,800 of the "
        "training images, about 71% in under a minute on 2 CPU cores once CIFAR-10 is decoded (BENCHMARKS.md has "
        "the 3-seed means). Its tricks: the first layer is computed from the data and never trained (whitening: it "
        "decorrelates neighbouring pixels, and having no gradient saves two fifths of each step); images are "
        "mirrored and shifted (augmentation); targets are softened (label smoothing); biases learn faster; and a "
        "slow copy of the weights follows the fast one (lookahead).",
        TrainConfig(model=ModelSpec("speedrun", widths=[16, 32, 64], linear_stem=True), batch_size=256, epochs=2,
                    val_fraction=0.05, max_train=44_000, whiten_bias_epochs=0, **_SPEEDRUN),
    ),
    "CPU: 80% in five minutes": (
        "The same recipe, twice as wide (32, 64 and 128 channels), batch 512, 4 epochs over 41,800 of the training "
        "images. On 2 CPU "
        "cores: about 81% in 4 to 5 minutes from the decoded CIFAR-10 (BENCHMARKS.md has the 3-seed means).",
        TrainConfig(model=ModelSpec("speedrun", widths=[32, 64, 128], linear_stem=True), batch_size=512, epochs=4,
                    val_fraction=0.05, max_train=44_000, whiten_bias_epochs=0, **_SPEEDRUN),
    ),
    "CPU: 89% in ten minutes": (
        "The recipe of \"CPU: 70% in a minute\" on all 50,000 training images, with a wider network (32, 128 and "
        "128 channels) and 16 epochs, in 16-bit numbers (bf16) where the CPU computes them natively (AVX512-BF16 or "
        "AMX: about twice as fast; other CPUs keep 32-bit numbers and take about twice as long), its answers "
        "averaged over flipped and shifted copies at test time (TTA). On 2 CPU cores with bf16: about 89% in 8 to 10 "
        "minutes from the decoded CIFAR-10 with AVX512-BF16, in about 5 with AMX (BENCHMARKS.md has the 3-seed means).",
        TrainConfig(model=ModelSpec("speedrun", widths=[32, 128, 128], linear_stem=True), epochs=16, **_CPU_TEN_MINUTES),
    ),
    "CPU: 90% in ten minutes": (
        "The recipe of \"CPU: 89% in ten minutes\" with a network twice as wide (64, 256 and 256 channels) and "
        "12 epochs, the first 5 on a random 24x24 window of the images (progressive resizing: their steps cost two "
        "thirds), for a CPU that multiplies bf16 matrices in hardware (AMX: Intel Xeon since its 4th generation). "
        "There, on 2 cores: about 90.5% in 9 minutes from the decoded CIFAR-10 (BENCHMARKS.md has the 3-seed "
        "means). Without AMX expect more than ten minutes (the 89% recipe takes twice as long with AVX512-BF16 "
        "alone): \"CPU: 89% in ten minutes\" is the recipe for ten minutes there.",
        TrainConfig(model=ModelSpec("speedrun", widths=[64, 256, 256], linear_stem=True), epochs=12, small_epochs=5,
                    small_size=24, **_CPU_TEN_MINUTES),
    ),
    "Speedrun (GPU)": (
        "The fastest way to 90% we know of, for a GPU (airbench's ideas in our trainer): a first layer computed "
        "from the data (whitening), blocks whose convolutions start as the identity, half-precision arithmetic "
        "(bf16), mirrored and shifted images, softened targets (label smoothing), biases that learn 64x faster, "
        "a slow copy of the weights (lookahead), and answers averaged over flipped copies at test time (TTA). "
        "Slow on a CPU.",
        TrainConfig(model=ModelSpec("speedrun", widths=[64, 256, 256]), batch_size=1024, epochs=11, amp=True,
                    tta=True, val_fraction=0.0, **_SPEEDRUN),
    ),
    "Digits (seconds, built in)": (
        "A small CNN on scikit-learn's 8x8 digits: no download, done in seconds (above 95%).",
        TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32]), optimizer="sgd", lr=0.05,
                    batch_size=64, epochs=10, schedule="onecycle", val_fraction=0.1),
    ),
    "Deep sigmoid: vanishing gradients": (
        "The course's lesson in numbers: an MLP eight sigmoid layers deep on the digits. Open \"Each layer's "
        "gradient norm\" while it trains: the first layers' gradients are thousands of times smaller than the last "
        "ones', and it barely learns. Set the activation to relu in the model's settings and run it again to compare.",
        TrainConfig(dataset="digits", model=ModelSpec("mlp", hidden=[64] * 8, activation="sigmoid", norm="none"),
                    optimizer="sgd", lr=0.1, batch_size=64, epochs=5, schedule="constant", weight_decay=0.0,
                    val_fraction=0.1),
    ),
}


def default_preset(gpu: bool) -> str:
    """The preset a new learner starts on: the fastest recipe that beats the course on this machine."""
    return "Speedrun (GPU)" if gpu else "CPU: 70% in a minute"


def preset(name: str) -> TrainConfig:
    """A fresh copy of a preset's config."""
    return copy.deepcopy(PRESETS[name][1])
