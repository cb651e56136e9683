import pandas as pd
import streamlit as st
import torch

from cnn_lab import charts, geometry
from cnn_lab.geometry import GeometryError, Layer
from ui import links
from ui.nav import page_header

page_header(__file__)

KINDS = {"Conv2d": "conv", "MaxPool2d": "maxpool", "AvgPool2d": "avgpool", "ConvTranspose2d": "convT"}
kind = KINDS[links.radio(st, "Layer", list(KINDS), key="layer", horizontal=True)]
a, b, c, d = st.columns(4)
height = links.slider(a, "Input height", 1, 64, 7, key="h")
width = links.slider(a, "Input width", 1, 64, 7, key="w")
kernel = links.slider(b, "Kernel size", 1, 11, 3, key="k")
stride = links.slider(b, "Stride", 1, 8, 1, key="s")
padding_kind = links.radio(c, "Padding", ["integer", "same", "valid"] if kind == "conv" else ["integer"], key="pad",
                           horizontal=True)
padding: int | str = (links.slider(c, "Padding (pixels per side)", 0, 10, 1, key="p") if padding_kind == "integer"
                      else padding_kind)
dilation = links.slider(d, "Dilation", 1, 5, 1, key="d", disabled=kind == "avgpool")
padding_mode = links.selectbox(d, "Padding mode", ["zeros", "reflect", "replicate", "circular"], key="mode",
                               disabled=kind != "conv")
ceil_mode = links.toggle(d, "ceil_mode", key="ceil", disabled=kind not in ("maxpool", "avgpool"))
output_padding = links.slider(d, "output_padding", 0, 4, 0, key="outpad", disabled=kind != "convT")

layer = Layer(kind, kernel, stride, padding, 1 if kind == "avgpool" else dilation, 8, ceil_mode, output_padding,
              padding_mode if kind == "conv" else "zeros")
size = (height, width)
try:
    out = geometry.output_size(layer, size)
    st.session_state.last_valid = (layer, size)
except GeometryError as error:
    st.error(str(error))
    if "last_valid" not in st.session_state:
        st.stop()
    layer, size = st.session_state.last_valid
    out = geometry.output_size(layer, size)
    st.caption("Showing the last valid settings.")

# ---------------------------------------------------------------- the formula, and torch's answer
p = geometry.padding_of(layer) if layer.padding != "same" else layer.padding
if layer.kind == "convT":
    st.latex(rf"\text{{out}} = (\text{{in}}-1)s - 2p + d(k-1) + \text{{output\_padding}} + 1 = ({size[0]}-1)\cdot{layer.stride}"
             rf" - 2\cdot{p} + {layer.dilation}\cdot({layer.kernel}-1) + {layer.output_padding} + 1 = {out[0]}")
elif layer.padding == "same":
    st.latex(rf"\text{{padding='same'}}: \text{{out}} = \text{{in}} = {size[0]}")
else:
    rounding = r"\lceil" if layer.ceil_mode and layer.kind != "conv" else r"\lfloor"
    closing = r"\rceil" if layer.ceil_mode and layer.kind != "conv" else r"\rfloor"
    st.latex(rf"\text{{out}} = {rounding}\frac{{\text{{in}} + 2p - d(k-1) - 1}}{{s}}{closing} + 1 = {rounding}\frac{{{size[0]}"
             rf" + 2\cdot{p} - {layer.dilation}\cdot({layer.kernel}-1) - 1}}{{{layer.stride}}}{closing} + 1 = {out[0]}")
torch_out = tuple(geometry.torch_layer(layer, 3)(torch.zeros(1, 3, *size)).shape)
# Inline code, not st.code: a code box costs the browser about 0.3 s on every visit (its highlighter loads).
st.markdown(f"In PyTorch, `{geometry.code_line(layer, 3)}` on a `(1, 3, {size[0]}, {size[1]})` tensor gives "
            f"`{torch_out}`.")
st.markdown(f"Output **{out[0]}x{out[1]}**; torch says **{torch_out[2]}x{torch_out[3]}**"
            + (" ✓" if torch_out[2:] == out else " ✗ (please report this)"))

# ---------------------------------------------------------------- the sliding window
if layer.kind == "convT":
    st.info("A transposed convolution spreads each input cell over a k x k patch of the output, spaced by the "
            "stride: the animation is for the layers that slide a window over their input.")
else:
    pad = 0 if layer.padding == "valid" else geometry.padding_of(layer)
    pick = links.toggle(st, "Pick an output cell (instead of the animation)", key="pick")
    selected = None
    if pick:
        r1, r2 = st.columns(2)
        selected = (links.slider(r1, "Output row", 0, out[0] - 1, 0, key="row"),
                    links.slider(r2, "Output column", 0, out[1] - 1, 0, key="col"))
    speed = links.slider(st, "Animation speed (steps per second)", 1, 20, 4, key="speed", disabled=pick)
    st.plotly_chart(charts.sliding_window_figure(size, pad, out, lambda r, c: geometry.window(layer, r, c),
                                                 1000 // speed, selected=selected), key="window_fig",
                    alt=f"A {size[0]}x{size[1]} input with {pad} cells of padding, and the kernel's window "
                        f"sliding over it to fill a {out[0]}x{out[1]} output, cell by cell")
    counts = geometry.coverage(layer, size)
    never = int((counts == 0).sum())
    st.markdown(f"**How many windows read each input pixel.** Corner pixels are read {int(counts[0, 0])} time(s), "
                f"the most-read {int(counts.max())} times; {never} of {counts.numel()} pixels are never read.")
    st.plotly_chart(charts.coverage_figure(counts.numpy()), key="coverage_fig",
                    alt=f"A heat map of how many windows read each input pixel, from 0 to {int(counts.max())}")

# ---------------------------------------------------------------- layer-stack calculator
st.header("Layer-stack calculator")
name = links.selectbox(st, "Start from", list(geometry.STACKS), key="stack")
stack = geometry.STACKS[name]
s1, s2, s3 = st.columns(3)
c_in = s1.number_input("Input channels", 1, 512, stack.input_shape[0], key=f"c_{name}")
h_in = s2.number_input("Input height", 1, 1024, stack.input_shape[1], key=f"h_{name}")
w_in = s3.number_input("Input width", 1, 1024, stack.input_shape[2], key=f"w_{name}")
rows = pd.DataFrame([{"kind": l.kind, "kernel": l.kernel, "stride": l.stride, "padding": str(l.padding),
                      "dilation": l.dilation, "out": l.out_channels} for l in stack.layers])
edited = st.data_editor(rows, num_rows="dynamic", key=f"stack_{name}", hide_index=True, column_config={
    "kind": st.column_config.SelectboxColumn(
        options=["conv", "maxpool", "avgpool", "convT", "inception", "flatten", "linear"], required=True)})
try:
    layers = [Layer(r.kind, int(r.kernel), int(r.stride), r.padding if r.padding in ("same", "valid") else int(r.padding),
                    int(r.dilation), int(r.out)) for r in edited.itertuples() if isinstance(r.kind, str)]
    table = geometry.stack_table(geometry.Stack((int(c_in), int(h_in), int(w_in)), layers))
except (GeometryError, ValueError, TypeError) as error:
    st.error(f"Row settings that cannot work: {error}")
else:
    st.dataframe(pd.DataFrame([{"layer": r.layer, "output": str(r.output), "parameters": r.parameters,
                                "receptive field": r.receptive_field, "cumulative stride": r.jump} for r in table]),
                 hide_index=True)
    st.metric("Total parameters", f"{sum(r.parameters for r in table):,}")

links.keep()
