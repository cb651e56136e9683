"""How close a run comes to the machine's limit (issue 33): the FLOPs it computed, counted by
torch.utils.flop_counter, over its seconds, beside the machine's peak measured in the same bench process with the
same threads and the run's dtype: a dense matmul, and the fastest of the run's own convolutions timed alone (forward)
at their shapes and batch. Every training row of the bench carries this as its utilisation column."""
from __future__ import annotations

import contextlib
import functools
import time
from math import prod
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnn_lab import data as datasets
from cnn_lab.device import cpu_bf16, fast_bf16
from cnn_lab.models import build_model
from cnn_lab.train import TrainConfig
from tests.bench.common import Row, sync_device

SHAPE, CLASSES = (3, 32, 32), 10  # CIFAR-10


def matmul_size(device: torch.device) -> int:
    """The side of the peak's square matmul: 2048 on a CPU (about 0.1 s in float32 on 2 cores); 8192 on a GPU,
    where a 2048 one is done in tens of microseconds, about what timing it costs, and reads far under the peak."""
    return 8192 if device.type == "cuda" else 2048


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                         _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """A convolution's backward: its input's gradient and its weights' gradient each cost what its forward pass
    costs, 2 x outputs x weights per output (a transposed one's: per input), the weights per output being
    in / groups x kernel (w_shape[1:]). torch's own formula leaves the groups out of the weights' gradient, so it
    counts a depthwise convolution's (EfficientNet's) as a dense one's: 1,152 times too many FLOPs for the widest
    of EfficientNet-Lite0's last blocks."""
    forward = 2 * prod(x_shape if transposed else grad_out_shape) * prod(w_shape[1:])
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def counter() -> FlopCounterMode:
    """torch.utils.flop_counter's counter, with grouped convolutions' backward counted right."""
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops})


def training_flops_per_image(config: TrainConfig) -> float:
    """Forward and backward of one batch of the model as the config builds it, averaged over its epochs (with
    progressive resizing, the first ones see smaller windows); a whitened stem is frozen, as in the trainer, so that
    neither its weights' gradient nor its input's is counted (the real run computes neither)."""
    small = min(config.small_epochs, config.epochs)
    full = _step_flops_per_image(config, SHAPE[-1])
    if not small:
        return full
    return (small * _step_flops_per_image(config, config.small_size) + (config.epochs - small) * full) / config.epochs


def _step_flops_per_image(config: TrainConfig, size: int) -> float:
    model = build_model(config.model, SHAPE, CLASSES)
    if config.whiten:
        next(m for m in model.modules() if isinstance(m, nn.Conv2d)).requires_grad_(False)
    x, y = torch.randn(config.batch_size, SHAPE[0], size, size), torch.randint(0, CLASSES, (config.batch_size,))
    with counter() as counted:
        F.cross_entropy(model(x), y).backward()
    return counted.get_total_flops() / config.batch_size


@contextlib.contextmanager
def flops_counted():
    """Count every FLOP computed in this thread inside the block (for runs whose ops are large, such as a
    pretrained backbone's, the counting's own cost is small); yields a function that returns the count so far."""
    with counter() as counted:
        yield counted.get_total_flops


