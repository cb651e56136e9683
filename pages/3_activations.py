import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from cnn_lab import activations, jobs
from cnn_lab.normalise import normalise
from ui import links
from ui.identity import signed_in
from ui.nav import page_header

page_header("pages/3_activations.py")

names = links.multiselect(st, "Activations", list(activations.ACTIVATIONS), ["sigmoid", "tanh", "relu", "leaky_relu"],
                          key="acts")
params: dict[str, dict[str, float]] = {}
with st.expander("Parameters", expanded=False):
    for name in names:
        for param, (default, lo, hi) in activations.ACTIVATIONS[name].params.items():
            params.setdefault(name, {})[param] = links.slider(st, f"{name}: {param}", lo, hi, default,
                                                              key=f"{name}_{param}")
lo, hi = links.slider(st, "x range", -10.0, 10.0, (-6.0, 6.0), key="x")
threshold = links.slider(st, "Saturation threshold on |f'(x)|", 0.001, 0.5, 0.05, format="%.3f", key="threshold")

# ---------------------------------------------------------------- curves and derivatives
x = torch.linspace(lo, hi, 801, dtype=torch.float64)
fig = make_subplots(rows=1, cols=2, subplot_titles=("f(x)", "f'(x) by autograd"))
palette = dict(zip(activations.ACTIVATIONS, px.colors.qualitative.Dark24))  # one colour per activation, everywhere
rows = []
for name in names:
    y, grad = activations.curve(name, x, **params.get(name, {}))
    fig.add_scatter(x=x, y=y, name=name, legendgroup=name, line_color=palette[name], row=1, col=1)
    fig.add_scatter(x=x, y=grad, name=name, legendgroup=name, showlegend=False, line_color=palette[name], row=1, col=2)
    best, where = activations.max_derivative(name, lo, hi, **params.get(name, {}))
    saturated = (grad.abs() < threshold).double().mean().item()
    rows.append({"activation": name, "max |f'|": round(best, 4), "at x": round(where, 3), "best": best,
                 f"share of the range with |f'| < {threshold:g}": f"{saturated:.0%}"})
if names:
    focus = names[0]
    _, grad = activations.curve(focus, x, **params.get(focus, {}))
    flat = (grad.abs() < threshold).numpy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        fig.add_vrect(x0=x[start].item(), x1=x[stop - 1].item(), fillcolor="grey", opacity=0.15, line_width=0,
                      row=1, col=2)
    fig.update_layout(height=380, margin=dict(t=40, b=30, l=30, r=10))
    st.plotly_chart(fig, key="curves")
    st.caption(f"Grey bands: where {focus}'s derivative is below the threshold (saturated or dead).")
    st.dataframe([{k: v for k, v in r.items() if k != "best"} for r in rows], hide_index=True)

# ---------------------------------------------------------------- vanishing gradients
st.subheader("Stacked layers: the best-case gradient")
depth = links.slider(st, "Depth N", 1, 50, 10, key="depth")
if names:
    chain = go.Figure()
    for row in rows:
        chain.add_scatter(x=list(range(1, depth + 1)), y=[row["best"] ** n for n in range(1, depth + 1)],
                          name=row["activation"], line_color=palette[row["activation"]])
    chain.update_yaxes(type="log", title="max |f'|^N")
    chain.update_xaxes(title="layers N")
    chain.update_layout(height=300, margin=dict(t=10, b=30, l=30, r=10))
    st.plotly_chart(chain, key="chain")
    st.markdown(" · ".join(f"{r['activation']}: {r['best']:.3g}^{depth} = **{r['best'] ** depth:.3g}**" for r in rows))

