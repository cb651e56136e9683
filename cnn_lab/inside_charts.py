"""The "Inside the network" page's figures: the architecture, a layer's channels, one map as clickable pixels and
the learned space (Plotly); and pictures of many small maps or images at once (one image each, with titles).

A chosen cell is outlined by a rectangle in data coordinates, which sits on the cell whatever size the chart is drawn."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


# The architecture chart's colours, one per family of layer, each named in its legend.
FAMILIES = {
    "convolution": ("#1f77b4", ("Conv2d", "Conv2dStaticSamePadding", "ConvTranspose2d")),
    "linear": ("#d62728", ("Linear",)),
    "normalisation": ("#7f7f7f", ("BatchNorm2d", "BatchNorm1d", "LayerNorm", "GroupNorm")),
}
OTHER = ("activation, pooling, dropout, reshaping", "#2ca02c")


def family_of(kind: str) -> tuple[str, str]:
    """A layer class's family and colour for the architecture chart."""
    for family, (colour, kinds) in FAMILIES.items():
        if kind in kinds:
            return family, colour
    return OTHER


def _log_ticks(largest: float) -> dict:
    """Tick labels 1, 10, 100, 1k, ... for a linear axis that carries log10 of the values."""
    top = int(np.ceil(largest))
    text = ["1", "10", "100", "1k", "10k", "100k", "1M", "10M", "100M"]
    return dict(tickvals=list(range(top + 1)), ticktext=[text[i] if i < len(text) else f"1e{i}" for i in range(top + 1)])


def architecture_figure(names: list[str], kinds: list[str], shapes: list[tuple[int, ...]], fields: list[int | None],
                        chosen: int) -> go.Figure:
    """Every layer in order, as a bar as tall as its output has values (log scale), coloured by family with a
    legend for every colour; hover shows its shape and receptive field; the chosen layer is outlined.

    The bars carry log10 of the size on a linear axis (a log axis puts a bar's foot at minus infinity, so Plotly
    misplaces its middle), and a click anywhere in a bar's column picks it (hovermode "x")."""
    heights = [np.log10(max(1, int(np.prod(s)))) for s in shapes]
    fig = go.Figure()
    for family, colour in [(f, c) for f, (c, _) in FAMILIES.items()] + [OTHER]:
        index = [i for i, k in enumerate(kinds) if family_of(k)[0] == family]
        if not index:
            continue
        fig.add_bar(
            x=index, y=[heights[i] for i in index], name=family, marker_color=colour, marker_line_color="black",
            marker_line_width=[3 if i == chosen else 0 for i in index],
            customdata=[[names[i], kinds[i], " x ".join(map(str, shapes[i])),
                         "whole image" if fields[i] is None else f"{fields[i]} px", int(np.prod(shapes[i]))]
                        for i in index],
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>output %{customdata[2]} = %{customdata[4]:,} values"
                          "<br>receptive field %{customdata[3]}<extra></extra>")
    fig.update_yaxes(title="values in the output", **_log_ticks(max(heights, default=1)))
    fig.update_xaxes(title="layer, in the order data flows: click a bar to look at it")
    fig.update_layout(height=280, margin=dict(t=10, b=40, l=50, r=10), clickmode="event+select", hovermode="x",
                      barmode="overlay", bargap=0.15, legend=dict(orientation="h", y=1.12, x=0))
    return fig


VIRIDIS = np.array([[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137],
                    [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]], dtype=np.float32)


def colourise(m: np.ndarray) -> np.ndarray:
    """A map (H, W) on its own scale as viridis RGB (H, W, 3) uint8."""
    scaled = (m - m.min()) / (np.ptp(m) + 1e-8) * (len(VIRIDIS) - 1)
    low = np.floor(scaled).astype(int).clip(0, len(VIRIDIS) - 2)
    return (VIRIDIS[low] + (scaled - low)[..., None] * (VIRIDIS[low + 1] - VIRIDIS[low])).round().astype(np.uint8)


def diverging(m: np.ndarray, limit: float) -> np.ndarray:
    """A map (H, W) on a shared scale as RGB (H, W, 3) uint8: blue below zero, white at zero, red above, full colour
    at +-limit (the colours of the page's heat maps)."""
    t = np.clip(m / (limit or 1.0), -1, 1)[..., None]
    white, red, blue = np.array([247, 247, 247.0]), np.array([178, 24, 43.0]), np.array([33, 102, 172.0])
    return np.where(t >= 0, white + t * (red - white), white - t * (blue - white)).round().astype(np.uint8)


