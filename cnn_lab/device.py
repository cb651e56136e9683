"""Pick the compute device (cuda, then mps, then cpu) and describe it in a few words."""
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
    return f"CPU: {torch.get_num_threads()} threads"