# ---------------------------------------------------------------- pre-activation distribution
st.subheader("Pre-activations drawn from a normal distribution")
a, b, c = st.columns(3)
mean = links.slider(a, "Mean", -5.0, 5.0, 0.0, key="mean")
std = links.slider(b, "Std", 0.1, 10.0, 3.0, key="std")
focus = links.selectbox(c, "Activation", names or ["relu"], key="focus")
pre = torch.randn(50_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * std + mean
stats = activations.unit_stats(focus, pre, threshold, **params.get(focus, {}))
m1, m2 = st.columns(2)
m1.metric("Dead units (gradient exactly 0)", f"{stats.dead:.1%}")
m2.metric(f"Saturated units (0 < |f'| < {threshold:g})", f"{stats.saturated:.1%}")
hist = make_subplots(rows=1, cols=2, subplot_titles=("outputs f(x)", "gradients f'(x)"))
hist.add_histogram(x=stats.outputs.numpy(), nbinsx=80, row=1, col=1)
hist.add_histogram(x=stats.grads.numpy(), nbinsx=80, row=1, col=2)
hist.update_layout(height=280, showlegend=False, margin=dict(t=40, b=30, l=30, r=10))
st.plotly_chart(hist, key="hist")
st.caption("A wide or shifted distribution pushes units into the flat parts: batch normalization keeps "
           "pre-activations near mean 0, std 1, where gradients flow.")

# ---------------------------------------------------------------- softmax and cross-entropy
st.subheader("Softmax and cross-entropy")
count = links.slider(st, "Classes", 3, 6, 4, key="classes")
labels = ["cat", "dog", "cow", "horse", "ship", "frog"][:count]
defaults = [4.0, 1.0, 2.0, -8.0, 0.0, 0.0]
cols = st.columns(count)
logits = [links.slider(cols[i], labels[i], -10.0, 10.0, defaults[i], key=f"logit_{i}") for i in range(count)]
t1, t2 = st.columns(2)
temperature = links.slider(t1, "Temperature", 0.1, 10.0, 1.0, key="temperature")
target = links.selectbox(t2, "True class", list(range(count)), format_func=labels.__getitem__, key="target")
out = activations.softmax_cross_entropy(logits, target, temperature)
bars = make_subplots(rows=1, cols=2, subplot_titles=("softmax probabilities", "∂loss/∂logit = (p − y) / T"))
bars.add_bar(x=labels, y=out["probs"], text=[f"{p:.1%}" for p in out["probs"]], row=1, col=1)
bars.add_bar(x=labels, y=out["grad"], row=1, col=2)
bars.update_layout(height=300, showlegend=False, margin=dict(t=40, b=30, l=30, r=10))
st.plotly_chart(bars, key="softmax")
st.markdown(f"Cross-entropy for **{labels[target]}**: −log p = **{out['loss']:.4f}**")
with st.expander("Two classes: binary cross-entropy with a sigmoid"):
    z = links.slider(st, "Logit z", -10.0, 10.0, 1.0, key="z")
    y = links.radio(st, "Label y", [0, 1], 1, key="y", horizontal=True)
    p = 1 / (1 + np.exp(-z))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([z]), torch.tensor([float(y)])).item()
    st.markdown(f"σ(z) = {p:.4f}; BCE = −[y log σ(z) + (1−y) log(1−σ(z))] = **{bce:.4f}**; ∂BCE/∂z = σ(z) − y = {p - y:.4f}")

links.keep()

# ---------------------------------------------------------------- a trained model's real activations
st.subheader("Activations inside a trained model")
person = signed_in()  # your newest run (in shared mode, none before you sign in)
job = jobs.MANAGER.latest("train", person) if person else None
if job is None or job.result is None:
    st.caption("Train a model on the train page: its per-layer dead and saturated shares on a test batch appear here.")
else:
    result = job.result
    batch = normalise(result.test_images[:256], result.mean, result.std)
    layers = activations.layer_activations(result.model, batch)
    if not layers:
        st.caption("This model has no activation layers to inspect.")
    else:
        st.dataframe([{"layer": name, "units": values.numel(), "zero outputs": f"{(values == 0).float().mean():.1%}",
                       "mean": round(values.mean().item(), 3), "std": round(values.std().item(), 3)}
                      for name, values in layers], hide_index=True)
        chosen = st.selectbox("Histogram of layer", [name for name, _ in layers])
        values = dict(layers)[chosen]
        st.plotly_chart(go.Figure(go.Histogram(x=values[:20000].numpy(), nbinsx=80)).update_layout(height=260),
                        key="model_hist")