def conv_shapes(model: nn.Module, shape: tuple[int, ...], batch: int) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each convolution of the model, with the shape of its input at `batch`."""
    seen = []

    def keep(module, inputs, output):
        seen.append((module, (batch, *inputs[0].shape[1:])))

    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, nn.Conv2d)]
    weight = next(model.parameters())
    with torch.no_grad():
        model.eval()(torch.randn(1, *shape, device=weight.device, dtype=weight.dtype))  # a half model takes halves
    for hook in hooks:
        hook.remove()
    return seen


def best_seconds(work: Callable[[], object], repeats: int = 10) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        sync_device()
        start = time.perf_counter()
        work()
        sync_device()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_dtype(device: torch.device, amp: bool) -> torch.dtype:
    """The dtype a run's training steps compute in: bf16 where it asks (amp) and the device computes it fast, float32
    otherwise (the trainer's own rule, device.fast_bf16)."""
    return torch.bfloat16 if amp and fast_bf16(device) else torch.float32


@functools.cache
def matmul_peak(device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32) -> float:
    """The machine's dense peak on `device` in `dtype`, measured once per bench process."""
    n = matmul_size(device)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return 2 * n**3 / best_seconds(lambda: a @ b)


def conv_flops_per_s(conv: nn.Conv2d, shape: tuple[int, ...], dtype: torch.dtype) -> float:
    """One convolution alone, forward, at its input's shape, channels-last (the layout the CPU's convolution kernels
    prefer, and every recipe's but the course's: the peak is the best the machine does with this convolution)."""
    device = conv.weight.device
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast(device.type, dtype, enabled=dtype != torch.float32):
        out = conv(x)
        flops = 2 * out.numel() * conv.weight[0].numel()
        return flops / best_seconds(lambda: conv(x))


def fastest_conv(model: nn.Module, shape: tuple[int, ...], batch: int, dtype: torch.dtype = torch.float32) -> float:
    """The FLOP/s of the model's fastest convolution, timed alone at its own input shape and `batch`."""
    return max(conv_flops_per_s(conv, x, dtype) for conv, x in conv_shapes(model, shape, batch))


def cell(flops_per_s: float, conv_peak: float, peak: float) -> str:
    """The utilisation column: what a run reached, against the matmul's peak and its fastest convolution's; in
    TFLOP/s where the run passes 10 of them (on a GPU), in GFLOP/s otherwise."""
    scale, unit = (1e12, "TFLOP/s") if flops_per_s >= 1e13 else (1e9, "GFLOP/s")
    share = lambda part: f"{part:.0%}" if part >= 0.01 else "under 1%"  # noqa: E731
    return (f"{flops_per_s / scale:,.0f} {unit}: {share(flops_per_s / peak)} of the matmul peak, "
            f"{share(flops_per_s / conv_peak)} of its fastest conv's {conv_peak / scale:,.0f}")


@functools.cache
def _training_figures(config_json: str, device: torch.device) -> tuple[float, float, float]:
    """(FLOPs per training image, its fastest convolution's FLOP/s, the matmul peak) for a CIFAR-10 config."""
    config = TrainConfig.from_json(config_json)
    dtype = peak_dtype(device, config.amp)
    model = build_model(config.model, SHAPE, CLASSES).to(device)
    return (training_flops_per_image(config), fastest_conv(model, SHAPE, config.batch_size, dtype),
            matmul_peak(device, dtype))


def of_training(config: TrainConfig, images_per_s: float, device: torch.device = torch.device("cpu")) -> str:
    """The utilisation column of a CIFAR-10 run: its FLOPs per training image (forward and backward) times the
    training images it went through per second (its evaluation passes left out)."""
    per_image, conv_peak, peak = _training_figures(config.to_json(), device)
    return f"{cell(per_image * images_per_s, conv_peak, peak)}; {per_image / 1e6:.0f} MFLOP per training image"


def whole_run_dtype(device: torch.device) -> torch.dtype:
    """The dtype a whole transfer run is read against: bf16 on a GPU, where all of it runs under bf16 autocast;
    float32 on a CPU, where such a run mixes float32 with bf16 where the CPU has it (its training views)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def of_run(flops: float, seconds: float, model: nn.Module, shape: tuple[int, ...], batch: int) -> str:
    """The utilisation column of a whole run (a transfer recipe: the frozen pass, training and tests): the FLOPs it
    computed over its wall time, against the fastest of `model`'s convolutions at `shape` and `batch`, and against the
    matmul peak, both in whole_run_dtype."""
    device = next(model.parameters()).device
    dtype = whole_run_dtype(device)
    return (f"{cell(flops / seconds, fastest_conv(model, shape, batch, dtype), matmul_peak(device, dtype))}; "
            f"{flops / 1e12:.1f} TFLOP in all")


def bench_utilisation(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """The peaks every utilisation column is read against: the CPU's, and on a GPU the GPU's too."""
    cpu = torch.device("cpu")
    rows = [Row("Peak: a dense float32 matmul, 2048x2048", f"{matmul_peak() / 1e9:,.0f} GFLOP/s",
                f"{torch.get_num_threads()} torch threads, the best of 10; every CPU run's utilisation column is read "
                "against it (against bf16's for a run in bf16), and against the run's own fastest convolution timed "
                "alone (forward, at its shape and batch, in the run's dtype)")]
    if fast_bf16(cpu):
        rows.append(Row(f"Peak: the same matmul in bf16 (this CPU computes bf16 in hardware: {cpu_bf16()})",
                        f"{matmul_peak(cpu, torch.bfloat16) / 1e9:,.0f} GFLOP/s", "the best of 10"))
    if torch.cuda.is_available():
        gpu, n = torch.device("cuda"), matmul_size(torch.device("cuda"))
        for dtype, what in ((torch.float32, "float32 (no TF32)"), (torch.bfloat16, "bf16"), (torch.float16, "fp16")):
            rows.append(Row(f"Peak on the GPU: a dense {what} matmul, {n}x{n}",
                            f"{matmul_peak(gpu, dtype) / 1e12:,.0f} TFLOP/s",
                            "the best of 10; the GPU's rows are read against it in their dtype"))
    return rows