def contact_sheet(tiles: list[np.ndarray], titles: list[str], columns: int, side: int,
                  boxes: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    """Pictures (H, W, 3), or grey (H, W), uint8 in a grid, each scaled to side x side pixels under its title, optionally with a
    yellow box (top, left, bottom, right, in the tile's own pixels) on each: one image for the browser, where a
    chart of many small subplots took it a tenth of a second and more at every redraw. Returns (H, W, 3) uint8."""
    from PIL import Image, ImageDraw

    label, gap = 14, 4
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (side + gap), rows * (side + label + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, title) in enumerate(zip(tiles, titles)):
        r, c = divmod(i, columns)
        x, y = c * (side + gap), r * (side + label + gap) + label
        sheet.paste(Image.fromarray(tile).convert("RGB").resize((side, side), Image.NEAREST), (x, y))
        draw.text((x + side // 2, y - label // 2), title, fill=(49, 51, 63), anchor="mm")
        if boxes is not None:
            top, left, bottom, right = boxes[i]
            sy, sx = side / tile.shape[0], side / tile.shape[1]
            draw.rectangle((x + left * sx, y + top * sy, x + right * sx - 1, y + bottom * sy - 1), outline="yellow",
                           width=2)
    return np.asarray(sheet)


def channel_bars_figure(means: np.ndarray, order: list[int], chosen: int, limit: int = 64) -> go.Figure:
    """A layer's channels by mean activation, most active first (at most `limit`); click a bar to pick one."""
    shown = order[:limit]
    fig = go.Figure(go.Bar(x=[f"ch {c}" for c in shown], y=[float(means[c]) for c in shown],
                           marker_color=["#d62728" if c == chosen else "#1f77b4" for c in shown],
                           hovertemplate="%{x}: mean %{y:.3f}<extra></extra>"))
    fig.update_layout(height=200, margin=dict(t=10, b=40, l=50, r=10), yaxis_title="mean", clickmode="event+select",
                      hovermode="x")
    return fig


def pixel_map_figure(m: np.ndarray, chosen: tuple[int, int]) -> go.Figure:
    """One feature map as a heat map, under an invisible point at each cell's centre that a click picks (a heat map
    alone gives Streamlit no click point); the chosen cell is outlined by a rectangle on its edges. (Coloured square
    markers, one per value, took the browser half a second to redraw at each move; a heat map is one image.)"""
    rows, cols = m.shape
    limit = float(np.abs(m).max()) or 1.0
    r, c = np.mgrid[0:rows, 0:cols]
    clicks = go.Scattergl  # WebGL: a thousand invisible SVG markers cost the browser 0.3 s at every redraw
    fig = go.Figure([
        go.Heatmap(z=np.round(m, 4), zmin=-limit, zmax=limit, colorscale="RdBu_r", hoverinfo="skip"),
        clicks(x=c.ravel(), y=r.ravel(), mode="markers", marker=dict(size=4, opacity=0), customdata=m.ravel(),
               hovertemplate="row %{y}, column %{x}: %{customdata:.4f}<extra></extra>")])
    fig.add_shape(type="rect", x0=chosen[1] - 0.5, x1=chosen[1] + 0.5, y0=chosen[0] - 0.5, y1=chosen[0] + 0.5,
                  line=dict(color="black", width=3))
    fig.update_xaxes(visible=False, range=[-0.5, cols - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[rows - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(height=440, margin=dict(t=10, b=10, l=10, r=10), showlegend=False, clickmode="event+select",
                      dragmode=False)
    return fig


def embedding_figure(points: np.ndarray, labels: list[str], predicted: list[str], classes: list[str]) -> go.Figure:
    """Test images as points in 2-D (their penultimate features projected), one colour per true class; a
    hollow marker where the model was wrong; hover shows the true and predicted class; click to pick one.
    Drawn with WebGL: ten thousand SVG markers (a whole CIFAR-10 test set) took the browser seconds at every visit."""
    fig = go.Figure()
    labels_a, predicted_a = np.asarray(labels), np.asarray(predicted)
    for name in classes:
        index = np.flatnonzero(labels_a == name)
        wrong = predicted_a[index] != name
        fig.add_trace(go.Scattergl(
            x=points[index, 0], y=points[index, 1], mode="markers", name=name,
            customdata=np.stack([index, predicted_a[index]], axis=1),
            marker=dict(size=6, symbol=np.where(wrong, "circle-open", "circle")),
            hovertemplate=f"image %{{customdata[0]}}<br>true {name}<br>predicted %{{customdata[1]}}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=480, margin=dict(t=10, b=10, l=10, r=10), clickmode="event+select")
    return fig
