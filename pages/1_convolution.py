import json

import numpy as np
import pandas as pd
import streamlit as st
import torch

from cnn_lab import charts, conv, images, jobs, kernels, runs, subjects
from ui import links
from ui.identity import signed_in
from ui.inputs import image_picker
from ui.nav import page_header

page_header(__file__)


@st.cache_resource(max_entries=8, show_spinner=False)
def learned_filters(run_id: str) -> torch.Tensor:
    """A run's first-layer kernels, read once per run (an imported ONNX model is converted to get them), not at
    every move of a slider."""
    return subjects.first_filters(runs.load_run(run_id))


left, right = st.columns([1, 2])
with left:
    loaded = image_picker("conv")
    st.image(loaded.image, caption=f"{loaded.image.width}x{loaded.image.height}", width=260,
             alt=f"The photo the kernels slide over, {loaded.image.width}x{loaded.image.height} pixels")
image = images.to_tensor(loaded.image)

# ---------------------------------------------------------------- the kernel
with right:
    source = links.radio(st, "Kernel", ["Classic", "Custom grid", "Learned (from a trained run)"], key="kernel_source",
                         horizontal=True)
    learned = None
    if source == "Classic":
        names = links.multiselect(st, "Kernels (several give several output filters)", list(kernels.KERNELS),
                                  ["sobel x"], max_selections=6, key="cv_kernels")
        names = names or ["identity"]
        sizes = sorted({size for n in names for size in kernels.KERNELS[n].sizes})
        size = (links.radio(st, "Size (for the kernels that come in several sizes)", sizes, key="cv_size",
                            horizontal=True) if len(sizes) > 1 else sizes[0])
        sigma = links.slider(st, "Gaussian sigma", 0.3, 3.0, 1.0, key="cv_sigma") if "gaussian blur" in names else 1.0
        bank = kernels.stack([
            kernels.make_kernel(n, size if size in kernels.KERNELS[n].sizes else None,
                                **({"sigma": sigma} if n == "gaussian blur" else {}))
            for n in names
        ])
        titles = names
    elif source == "Custom grid":
        size = links.radio(st, "Grid", [3, 5, 7], key="cv_grid", horizontal=True)
        start = links.selectbox(st, "Start from", list(kernels.KERNELS), list(kernels.KERNELS).index("sharpen"),
                                key="cv_start")
        base = kernels.make_kernel(start, size if size in kernels.KERNELS[start].sizes else None)
        base = kernels.stack([base, torch.zeros(size, size)])[0] if base.shape[0] < size else base[:size, :size]
        default_cells = json.dumps(base.numpy().round(4).tolist(), separators=(",", ":"))
        cells = links.from_link("cv_cells", lambda text: kernels.grid_from_json(text, size) is not None)
        if cells:  # a link's edited grid: the editor starts from it
            base = kernels.grid_from_json(cells, size)
        grid = st.data_editor(pd.DataFrame(base.numpy().round(4)), key=f"grid_{size}_{start}", hide_index=True)
        bank = torch.tensor(grid.to_numpy(dtype=np.float32)).nan_to_num()[None]
        links.remember("cv_cells", json.dumps(bank[0].numpy().round(4).tolist(), separators=(",", ":")), default_cells)
        titles = ["custom"]
    else:
        person = signed_in()  # in shared mode your runs only, and none before you sign in
        finished = jobs.MANAGER.runs_of(person, usable=True)
        if not finished:
            st.info("No trained run yet: train one on the train or transfer page, then its first-layer filters appear here.")
            bank, titles = kernels.make_kernel("identity")[None], ["identity"]
        else:
            run = st.selectbox("Run", finished, format_func=lambda r: f"{r.run_id} · {r.label}")
            try:
                first = learned_filters(run.run_id)
            except (OSError, ValueError, RuntimeError) as error:  # weights gone or corrupt, no convolution
                st.error(f"This run's filters cannot be read ({error}): choose another run.")
                st.stop()
            count = st.slider("Filters", 1, min(16, first.shape[0]), min(8, first.shape[0]), key="cv_filters")
            learned = first[:count]
            if learned.shape[1] == 1:
                image = image.mean(0, keepdim=True)  # a model trained on grey images
            elif learned.shape[1] != image.shape[0]:
                st.error(f"These filters expect {learned.shape[1]} input channels; this image has {image.shape[0]}.")
                st.stop()
            if run.mean is None:
                st.caption("This run did not save the normalisation it was trained with: the filters see pixels in [0, 1].")
            else:  # the filters see the photo as they saw their training images
                image = conv.standardise(image, run.mean, run.std)
                st.caption("The photo is normalised as in training: per channel, minus "
                           f"{', '.join(f'{m:.3f}' for m in run.mean)}, divided by {', '.join(f'{v:.3f}' for v in run.std)}.")
            bank, titles = learned, [f"filter {i}" for i in range(count)]
    if learned is None:
        st.plotly_chart(charts.feature_maps_figure(bank.numpy(), titles, columns=6, height=220), key="kernel_fig",
                        alt="The kernel's weights as a small heat map: " + ", ".join(titles))

