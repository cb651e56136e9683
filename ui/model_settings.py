"""The widgets for a model's own settings on the train page, drawn from the model registry's list of what each
model reads."""
from __future__ import annotations

import streamlit as st

from cnn_lab.activations import ACTIVATIONS
from cnn_lab.models import NORMS, ModelSpec
from ui import links


def ints(text: str, fallback: list[int]) -> list[int]:
    """'24, 48, 96' -> [24, 48, 96]; anything else keeps the fallback, with a sentence."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
        if values and all(v > 0 for v in values):
            return values
    except ValueError:
        pass
    st.warning(f"'{text}' is not a list of positive whole numbers; keeping {fallback}.")
    return fallback


def model_settings(spec: ModelSpec, settings: tuple[str, ...], key: str) -> None:
    """Widgets for the ModelSpec fields that this model reads (the model registry names them), editing `spec`;
    a setting the model would ignore is not shown."""
    if not settings:
        st.caption("This model has no settings of its own.")
        return
    a, b, c = st.columns(3)
    if "activation" in settings:
        chosen = links.selectbox(a, "Activation", list(ACTIVATIONS), list(ACTIVATIONS).index(spec.activation),
                                 key=f"{key}_act", name="model.activation")
        if chosen != spec.activation:  # another function: its own parameters, at their defaults
            spec.activation, spec.activation_params = chosen, {}
        for param, (default, low, high) in ACTIVATIONS[chosen].params.items():
            value = float(spec.activation_params.get(param, default))
            spec.activation_params[param] = links.slider(a, f"{chosen}: {param}", low, high, value,
                                                         key=f"{key}_{chosen}_{param}",
                                                         name=f"model.activation_params.{param}")
    if "norm" in settings:
        spec.norm = links.selectbox(b, "Normalisation layers", list(NORMS), list(NORMS).index(spec.norm),
                                    format_func=lambda n: NORMS[n].title, key=f"{key}_norm", name="model.norm")
    if "dropout" in settings:
        spec.dropout = links.slider(b, "Dropout", 0.0, 0.8, spec.dropout, key=f"{key}_drop", name="model.dropout")
    if "dropconnect" in settings:
        spec.dropconnect = links.slider(b, "DropConnect (linear layers' weights)", 0.0, 0.8, spec.dropconnect,
                                        key=f"{key}_dropconnect", name="model.dropconnect",
                                        help="Drops this fraction of the linear layers' weights at each training "
                                        "step (lesson 19); dropout drops activations instead.")
    if "widths" in settings:
        spec.widths = ints(links.text_input(c, "Conv widths", ", ".join(map(str, spec.widths)), key=f"{key}_widths",
                                            name="model.widths"), spec.widths)
    if "linear_stem" in settings:
        spec.linear_stem = links.toggle(c, "Linear whitened stem", spec.linear_stem, key=f"{key}_linear_stem",
                                        name="model.linear_stem",
                                        help="On: the stem's whitening filters alone (12 for colour images), no "
                                        "activation. Off: airbench's stem (each filter and its negative), then GELU.")
    if "hidden" in settings:
        spec.hidden = ints(links.text_input(c, "Hidden sizes", ", ".join(map(str, spec.hidden)), key=f"{key}_hidden",
                                            name="model.hidden"), spec.hidden)
