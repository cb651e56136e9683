"""Kernel registry: classic image-processing kernels, each a function of its size and parameters."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import torch


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def identity(size: int = 3) -> torch.Tensor:
    k = torch.zeros(size, size)
    k[size // 2, size // 2] = 1
    return k


def box_blur(size: int = 3) -> torch.Tensor:
    return torch.full((size, size), 1 / size**2)


def gaussian_blur(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def motion_blur(size: int = 7) -> torch.Tensor:
    """Blur along the diagonal, as a moving camera does."""
    return torch.eye(size) / size


def laplacian(size: int = 3) -> torch.Tensor:
    return _t([[0, 1, 0], [1, -4, 1], [0, 1, 0]])


@dataclass(frozen=True)
class KernelSpec:
    make: Callable[..., torch.Tensor]
    sizes: tuple[int, ...] = (3,)  # the sizes the preset comes in
    params: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # name -> (default, min, max)
    description: str = ""


def _fixed(rows: list[list[float]]) -> Callable[..., torch.Tensor]:
    return lambda size=3: _t(rows)


KERNELS: dict[str, KernelSpec] = {
    "identity": KernelSpec(identity, (3, 5, 7), description="Copies the image: a 1 in the centre."),
    "box blur": KernelSpec(box_blur, (3, 5, 7), description="The mean of the neighbourhood."),
    "gaussian blur": KernelSpec(gaussian_blur, (3, 5, 7), {"sigma": (1.0, 0.3, 3.0)},
                                "A weighted mean, heavier at the centre."),
    "sharpen": KernelSpec(_fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]), description="The centre minus its neighbours."),
    "sobel x": KernelSpec(_fixed([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]), description="Horizontal gradient: vertical edges."),
    "sobel y": KernelSpec(_fixed([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]), description="Vertical gradient: horizontal edges."),
    "scharr x": KernelSpec(_fixed([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]), description="A more rotation-exact Sobel."),
    "prewitt x": KernelSpec(_fixed([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]), description="Horizontal gradient, unweighted."),
    "laplacian": KernelSpec(laplacian, description="Second derivative: edges in every direction."),
    "emboss": KernelSpec(_fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]), description="Relief lit from one corner."),
    "outline": KernelSpec(_fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]), description="Strong edges everywhere."),
    "motion blur": KernelSpec(motion_blur, (5, 7, 9), description="A diagonal streak."),
}


def make_kernel(name: str, size: int | None = None, **params: float) -> torch.Tensor:
    spec = KERNELS[name]
    return spec.make(size or spec.sizes[0], **params)


def stack(kernels: list[torch.Tensor]) -> torch.Tensor:
    """Several (k, k) kernels -> (K, k, k), smaller ones zero-padded around their centre to the largest size."""
    size = max(k.shape[-1] for k in kernels)
    padded = []
    for k in kernels:
        p = (size - k.shape[-1]) // 2
        padded.append(torch.nn.functional.pad(k, (p, p, p, p)))
    return torch.stack(padded)


def grid_from_json(text: str, size: int) -> torch.Tensor | None:
    """A size x size kernel of finite numbers from JSON ('[[0, -1, 0], ...]'), or None when it is not one."""
    try:
        values = json.loads(text)
        grid = torch.tensor(values, dtype=torch.float32)
    except (ValueError, TypeError, RuntimeError):
        return None
    if grid.shape != (size, size) or not torch.isfinite(grid).all() or grid.abs().max() > 1e6:
        return None
    return grid