# ---------------------------------------------------------------- how it is applied
a, b, c, d = st.columns(4)
channel_mode = links.radio(a, "Channels", conv.CHANNEL_MODES, disabled=learned is not None, key="cv_channels",
                           help="depthwise: the same kernel on each RGB channel; full: one 3-channel kernel summed "
                            "into one map, as nn.Conv2d does")
normalise = links.toggle(a, "Normalise the kernel to sum 1", disabled=learned is not None, key="cv_normalise")
stride = links.slider(b, "Stride", 1, 8, 1, key="cv_stride")
dilation = links.slider(b, "Dilation", 1, 8, 1, key="cv_dilation")
padding = links.slider(c, "Padding", 0, 16, 1, key="cv_padding")
padding_mode = links.selectbox(c, "Padding mode", list(conv.PADDING_MODES), key="cv_padding_mode")
pool_kind = links.radio(d, "Pooling", ["max", "avg"], key="cv_pool", horizontal=True)
pool_size = links.slider(d, "Pool size (= stride)", 1, 8, 2, key="cv_pool_size")
stages_count = links.slider(d, "Stages (conv-ReLU-pool, stacked)", 1, 3, 1, disabled=learned is not None,
                            key="cv_stages")
settings = conv.ConvSettings(stride, padding, padding_mode, dilation, channel_mode, normalise)
if normalise and torch.allclose(bank.sum(dim=(-2, -1)), torch.ones(len(bank))):
    a.caption("These kernels already sum to 1: normalising leaves them as they are.")

try:
    stages = conv.conv_relu_pool(image, bank, settings, pool_kind, pool_size, stages_count)
except conv.ConvError as error:
    st.error(str(error))
    links.keep()  # the link still holds these settings, to share the case
    st.stop()

maps = stages[0].conv
kernel_titles = titles  # one per kernel (the feature maps' titles below may name a channel too)
if channel_mode == "depthwise" and learned is None:
    channel_names = ["R", "G", "B"][: image.shape[0]]
    titles = [f"{t} · {ch}" for t in titles for ch in channel_names]
st.markdown(f"Input **{tuple(image.shape)}** → convolution **{tuple(maps.shape)}** → ReLU → {pool_kind} pool "
            f"**{tuple(stages[0].pooled.shape)}**"
            + "".join(f" → stage {i + 2} **{tuple(s.pooled.shape)}**" for i, s in enumerate(stages[1:])))

# Only the open tab's content runs (on_change="rerun"): a slider move redraws one tab's figures, not four.
tab_conv, tab_stages, tab_magnifier, tab_params = st.tabs(["Feature maps", "Conv → ReLU → pool", "Magnifier",
                                                            "Why convolutions"], key="cv_tab", on_change="rerun")
