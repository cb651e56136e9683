"""How close training comes to the machine's limit (issue 33, its first part): a run's FLOPs per training image
(the forward and backward of one batch, counted by torch.utils.flop_counter), the FLOP/s its training reached, and
the machine's peak measured in the same run, with the same threads and dtype (float32): a dense matmul, and the
fastest of the run's own convolutions, each timed alone (forward) at its shapes and batch."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnn_lab import data as datasets
from cnn_lab.models import build_model
from cnn_lab.presets import preset
from cnn_lab.train import TrainConfig
from tests.bench.common import Row, run_config

SHAPE, CLASSES = (3, 32, 32), 10  # CIFAR-10
RUNS = ("Course: CNN", "CPU: 70% in a minute")


def training_flops_per_image(config: TrainConfig) -> float:
    """Forward and backward of one batch of the model as the config builds it; a whitened stem is frozen, as in the
    trainer, so that neither its weights' gradient nor its input's is counted (the real run computes neither)."""
    model = build_model(config.model, SHAPE, CLASSES)
    if config.whiten:
        next(m for m in model.modules() if isinstance(m, nn.Conv2d)).requires_grad_(False)
    x, y = torch.randn(config.batch_size, *SHAPE), torch.randint(0, CLASSES, (config.batch_size,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / config.batch_size


def conv_shapes(config: TrainConfig) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each convolution of the model, with the shape of its input at the config's batch."""
    model, seen = build_model(config.model, SHAPE, CLASSES), []

    def keep(module, inputs, output):
        seen.append((module, (config.batch_size, *inputs[0].shape[1:])))

    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.randn(1, *SHAPE))
    for hook in hooks:
        hook.remove()
    return seen


def best_seconds(work, repeats: int = 10) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_matmul(n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / best_seconds(lambda: a @ b)


def peak_conv(conv: nn.Conv2d, shape: tuple[int, ...]) -> float:
    x = torch.randn(shape)
    with torch.no_grad():
        out = conv(x)
        flops = 2 * out.numel() * conv.weight[0].numel()
        return flops / best_seconds(lambda: conv(x))


def bench_utilisation(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    matmul = peak_matmul()
    rows: list[Row] = [("Peak: a dense float32 matmul, 2048x2048", f"{matmul / 1e9:.0f} GFLOP/s",
                        f"{torch.get_num_threads()} torch threads, the best of 10")]
    for name in RUNS:
        config = preset(name)
        if quick:
            config.epochs = 1
        per_image = training_flops_per_image(config)
        conv_peak, conv, shape = max(((peak_conv(c, x), c, x) for c, x in conv_shapes(config)), key=lambda p: p[0])
        accuracy, seconds, images_per_s, _ = run_config(config, cifar)
        reached = per_image * images_per_s
        rows.append((f"Utilisation: \"{name}\" ({config.epochs} epochs)",
                     f"{reached / 1e9:.1f} GFLOP/s: {reached / matmul:.0%} of the matmul's peak, "
                     f"{reached / conv_peak:.0%} of its fastest convolution's",
                     f"{per_image / 1e6:.1f} MFLOP per training image (forward and backward) x {images_per_s:,.0f} "
                     f"img/s; its fastest convolution ({conv.in_channels}->{conv.out_channels}, "
                     f"{conv.kernel_size[0]}x{conv.kernel_size[1]}, input {shape}) alone, forward: "
                     f"{conv_peak / 1e9:.0f} GFLOP/s; the run: {accuracy:.1%} test in {seconds:.0f} s"))
    return rows
