"""Activation registry, derivatives by autograd, saturation statistics, softmax and cross-entropy helpers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab.hooks import hooked


@dataclass(frozen=True)
class ActivationSpec:
    make: Callable[..., nn.Module]
    params: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # name -> (default, min, max)


ACTIVATIONS: dict[str, ActivationSpec] = {
    "sigmoid": ActivationSpec(nn.Sigmoid),
    "tanh": ActivationSpec(nn.Tanh),
    "relu": ActivationSpec(nn.ReLU),
    "leaky_relu": ActivationSpec(lambda negative_slope=0.01: nn.LeakyReLU(negative_slope), {"negative_slope": (0.01, 0.0, 1.0)}),
    "elu": ActivationSpec(lambda alpha=1.0: nn.ELU(alpha), {"alpha": (1.0, 0.1, 3.0)}),
    "selu": ActivationSpec(nn.SELU),
    "gelu": ActivationSpec(nn.GELU),
    "silu": ActivationSpec(nn.SiLU),
    "mish": ActivationSpec(nn.Mish),
    "softplus": ActivationSpec(lambda beta=1.0: nn.Softplus(beta), {"beta": (1.0, 0.1, 10.0)}),
    "hardswish": ActivationSpec(nn.Hardswish),
    "relu6": ActivationSpec(nn.ReLU6),
    "identity": ActivationSpec(nn.Identity),
}


def make_activation(name: str, **params: float) -> nn.Module:
    return ACTIVATIONS[name].make(**params)


def curve(name: str, x: torch.Tensor, **params: float) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x), the derivative taken by autograd (no hand-written formula)."""
    x = x.detach().clone().requires_grad_(True)
    y = make_activation(name, **params)(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


@dataclass
class UnitStats:
    dead: float  # share of units whose gradient is exactly zero
    saturated: float  # share whose |gradient| is below the threshold, but not zero
    outputs: torch.Tensor
    grads: torch.Tensor


def unit_stats(name: str, pre: torch.Tensor, threshold: float = 0.05, **params: float) -> UnitStats:
    """Outputs and gradients of an activation over a sample of pre-activations."""
    outputs, grads = curve(name, pre, **params)
    dead = (grads == 0).float().mean().item()
    saturated = ((grads.abs() < threshold) & (grads != 0)).float().mean().item()
    return UnitStats(dead, saturated, outputs, grads)


def softmax_cross_entropy(logits: list[float], target: int, temperature: float = 1.0) -> dict:
    """Probabilities, the cross-entropy for `target` and its gradient with respect to each logit (p - y)."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy((z / temperature)[None], torch.tensor([target]))
    (grad,) = torch.autograd.grad(loss, z)
    probs = torch.softmax(z.detach() / temperature, 0)
    return {"probs": probs.tolist(), "loss": loss.item(), "grad": grad.tolist()}


def max_derivative(name: str, lo: float = -10.0, hi: float = 10.0, **params: float) -> tuple[float, float]:
    """The largest |f'(x)| on [lo, hi] and where it is reached."""
    x = torch.linspace(lo, hi, 20001, dtype=torch.float64)
    _, grad = curve(name, x, **params)
    i = int(grad.abs().argmax())
    return grad[i].abs().item(), x[i].item()


@torch.no_grad()
def layer_activations(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The outputs of every activation module of a model on a batch, in forward order (forward hooks)."""
    kinds = tuple({type(spec.make()) for spec in ACTIVATIONS.values()} - {nn.Identity})
    found: list[tuple[str, torch.Tensor]] = []
    hooks = [(module, lambda m, i, o, name=name: found.append((name, o.detach().flatten())))
             for name, module in model.named_modules() if isinstance(module, kinds)]
    with hooked(model, hooks):
        model(x)
    return found