with tab_conv:
    if tab_conv.open:
        shown, shown_titles = maps[:12], titles[:12]
        if channel_mode == "depthwise" and learned is None and len(bank) == 1:
            shown = torch.cat([maps, maps.sum(0, keepdim=True)])
            shown_titles = titles + ["sum of the three (= full mode)"]
        st.plotly_chart(charts.feature_maps_figure(shown.numpy(), shown_titles,
                                                   columns=4 if len(shown) == 4 else 3), key="maps_fig",
                        alt=f"{len(shown)} feature maps, bright where the kernel responds: " + ", ".join(shown_titles))
with tab_stages:
    if tab_stages.open:
        for i, stage in enumerate(stages):
            st.markdown(f"**Stage {i + 1}** (first map)")
            st.plotly_chart(charts.feature_maps_figure(
                torch.stack([stage.conv[0], stage.relu[0], torch.nn.functional.interpolate(
                    stage.pooled[None, :1], size=stage.relu.shape[-2:], mode="nearest")[0, 0]]).numpy(),
                ["convolution", "ReLU", f"{pool_kind} pool {tuple(stage.pooled.shape[-2:])} (drawn at conv size)"]),
                key=f"stage_{i}", alt=f"Stage {i + 1}'s first map after the convolution, after ReLU (negatives "
                                     f"set to zero) and after {pool_kind} pooling")
with tab_magnifier:
    if tab_magnifier.open:
        if learned is not None:
            st.caption("The magnifier works with the classic and custom kernels.")
        else:
            m0, m1, m2, m3 = st.columns(4)
            which = m0.selectbox("Kernel", range(len(bank)), format_func=kernel_titles.__getitem__,
                                 key="cv_magnified", disabled=len(bank) == 1,
                                 help="With several kernels chosen: the one to look at.")
            row = links.slider(m1, "Output row", 0, maps.shape[1] - 1, maps.shape[1] // 2, key="cv_row")
            col = links.slider(m2, "Output column", 0, maps.shape[2] - 1, maps.shape[2] // 2, key="cv_col")
            channel = m3.selectbox("Channel", range(image.shape[0]),
                                   format_func=lambda i: "RGB"[i] if image.shape[0] == 3 else "grey",
                                   disabled=channel_mode == "full", key="cv_channel")
            magnified = conv.magnify(image, bank[which], settings, row, col, channel)
            p1, p2, p3 = st.columns(3)
            p1.markdown("**Input patch** (channel 1 shown)")
            p1.dataframe(pd.DataFrame(magnified.patch[0].numpy()).round(3), hide_index=True)
            p2.markdown("**Kernel**")
            p2.dataframe(pd.DataFrame(magnified.kernel[0].numpy()).round(3), hide_index=True)
            p3.markdown("**Products**")
            p3.dataframe(pd.DataFrame(magnified.products[0].numpy()).round(3), hide_index=True)
            terms = " + ".join(f"{x:.2f}·{w:.2f}" for x, w in zip(magnified.patch.flatten()[:9].tolist(),
                                                                  magnified.kernel.flatten()[:9].tolist()))
            more = " + …" if magnified.patch.numel() > 9 else ""
            st.markdown(f"output[{row}, {col}] = {terms}{more} = **{magnified.value:.4f}**")
with tab_params:
    if tab_params.open:
        st.markdown("For a C x H x W input and K outputs, a linear layer needs C·H·W·K + K parameters; a k x k "
                    "convolution needs C·k·k·K + K, whatever the image size.")
        q1, q2, q3, q4, q5 = st.columns(5)
        C = links.number_input(q1, "C", 1, 512, 3, key="cv_C")
        H = links.number_input(q2, "H", 1, 4096, 256, key="cv_H")
        W = links.number_input(q3, "W", 1, 4096, 256, key="cv_W")
        K = links.number_input(q4, "K outputs", 1, 4096, 100, key="cv_K")
        k = links.number_input(q5, "k", 1, 15, 3, key="cv_k")
        dense, convolution = conv.linear_parameters(C, H, W, K), conv.conv_parameters(C, k, K)
        st.metric("Linear layer", f"{dense:,}")
        st.metric("Convolution", f"{convolution:,}", delta=f"{dense / convolution:,.0f}x fewer", delta_color="off")

links.keep()
