import json

import numpy as np
import streamlit as st
import torch

from cnn_lab import activation_charts, activations, charts, jobs
from cnn_lab.normalise import normalise
from ui import links
from ui.identity import signed_in
from ui.nav import page_header

page_header(__file__)

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

# Each figure is built once per what it shows (st.cache_resource): a slider below the curves does not rebuild them.


@st.cache_resource(max_entries=32, show_spinner=False)
def curves_of(names: tuple[str, ...], params_json: str, lo: float, hi: float, threshold: float):
    """The curves figure and one row per activation: its largest derivative, and how much of the range is flat."""
    params = json.loads(params_json)
    x = torch.linspace(lo, hi, 801, dtype=torch.float64)
    curves = {name: activations.curve(name, x, **params.get(name, {})) for name in names}
    rows = []
    for name, (_, grad) in curves.items():
        best, where = activations.max_derivative(name, lo, hi, **params.get(name, {}))
        saturated = (grad.abs() < threshold).double().mean().item()
        rows.append({"activation": name, "max |f'|": round(best, 4), "at x": round(where, 3), "best": best,
                     f"share of the range with |f'| < {threshold:g}": f"{saturated:.0%}"})
    figure = activation_charts.curves_figure(x, curves, flat=(names[0], threshold)) if names else None
    return figure, rows


@st.cache_resource(max_entries=32, show_spinner=False)
def depth_chart(best: tuple[tuple[str, float], ...], depth: int):
    return activation_charts.depth_figure(dict(best), depth)


@st.cache_resource(max_entries=32, show_spinner=False)
def distribution_of(focus: str, params_json: str, mean: float, std: float, threshold: float):
    pre = torch.randn(50_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * std + mean
    stats = activations.unit_stats(focus, pre, threshold, **json.loads(params_json).get(focus, {}))
    figure = activation_charts.histograms_figure(stats.outputs.numpy(), stats.grads.numpy(),
                                                 ("outputs f(x)", "gradients f'(x)"))
    return stats, figure


# ---------------------------------------------------------------- curves and derivatives
params_json = json.dumps(params, sort_keys=True)
curves_chart, rows = curves_of(tuple(names), params_json, lo, hi, threshold)
if names:
    focus = names[0]
    st.plotly_chart(curves_chart, key="curves", alt=f"Each chosen activation ({', '.join(names)}) and its derivative "
                    "as curves over the input, with grey bands where the derivative is nearly zero")
    st.caption(f"Grey bands: where {focus}'s derivative is below the threshold (saturated or dead).")
    st.dataframe([{k: v for k, v in r.items() if k != "best"} for r in rows], hide_index=True)

# ---------------------------------------------------------------- vanishing gradients
st.header("Stacked layers: the best-case gradient")
depth = links.slider(st, "Depth N", 1, 50, 10, key="depth")
if names:
    st.plotly_chart(depth_chart(tuple((r["activation"], r["best"]) for r in rows), depth), key="chain",
                    alt=f"The best-case gradient after 1 to {depth} stacked layers, one line per activation, on a "
                        "log scale")
    st.markdown(" · ".join(f"{r['activation']}: {r['best']:.3g}^{depth} = **{r['best'] ** depth:.3g}**" for r in rows))

# ---------------------------------------------------------------- pre-activation distribution
st.header("Pre-activations drawn from a normal distribution")
a, b, c = st.columns(3)
mean = links.slider(a, "Mean", -5.0, 5.0, 0.0, key="mean")
std = links.slider(b, "Std", 0.1, 10.0, 3.0, key="std")
focus = links.selectbox(c, "Activation", names or ["relu"], key="focus")
stats, histograms = distribution_of(focus, params_json, mean, std, threshold)
m1, m2 = st.columns(2)
m1.metric("Dead units (gradient exactly 0)", f"{stats.dead:.1%}")
m2.metric(f"Saturated units (0 < |f'| < {threshold:g})", f"{stats.saturated:.1%}")
st.plotly_chart(histograms, key="hist", alt=f"Histograms of the pre-activations and of the activations' "
                f"outputs: {stats.dead:.1%} of the units are dead and {stats.saturated:.1%} saturated")
st.caption("A wide or shifted distribution pushes units into the flat parts: batch normalization keeps "
           "pre-activations near mean 0, std 1, where gradients flow.")

# ---------------------------------------------------------------- softmax and cross-entropy
st.header("Softmax and cross-entropy")
count = links.slider(st, "Classes", 3, 6, 4, key="classes")
labels = ["cat", "dog", "cow", "horse", "ship", "frog"][:count]
defaults = [4.0, 1.0, 2.0, -8.0, 0.0, 0.0]
cols = st.columns(count)
logits = [links.slider(cols[i], labels[i], -10.0, 10.0, defaults[i], key=f"logit_{i}") for i in range(count)]
t1, t2 = st.columns(2)
temperature = links.slider(t1, "Temperature", 0.1, 10.0, 1.0, key="temperature")
target = links.selectbox(t2, "True class", list(range(count)), format_func=labels.__getitem__, key="target")
out = activations.softmax_cross_entropy(logits, target, temperature)
st.plotly_chart(activation_charts.softmax_figure(labels, out["probs"], out["grad"]), key="softmax",
                alt=charts.ranking_alt("The softmax probability of each class",
                                       list(zip(labels, out["probs"]))))
st.markdown(f"Cross-entropy for **{labels[target]}**: −log p = **{out['loss']:.4f}**")
with st.expander("Two classes: binary cross-entropy with a sigmoid"):
    z = links.slider(st, "Logit z", -10.0, 10.0, 1.0, key="z")
    y = links.radio(st, "Label y", [0, 1], 1, key="y", horizontal=True)
    p = 1 / (1 + np.exp(-z))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([z]), torch.tensor([float(y)])).item()
    st.markdown(f"σ(z) = {p:.4f}; BCE = −[y log σ(z) + (1−y) log(1−σ(z))] = **{bce:.4f}**; ∂BCE/∂z = σ(z) − y = {p - y:.4f}")

links.keep()

# ---------------------------------------------------------------- a trained model's real activations
st.header("Activations inside a trained model")
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
        st.plotly_chart(activation_charts.histogram_figure(values[:20000].numpy()), key="model_hist",
                        alt=f"A histogram of the activation values of layer {chosen}")
