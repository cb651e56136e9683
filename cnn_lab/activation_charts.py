"""The activation page's Plotly figures: curves with their derivatives, the best-case gradient through N layers,
histograms, and softmax with its gradient. One colour per activation, the same in every figure."""
from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from cnn_lab.activations import ACTIVATIONS

COLOURS = dict(zip(ACTIVATIONS, px.colors.qualitative.Dark24))
MARGIN = dict(t=40, b=30, l=30, r=10)


def curves_figure(x: torch.Tensor, curves: dict[str, tuple[torch.Tensor, torch.Tensor]],
                  flat: tuple[str, float] | None = None) -> go.Figure:
    """Each activation's f(x) on the left and its derivative on the right; with `flat` (an activation and a
    threshold), grey bands where that activation's derivative is below the threshold."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("f(x)", "f'(x) by autograd"))
    for name, (y, grad) in curves.items():
        fig.add_scatter(x=x, y=y, name=name, legendgroup=name, line_color=COLOURS[name], row=1, col=1)
        fig.add_scatter(x=x, y=grad, name=name, legendgroup=name, showlegend=False, line_color=COLOURS[name],
                        row=1, col=2)
    if flat is not None and flat[0] in curves:
        below = (curves[flat[0]][1].abs() < flat[1]).numpy()
        edges = np.flatnonzero(np.diff(np.concatenate([[0], below.astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            fig.add_vrect(x0=x[start].item(), x1=x[stop - 1].item(), fillcolor="grey", opacity=0.15, line_width=0,
                          row=1, col=2)
    return fig.update_layout(height=380, margin=MARGIN)


def depth_figure(best: dict[str, float], depth: int) -> go.Figure:
    """max |f'| to the power N for N = 1..depth: the largest gradient N stacked layers of each activation pass."""
    fig = go.Figure()
    layers = list(range(1, depth + 1))
    for name, value in best.items():
        fig.add_scatter(x=layers, y=[value**n for n in layers], name=name, line_color=COLOURS[name])
    fig.update_yaxes(type="log", title="max |f'|^N")
    fig.update_xaxes(title="layers N")
    return fig.update_layout(height=300, margin=dict(MARGIN, t=10))


def histograms_figure(left: np.ndarray, right: np.ndarray, titles: tuple[str, str]) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    fig.add_histogram(x=left, nbinsx=80, row=1, col=1)
    fig.add_histogram(x=right, nbinsx=80, row=1, col=2)
    return fig.update_layout(height=280, showlegend=False, margin=MARGIN)


def histogram_figure(values: np.ndarray) -> go.Figure:
    return go.Figure(go.Histogram(x=values, nbinsx=80)).update_layout(height=260, margin=MARGIN)


def softmax_figure(labels: list[str], probs: list[float], grad: list[float]) -> go.Figure:
    """The softmax's probabilities beside the cross-entropy's gradient with respect to each logit."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("softmax probabilities", "∂loss/∂logit = (p − y) / T"))
    fig.add_bar(x=labels, y=probs, text=[f"{p:.1%}" for p in probs], row=1, col=1)
    fig.add_bar(x=labels, y=grad, row=1, col=2)
    return fig.update_layout(height=300, showlegend=False, margin=MARGIN)
