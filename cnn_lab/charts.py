"""Plotly figures shared by the pages (figures are data: no Streamlit here)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnn_lab.metrics import EpochRecord

MAX_POINTS = 600  # a curve never draws more points than this, so long runs keep memory flat

# A chart whose data change every second is drawn anew each time, and on a 2-core laptop the browser's drawing is
# taken from training (issue 18). Without Streamlit's chart theme, Plotly's template, the in-figure title and the
# hover and zoom layers (a zoom would not outlive the next second anyway), one draw of the step chart takes 15 ms in
# Chromium instead of 35 ms. So the live step chart (ui.live_chart) is drawn with config=LIVE_CHART, and styled like
# the app here.
LIVE_CHART = {"staticPlot": True}
GRID = "#e6eaf1"
LIVE_LAYOUT = dict(template="none", font=dict(family="Source Sans Pro, sans-serif", size=13, color="#31333f"),
                   paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")


def downsample(xs: list, ys: list, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` evenly spaced points, as numpy arrays (Plotly validates arrays far faster than lists)."""
    xs, ys = np.asarray(xs), np.asarray(ys, dtype=float)
    if len(xs) <= limit:
        return xs, ys
    index = np.linspace(0, len(xs) - 1, limit).round().astype(int)
    return xs[index], ys[index]


