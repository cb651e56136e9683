"""Pick the compute device (cuda, then mps, then cpu), describe it in a few words, say whether bf16 pays on it, and
how many images a pass without training takes at once."""
from __future__ import annotations

import torch


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    device = device or pick_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    kind = cpu_bf16()
    return f"CPU: {torch.get_num_threads()} threads" + (f", bf16 in hardware ({kind})" if kind else "")


def cpu_bf16() -> str:
    """How this CPU computes bf16, 16-bit numbers, in hardware: "AMX" (matrix tiles, Intel Xeon since its 4th
    generation; the preset "CPU: 89% in ten minutes" trained on a Xeon's 2 cores with AMX in half the time it took on
    an EPYC's with AVX512-BF16 alone), "AVX512-BF16" (vector instructions: about half float32's time), or "" (none:
    bf16 is emulated, slower than float32). BENCHMARKS.md has the figures."""
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        return "AMX"
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "AVX512-BF16"
    return ""


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 arithmetic runs faster than float32 here: on a GPU, and on a CPU with bf16 instructions
    (AVX512-BF16 or AMX), where EfficientNet's forward pass and the speedrun net's training step take about half the
    time (BENCHMARKS.md). Other CPUs emulate bf16, slower than float32."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(cpu_bf16())


def bf16(device: torch.device, wanted: bool = True) -> torch.autocast:
    """Autocast to bf16 where `wanted` and fast on `device`; float32 otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=wanted and fast_bf16(device))


def inference_batch(device: torch.device, image_shape: torch.Size, most: int = 32) -> int:
    """How many images of (..., H, W) a forward pass without gradients takes at once: `most` on a GPU (32 keeps a
    frozen network busy). On a CPU, as many as hold the pixels of 4 photos of 224 px, at most `most`: with 32 such
    photos a layer's output is tens of MB, which glibc's malloc takes fresh from the kernel and gives back at each
    layer, so every batch page-faulted its memory in again, and the pass took about twice as long
    (docs/benchmarks-log.md, 4 Dec; an evaluation of 105 photos at 288 px in one batch, three times as long). Small
    images keep large batches, where each batch's fixed cost would otherwise show."""
    if device.type != "cpu":
        return most
    return max(1, min(most, 4 * 224 * 224 // (image_shape[-2] * image_shape[-1])))