def ema(values: list[float], smoothing: float) -> list[float]:
    """Exponential moving average with debiasing, as TensorBoard smooths curves."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = smoothing * avg + (1 - smoothing) * v
        out.append(avg / (1 - smoothing**i) if smoothing > 0 else v)
    return out


def step_loss_series(steps: list[tuple[int, float, float]], smoothing: float = 0.9) -> dict[str, list[float]]:
    """The step chart's data as plain lists (x, loss, smoothed loss, learning rate), at most MAX_POINTS each: what
    the live chart receives every second while a job runs (see live_chart.js)."""
    xs = [s for s, _, _ in steps]
    raw = [loss for _, loss, _ in steps]
    x, loss = downsample(xs, raw)
    _, smooth = downsample(xs, ema(raw, smoothing))
    _, lr = downsample(xs, [lr for _, _, lr in steps])
    return {"x": x.tolist(), "loss": _finite(loss), "smooth": _finite(smooth), "lr": _finite(lr)}


def _finite(values: np.ndarray) -> list[float | None]:
    """A list JSON can carry: NaN and infinity (a diverging run's last losses) become None, a gap in the curve."""
    return [v if np.isfinite(v) else None for v in values.tolist()]


def step_loss_figure(steps: list[tuple[int, float, float]], smoothing: float = 0.9, log_y: bool = False) -> go.Figure:
    """Train loss per step (raw and smoothed) with the learning rate on a second axis. One plain figure, no
    subplots and no title (the page writes it above): while a job runs, the browser redraws it every second with
    new data (step_loss_series), so it must be cheap to draw (see LIVE_CHART)."""
    series = step_loss_series(steps, smoothing)
    x = series["x"]
    fig = go.Figure([
        go.Scatter(x=x, y=series["loss"], name="loss", line=dict(color="rgba(59,111,216,0.3)")),
        go.Scatter(x=x, y=series["smooth"], name=f"loss, EMA {smoothing:.2f}", line=dict(color="#3b6fd8")),
        go.Scatter(x=x, y=series["lr"], name="learning rate", yaxis="y2", line=dict(color="#d8843b", dash="dot")),
    ])
    fig.update_layout(
        xaxis_title="step", height=290, margin=dict(t=10, b=40, l=55, r=70), **LIVE_LAYOUT,
        yaxis=dict(title="loss", type="log" if log_y else "linear", gridcolor=GRID),
        yaxis2=dict(title="learning rate", overlaying="y", side="right", showgrid=False),
        legend=dict(orientation="h", y=-0.32),
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    return fig


def live_step_loss_figure(smoothing: float = 0.9, log_y: bool = False) -> go.Figure:
    """The step chart's traces and layout as the browser redraws them every second while a job runs
    (ui.live_chart), without data: no legend and no title on the right axis (the page writes both in HTML above
    the chart), which take a third of each redraw's time in Chromium."""
    fig = step_loss_figure([], smoothing, log_y)
    fig.update_layout(showlegend=False, yaxis2_title=None, height=250, margin=dict(t=10, b=40, l=55, r=55))
    return fig


def epoch_figure(runs: dict[str, list[EpochRecord]], log_y: bool = False) -> go.Figure:
    """Train and validation loss and accuracy per epoch, side by side; several runs overlay. Built from plain dicts
    (make_subplots and its checks took 40 ms of every rerun of the train page)."""
    palette = ["#3b6fd8", "#d8843b", "#3bb273", "#c0392b", "#8e44ad", "#7f8c8d"]
    traces = []
    for i, (name, epochs) in enumerate(runs.items()):
        color = palette[i % len(palette)]
        x = [e.epoch for e in epochs]
        for axis, train_key, val_key in (("", "train_loss", "val_loss"), ("2", "train_acc", "val_acc")):
            line = dict(type="scatter", x=x, xaxis=f"x{axis}", yaxis=f"y{axis}", legendgroup=name, showlegend=not axis)
            traces.append(line | dict(y=[getattr(e, train_key) for e in epochs], name=f"{name} train",
                                      line=dict(color=color, dash="dot")))
            if any(getattr(e, val_key) is not None for e in epochs):
                traces.append(line | dict(y=[getattr(e, val_key) for e in epochs], name=f"{name} val",
                                          line=dict(color=color)))
    title = dict(xref="paper", yref="paper", y=1, yanchor="bottom", showarrow=False, font=dict(size=16))
    layout = dict(
        xaxis=dict(domain=[0, 0.45], anchor="y", title=dict(text="epoch")),
        xaxis2=dict(domain=[0.55, 1], anchor="y2", title=dict(text="epoch")),
        yaxis=dict(anchor="x", type="log" if log_y else "linear"), yaxis2=dict(anchor="x2"),
        annotations=[title | dict(text="Loss per epoch", x=0.225), title | dict(text="Accuracy per epoch", x=0.775)],
        height=320, margin=dict(t=40, b=30, l=40, r=10))
    return unchecked_figure(traces, layout)


def confusion_figure(matrix: np.ndarray, classes: list[str]) -> go.Figure:
    """The confusion matrix as clickable squares (a Plotly heat map gives no click point in Streamlit): a click
    on a cell picks its true and predicted class."""
    n = len(classes)
    true, predicted = np.mgrid[0:n, 0:n]
    side = max(8, int(360 / n))
    fig = go.Figure(go.Scatter(
        x=predicted.ravel(), y=true.ravel(), mode="markers+text", text=matrix.ravel(), textfont_size=max(7, side // 3),
        marker=dict(symbol="square", size=side, color=matrix.ravel(), colorscale="Blues", showscale=True),
        customdata=[[classes[t], classes[p]] for t, p in zip(true.ravel(), predicted.ravel())],
        hovertemplate="true %{customdata[0]}<br>predicted %{customdata[1]}<br>%{text} images<extra></extra>"))
    fig.update_xaxes(title="predicted", tickvals=list(range(n)), ticktext=classes, range=[-0.5, n - 0.5])
    fig.update_yaxes(title="true", tickvals=list(range(n)), ticktext=classes, range=[n - 0.5, -0.5])
    fig.update_layout(height=450, margin=dict(t=20, b=40, l=40, r=10), clickmode="event+select", dragmode=False)
    return fig


def bars(labels: list[str], values: list[float], title: str = "", percent: bool = True) -> go.Figure:
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", text=[f"{v:.1%}" if percent else f"{v:g}" for v in values]))
    fig.update_layout(title=title, yaxis_autorange="reversed", height=60 + 28 * len(labels),
                      margin=dict(t=40 if title else 10, b=20, l=10, r=10))
    if percent:
        fig.update_xaxes(tickformat=".0%", range=[0, 1])
    return fig


def ranking_alt(what: str, ranked: list[tuple[str, float]]) -> str:
    """A bar chart of a ranking in words, for a screen reader: "what, as bars: boat 71%, ship 20%"."""
    return f"{what}, as bars: " + ", ".join(f"{name} {value:.0%}" for name, value in ranked)


def epochs_alt(runs: dict[str, list[EpochRecord]]) -> str:
    """The learning curves in words: each run's epochs and where its accuracy ended."""
    def last(name: str, epochs: list[EpochRecord]) -> str:
        end = epochs[-1]
        accuracy = end.val_acc if end.val_acc is not None else end.train_acc
        return f"{name}: {len(epochs)} epochs, accuracy {accuracy:.1%} and loss {end.train_loss:.3f} at the last"
    return "Loss and accuracy per epoch, train dotted and validation solid. " + "; ".join(
        last(name, epochs) for name, epochs in runs.items() if epochs)


def filters_figure(weights: np.ndarray, columns: int = 8) -> go.Figure:
    """First-layer filters (out, in, k, k) as small images, each scaled to its own range."""
    traces = []
    for i, w in enumerate(weights):
        w = (w - w.min()) / (w.max() - w.min() + 1e-8)
        axes = dict(xaxis=f"x{i + 1 if i else ''}", yaxis=f"y{i + 1 if i else ''}")
        if w.shape[0] == 3:
            traces.append(dict(type="image", z=(np.transpose(w, (1, 2, 0)) * 255).astype(np.uint8), **axes))
        else:
            traces.append(dict(type="heatmap", z=w.mean(0), colorscale="gray", showscale=False, **axes))
    rows = -(-len(weights) // columns)
    return unchecked_figure(traces, grid_layout(len(weights), columns, [], gap=0.01)
                            | dict(height=70 * rows + 20, margin=dict(t=10, b=10, l=10, r=10)))


def unchecked_figure(traces: list[dict], layout: dict, frames: list[dict] | None = None) -> go.Figure:
    """A figure from plain dicts that Plotly does not check key by key (_validate=False). For the figures that a
    move rebuilds, with many traces of a few kinds we write ourselves: the checks took most of a slider move's time
    (0.1-0.5 s); the traces are the same few kinds every time, and the tests draw each of these figures."""
    return go.Figure(data=traces, layout=layout, frames=frames or [], _validate=False)


def grid_layout(count: int, columns: int, titles: list[str], gap: float = 0.03, title_size: int = 13) -> dict:
    """The layout of `count` small square plots in rows of `columns`, each titled, without axes: what
    make_subplots builds, as a plain dict (make_subplots and its updates took most of a slider move's 0.1 s).
    Plot i (from 0) uses axes x{i+1} and y{i+1} ("x" and "y" for the first)."""
    rows, cols = -(-count // columns), min(columns, count)
    row_gap = 0.08 if titles else gap  # room for the titles between rows
    width, height = (1 - gap * (cols - 1)) / cols, (1 - row_gap * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    for i in range(count):
        r, c = divmod(i, columns)
        x0, y1 = c * (width + gap), 1 - r * (height + row_gap)
        n = "" if i == 0 else str(i + 1)
        layout[f"xaxis{n}"] = dict(domain=[round(x0, 6), round(min(1.0, x0 + width), 6)], anchor=f"y{n}",
                                   visible=False)
        layout[f"yaxis{n}"] = dict(domain=[round(max(0.0, y1 - height), 6), round(y1, 6)], anchor=f"x{n}",
                                   visible=False, scaleanchor=f"x{n}", autorange="reversed")
        if i < len(titles):
            layout["annotations"].append(dict(text=titles[i], x=x0 + width / 2, y=y1, xref="paper", yref="paper",
                                              xanchor="center", yanchor="bottom", showarrow=False,
                                              font=dict(size=title_size)))
    return layout


def feature_maps_figure(maps: np.ndarray, titles: list[str], columns: int = 3, max_side: int = 128,
                        height: int = 300) -> go.Figure:
    """Feature maps on one diverging colour scale centred at zero, with a colour bar; large maps are shown
    subsampled to at most `max_side` pixels a side (the numbers are computed at full size)."""
    step = max(1, -(-max(maps.shape[-2:]) // max_side))
    maps = maps[:, ::step, ::step]
    limit = float(np.quantile(np.abs(maps), 0.995)) or 1.0  # robust: a few extreme pixels do not wash out the rest
    rows = -(-len(maps) // columns)
    traces = [dict(type="heatmap", z=np.round(m, 3), zmin=-limit, zmax=limit, colorscale="RdBu_r", showscale=i == 0,
                   colorbar=dict(len=0.8), xaxis=f"x{i + 1 if i else ''}", yaxis=f"y{i + 1 if i else ''}")
              for i, m in enumerate(maps)]
    layout = grid_layout(len(maps), columns, titles, title_size=13 if columns <= 4 else 11)  # titles fit their map
    return unchecked_figure(traces, layout | dict(height=height * rows, margin=dict(t=30, b=10, l=10, r=10)))


def sliding_window_figure(size: tuple[int, int], padding: int, out: tuple[int, int], taps_of, duration_ms: int = 400,
                          max_frames: int = 400, selected: tuple[int, int] | None = None) -> go.Figure:
    """The padded input (padding ring in grey), the kernel's taps on it, and the output cell they write, side by
    side on one grid of equal cells (the output starts two cells right of the input).

    `taps_of(row, col)` gives the padded-input cells of one output cell. With `selected`, a still picture of
    that cell, its taps and cell drawn as heat-map cells (exactly on the grid at any size); otherwise an animation
    over the output cells (at most `max_frames`), with play, pause and a step scrubber below the grids, each frame
    one trace of square markers."""
    H, W = size[0] + 2 * padding, size[1] + 2 * padding
    left = W + 2  # the output grid's first column
    ring = np.zeros((H, W))
    ring[padding : padding + size[0], padding : padding + size[1]] = 1
    cells = [(r, c) for r in range(out[0]) for c in range(out[1])]
    if len(cells) > max_frames:
        cells = cells[:: -(-len(cells) // max_frames)]
    red = [[0, "#d8433b"], [1, "#d8433b"]]
    grid = dict(type="heatmap", showscale=False, xgap=1, ygap=1, hoverinfo="skip")
    side = max(4, 360 // max(H, out[0], (W + 2 + out[1]) // 2))

    def cells_of(cell: tuple[int, int]) -> list[dict]:
        taps, lit = np.full((H, W), np.nan), np.full(out, np.nan)
        for r, c in taps_of(*cell):
            taps[r, c] = 1
        lit[cell] = 1
        return [grid | dict(z=taps, colorscale=red, opacity=0.75, name="kernel taps"),
                grid | dict(z=lit, x0=left, colorscale=red, name="output cell")]

    def markers_of(cell: tuple[int, int]) -> list[dict]:
        taps = taps_of(*cell)
        return [dict(type="scatter", mode="markers", name="window", hoverinfo="skip",
                     x=[c for _, c in taps] + [left + cell[1]], y=[r for r, _ in taps] + [cell[0]],
                     marker=dict(symbol="square", size=side, color=["rgba(216,67,59,0.75)"] * len(taps) + ["#d8433b"]))]

    title = dict(yref="y", y=-0.7, yanchor="bottom", showarrow=False, font=dict(size=14), xanchor="center")
    layout = dict(
        xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"),
        annotations=[title | dict(text=f"padded input {H}x{W} (grey = padding)", x=(W - 1) / 2),
                     title | dict(text=f"output {out[0]}x{out[1]}", x=left + (out[1] - 1) / 2)],
        height=460, showlegend=False, margin=dict(t=40, b=10, l=10, r=10))
    data = [grid | dict(z=ring, colorscale=[[0, "#d9d9d9"], [1, "#eaf1fb"]]),
            grid | dict(z=np.zeros(out), x0=left, colorscale=[[0, "#f4f4f4"], [1, "#f4f4f4"]])]
    data += cells_of(selected) if selected else markers_of(cells[0])
    frames = []
    if selected is None:
        frames = [dict(data=markers_of(cell), traces=[2], name=f"{cell[0]},{cell[1]}") for cell in cells]
        play = dict(frame=dict(duration=duration_ms, redraw=False), transition=dict(duration=0), fromcurrent=True)
        still = dict(mode="immediate", frame=dict(duration=0))
        layout.update(
            height=540, margin=dict(t=40, b=90, l=10, r=10),  # room below the grids for the controls
            updatemenus=[dict(type="buttons", x=0, y=-0.06, yanchor="top", xanchor="left", direction="left", buttons=[
                dict(label="Play", method="animate", args=[None, play]),
                dict(label="Pause", method="animate", args=[[None], still])])],
            sliders=[dict(x=0.18, y=-0.03, yanchor="top", len=0.82, currentvalue=dict(prefix="output cell "), steps=[
                dict(label=f["name"], method="animate", args=[[f["name"]], still]) for f in frames])])
    return unchecked_figure(data, layout, frames)


def coverage_figure(counts: np.ndarray) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=counts, colorscale="Viridis", colorbar=dict(title="windows"), xgap=1, ygap=1,
                               hovertemplate="row %{y}, col %{x}: %{z} windows<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    fig.update_layout(height=360, margin=dict(t=10, b=10, l=10, r=10))
    return fig


def overlay_figure(image: np.ndarray, heat: np.ndarray, opacity: float = 0.45) -> go.Figure:
    """A heat map in [0, 1] drawn over the photo (Grad-CAM), as opaque as `opacity`. No title in the figure: the
    page writes it above, where Plotly's toolbar cannot cover it."""
    fig = go.Figure(go.Image(z=image if image.ndim == 3 else np.repeat(image[..., None], 3, -1)))
    fig.add_heatmap(z=heat, colorscale="Jet", opacity=opacity, zmin=0, zmax=1, showscale=False, hoverinfo="skip")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=330, margin=dict(t=10, b=0, l=0, r=0))
    return fig


def layer_norms_figure(trace: dict, which: str = "grad") -> go.Figure:
    """Each weight layer's gradient (or weight) norm over the steps, log scale, from the first layer (dark) to
    the last (light): vanishing gradients show as the early layers' lines far below the late ones'."""
    fig = go.Figure()
    layers, values = trace["layers"], np.asarray(trace[which], dtype=float)
    for i, name in enumerate(layers):
        shade = i / max(1, len(layers) - 1)
        fig.add_scatter(x=trace["steps"], y=values[:, i] if len(values) else [], mode="lines", name=name,
                        line=dict(color=f"rgb({int(30 + 200 * shade)}, {int(60 + 120 * shade)}, {int(160 - 100 * shade)})"))
    fig.update_yaxes(type="log", title=f"{'gradient' if which == 'grad' else 'weight'} norm")
    fig.update_xaxes(title="step")
    fig.update_layout(height=320, margin=dict(t=10, b=40, l=60, r=10), legend=dict(font_size=10))
    return fig


def imagenet_history_alt(winners: list, human_error: float) -> str:
    first, last = winners[0], winners[-1]
    first_cnn = next(w for w in winners if w.layers)
    return (f"The ImageNet challenge's winning top-5 error by year, as bars: {first.top5_error:g}% in {first.year}, "
            f"{first_cnn.top5_error:g}% in {first_cnn.year} with the first CNN ({first_cnn.model}), "
            f"{last.top5_error:g}% in {last.year}; one person's error, {human_error:g}%, is a line")


def imagenet_history_figure(winners: list, human_error: float) -> go.Figure:
    """The ImageNet challenge's winning top-5 error by year, bars labelled with the model and its depth, and a
    line at one person's error."""
    deep = ["#3b6fd8" if w.layers else "#9aa4b2" for w in winners]
    fig = go.Figure(go.Bar(
        x=[str(w.year) for w in winners], y=[w.top5_error for w in winners], marker_color=deep,
        text=[f"{w.top5_error:g}%" for w in winners], textposition="outside",
        customdata=[[w.model, f"{w.layers} layers" if w.layers else "no deep network"] for w in winners],
        hovertemplate="%{x}: %{customdata[0]}<br>top-5 error %{y}%<br>%{customdata[1]}<extra></extra>"))
    fig.add_hline(y=human_error, line_dash="dash", annotation_text=f"one person: {human_error:g}%")
    fig.update_layout(height=330, margin=dict(t=30, b=30, l=40, r=10), yaxis_title="top-5 error (%)",
                      title="ImageNet (ILSVRC) winners: grey without deep networks, blue with CNNs")
    return fig


def vision_tasks_figure(image: np.ndarray, mask: np.ndarray, boxes: list, label: str, classes: list[str]) -> go.Figure:
    """One scene, three outputs: a class for the image, a box per object, a class per pixel."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=(f"Classification: \"{label}\"", "Detection: a box per object",
                                                        "Segmentation: a class per pixel"))
    palette = np.array([[235, 235, 235], [214, 69, 65], [59, 111, 216]], dtype=np.uint8)
    for col, picture in ((1, image), (2, image), (3, palette[mask])):
        fig.add_trace(go.Image(z=picture), row=1, col=col)
    for name, x0, y0, x1, y1 in boxes:
        fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5, line=dict(color="black", width=2),
                      row=1, col=2)
        fig.add_annotation(x=x0, y=y0, text=name, showarrow=False, yshift=8, xanchor="left", row=1, col=2)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=300, margin=dict(t=40, b=0, l=0, r=0))
    return fig
