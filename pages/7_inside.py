import hashlib

import numpy as np
import streamlit as st
import torch

from cnn_lab import charts, evaluate, explain, images, inside, jobs, runs
from cnn_lab.data import DatasetError, DatasetUnavailable
from ui.identity import signed_in
from ui.inputs import image_picker, new_click, picture
from ui.nav import page_header

page_header("pages/7_inside.py")
PRETRAINED = "pretrained"
st.session_state.update(st.session_state.pop("inside_open", {}))  # opened from the train or transfer page


@st.cache_resource(max_entries=4, show_spinner="Loading the model")
def subject_of(choice: str) -> inside.Subject:
    return inside.pretrained_subject() if choice == PRETRAINED else inside.run_subject(runs.load_run(choice))


@st.cache_resource(max_entries=16, show_spinner=False)
def inspected(choice: str, image_key: str, _image: torch.Tensor) -> inside.Inspection:
    """Every layer's output for this model and image (by content): a rerun that changes nothing reruns nothing."""
    subject = subject_of(choice)
    return inside.inspect(subject.model, subject.prepare(_image))


@st.cache_resource(max_entries=2, show_spinner="Running the test set through the model (once per model)")
def test_set_of(choice: str) -> tuple[torch.Tensor, torch.Tensor, inside.DatasetPass]:
    images, labels = inside.run_test_set(runs.load_run(choice))
    subject = subject_of(choice)
    return images, labels, inside.dataset_pass(subject.model, images, subject.mean, subject.std)


@st.cache_resource(max_entries=4, show_spinner="Projecting the features")
def projection_of(choice: str, method: str) -> torch.Tensor:
    features = test_set_of(choice)[2].features
    return inside.project(features[:2000] if method == "tsne" else features, method)


@st.cache_resource(max_entries=16, show_spinner="Synthesising an image for this channel")
def synthesised(choice: str, layer: str, channel: int) -> torch.Tensor:
    subject = subject_of(choice)
    module = dict(subject.model.named_modules())[layer]
    return inside.synthesise(subject.model, module, channel, subject.input_shape, subject.mean, subject.std)


@st.cache_data(max_entries=32, show_spinner=False)
def grad_cam(choice: str, image_key: str, layer: str, target: int, _image: torch.Tensor) -> np.ndarray:
    subject = subject_of(choice)
    module = dict(subject.model.named_modules())[layer]
    return explain.grad_cam(subject.model, module, subject.prepare(_image), target)[0].numpy()


# ---------------------------------------------------------------- the model and the image
person = signed_in()  # in shared mode your runs only (none before you sign in); the pretrained model for all
rebuildable = jobs.MANAGER.runs_of(person, usable=True)
titles = {PRETRAINED: "EfficientNet-Lite0, pretrained on ImageNet (works offline)"} | {
    r.run_id: f"Run {r.run_id} · {r.config.get('dataset') or r.config.get('data')} · "
              f"{r.config.get('model', {}).get('name') or r.config.get('backbone')} · test {r.test_acc or 0:.1%}"
    for r in rebuildable}
left, right = st.columns([1, 2])
if st.session_state.get("inside_model") not in titles:  # first visit (or its run is gone): the newest run
    st.session_state["inside_model"] = list(titles)[1 if rebuildable else 0]
choice = left.selectbox("Model", list(titles), format_func=titles.get, key="inside_model",
                        help="The pretrained network, or any run you trained (newest first).")
try:
    subject = subject_of(choice)
except (OSError, RuntimeError, ValueError, KeyError, TypeError) as error:  # weights gone, corrupt, unavailable
    left.error(f"This run cannot be rebuilt from its folder ({error}); here is the pretrained network instead.")
    choice, subject = PRETRAINED, subject_of(PRETRAINED)
channels, height, width = subject.input_shape

with left:
    job = jobs.MANAGER.get(choice)
    result = job.result if job is not None else None  # a run of this session of the app, still in memory
    saved_training_run = choice != PRETRAINED and runs.load_run(choice).kind == "train"
    sources = ["A photo", "Camera"] + (["A test image of this run"] if result or saved_training_run else [])
    source = st.radio("Image from", sources, horizontal=True, key="inside_image_from")
    tests = None
    if source == "A test image of this run":
        try:
            if result is not None:
                tests = result.test_images, result.test_labels, result.test_probs.argmax(1)
            else:
                saved_images, saved_labels, passed = test_set_of(choice)
                tests = saved_images, saved_labels, passed.predicted
        except (DatasetUnavailable, DatasetError) as error:
            st.error(f"This run's test images are not here: {error}")
    if tests is not None:
        test_images, test_labels, predicted = tests
        wrong_only = st.toggle("Only the misclassified ones", key="inside_wrong")
        pool = (predicted != test_labels).nonzero().flatten() if wrong_only else torch.arange(len(predicted))
        if st.session_state.get("inside_index", 0) >= len(pool):
            st.session_state["inside_index"] = 0
        index = int(pool[st.number_input(f"Test image (of {len(pool)})", 0, max(0, len(pool) - 1),
                                         key="inside_index")]) if len(pool) else 0
        image = test_images[index]
        st.caption(f"True class: **{subject.classes[int(test_labels[index])]}** · predicted: "
                   f"**{subject.classes[int(predicted[index])]}**")
    else:
        if source == "Camera":
            shot = st.camera_input("Take a photo")
            try:
                photo = images.load_image(shot.getvalue()).image if shot else images.load_sample("astronaut").image
            except images.ImageError as error:
                st.error(str(error))
                photo = images.load_sample("astronaut").image
        else:
            photo = image_picker("inside_photo").image
        image = images.to_model_input(photo, subject.input_shape)
image_key = hashlib.sha1(image.numpy().tobytes()).hexdigest()
seen = inspected(choice, image_key, image)

with right:
    a, b = st.columns([1, 2])
    a.image(picture(image), caption=f"What the model sees: {channels}x{height}x{width}", width=180)
    top = evaluate.top_k(seen.probs, subject.classes, 5)
    b.plotly_chart(charts.bars([c for c, _ in top], [p for _, p in top], "Top-5: the softmax of the logits"),
                   key="inside_top5")

# ---------------------------------------------------------------- the architecture, layer by layer
st.subheader("The architecture")
names = [layer.name for layer in seen.layers]
labels = [f"{i}. {l.name} ({l.kind}) -> {' x '.join(map(str, l.shape))}" for i, l in enumerate(seen.layers)]
bar = new_click("inside_arch")
if bar:
    st.session_state["inside_layer"] = labels[bar["x"]]
if st.session_state.get("inside_layer") not in labels:  # another model: start at its first convolution
    st.session_state["inside_layer"] = labels[names.index((seen.conv_layers() or seen.layers)[0].name)]
chosen = labels.index(st.session_state["inside_layer"])
st.plotly_chart(charts.architecture_figure(names, [l.kind for l in seen.layers], [l.shape for l in seen.layers],
                                           [l.receptive_field for l in seen.layers], chosen),
                on_select="rerun", selection_mode="points", key="inside_arch")
layer_name = names[labels.index(st.selectbox("Layer (or click a bar)", labels, key="inside_layer"))]
layer = seen.by_name(layer_name)
with st.expander(f"Every layer: {len(seen.layers)} layers, "
                 f"{sum(l.parameters for l in seen.layers):,} parameters; statistics on this image"):
    stats = [inside.layer_stats(l) for l in seen.layers]
    st.dataframe([{"#": i, "layer": l.name, "kind": l.kind, "output": " x ".join(map(str, l.shape)),
                   "parameters": l.parameters,
                   "receptive field": "whole image" if l.receptive_field is None else f"{l.receptive_field} px",
                   "mean": s.mean, "std": s.std, "zero (dead) share": s.zero_share, "saturated share": s.saturated_share}
                  for i, (l, s) in enumerate(zip(seen.layers, stats))], hide_index=True)

convs = seen.conv_layers()
if convs:
    st.markdown("**From the pixels to the last convolution**: each convolution's most active channel")
    strip = [l.output[inside.sorted_channels(l.output)[0]].float().numpy() for l in convs]
    st.plotly_chart(charts.layer_strip_figure(strip, [str(names.index(l.name)) for l in convs]), key="inside_strip")

# ---------------------------------------------------------------- the chosen layer
st.subheader(f"Layer {chosen}: {layer.name} ({layer.kind})")
field = "the whole image" if layer.receptive_field is None else f"{layer.receptive_field}x{layer.receptive_field} pixels"
st.caption(f"Output {' x '.join(map(str, layer.shape))} · {layer.parameters:,} parameters · each value sees "
           f"{field} of the input · neighbouring values are {layer.jump} input pixels apart")
if layer.output.ndim == 3:
    order = inside.sorted_channels(layer.output)
    means = layer.output.flatten(1).mean(1)
    st.plotly_chart(charts.feature_maps_figure(layer.output[order[:16]].float().numpy(),
                                               [f"ch {c} · mean {means[c]:.2f}" for c in order[:16]], columns=8,
                                               height=150), key="inside_maps")
    rows, cols = layer.shape[1], layer.shape[2]
    channel_bar, pixel = new_click("inside_bars"), new_click("inside_pixels")
    if channel_bar:
        st.session_state["inside_channel"] = int(channel_bar["x"].removeprefix("ch "))
    if pixel:
        st.session_state["inside_row"], st.session_state["inside_col"] = int(pixel["y"]), int(pixel["x"])
    if st.session_state.get("inside_channel") not in order:
        st.session_state["inside_channel"] = order[0]
    for key, limit in (("inside_row", rows), ("inside_col", cols)):
        if not 0 <= st.session_state.get(key, 0) < limit:
            st.session_state[key] = limit // 2
    st.plotly_chart(charts.channel_bars_figure(means.numpy(), order, st.session_state["inside_channel"]),
                    on_select="rerun", selection_mode="points", key="inside_bars")
    a, b, c = st.columns(3)
    channel = a.selectbox("Channel (most active first; or click its bar)", order, key="inside_channel")
    row = b.number_input("Row (or click a pixel)", 0, rows - 1, key="inside_row")
    col = c.number_input("Column", 0, cols - 1, key="inside_col")
    left, right = st.columns([2, 3])
    with left:
        st.plotly_chart(charts.pixel_map_figure(layer.output[channel].float().numpy(), (row, col),
                                                f"Channel {channel}: click a pixel"),
                        on_select="rerun", selection_mode="points", key="inside_pixels")
    hooked = float(layer.output[channel, row, col])
    with right:
        if isinstance(layer.module, torch.nn.Conv2d):
            sums = inside.conv_arithmetic(layer, channel, row, col)
            st.markdown(f"**The arithmetic at channel {channel}, row {row}, column {col}**: the kernel of channel "
                        f"{channel} ({' x '.join(map(str, sums.weights.shape))}) times the input patch under it, "
                        f"summed, plus the bias: **{float((sums.patch * sums.weights).sum()):.4f} + {sums.bias:.4f} = "
                        f"{sums.value:.4f}**; the layer gave **{hooked:.4f}**.")
            k = min(6, sums.weights.shape[0])
            by_input = (sums.patch * sums.weights).flatten(1).sum(1)
            strongest = by_input.abs().argsort(descending=True)[:k].tolist()
            st.plotly_chart(charts.feature_maps_figure(
                torch.cat([sums.weights[strongest], sums.patch[strongest]]).numpy(),
                [f"weights, in {i}" for i in strongest] + [f"patch, in {i}: {by_input[i]:.3f}" for i in strongest],
                columns=k, height=120), key="inside_kernel")
            st.caption(f"Top row: the weights for the {k} input channels that add the most (of "
                       f"{sums.weights.shape[0]}); bottom row: the input values under them. Each input channel's "
                       f"products sum to the number in its title.")
        else:
            st.markdown(f"Value at channel {channel}, row {row}, column {col}: **{hooked:.4f}**.")
else:
    values = layer.output.float()
    top = values.abs().argsort(descending=True)[:20].tolist()
    labels = [subject.classes[i] if len(values) == len(subject.classes) else f"unit {i}" for i in top]
    st.plotly_chart(charts.bars(labels, [float(values[i]) for i in top], "The 20 largest values (by size)",
                                percent=False), key="inside_vector")

# ---------------------------------------------------------------- an image made to excite the chosen channel
if layer.output.ndim == 3 and st.toggle(f"Synthesise an image that excites channel {channel} (activation "
                                        "maximisation; seconds for a small net, longer at 224 pixels on a CPU)",
                                        key="inside_synthesise"):
    made = synthesised(choice, layer.name, channel)
    a, b = st.columns([1, 3])
    a.image(picture(made), caption=f"Made for channel {channel} of {layer.name}", width=180)
    b.caption("200 steps of gradient ascent on the pixels, each on a copy shifted by up to a pixel, so that the "
              "pattern does not hang on one exact pixel grid (OpenAI Microscope's second view, for your model).")

# ---------------------------------------------------------------- the whole test set: what a channel looks for
test_set = None
if choice != PRETRAINED and runs.load_run(choice).kind == "train":
    st.subheader("Across the test set")
    try:
        test_set = test_set_of(choice)
    except (DatasetUnavailable, DatasetError) as error:
        st.info(f"The run's test images are not here, so this part is off: {error}")
if test_set is not None:
    test_images, test_labels, passed = test_set
    if layer.name in passed.peaks and layer.output.ndim == 3:
        st.markdown(f"**What channel {channel} of {layer.name} looks for**: the test images that excite it most, "
                    f"each with the {layer.receptive_field}x{layer.receptive_field}-pixel patch that did it")
        top = inside.top_images(passed, layer.name, channel)
        boxes = [inside.patch_box(r, c, layer.receptive_field or 1, layer.jump, tuple(test_images.shape[-2:]))
                 for _, _, r, c in top]
        pictures = np.stack([np.repeat(picture(test_images[i])[..., None], 3, -1) if channels == 1
                             else picture(test_images[i]) for i, _, _, _ in top])
        st.plotly_chart(charts.exciting_images_figure(pictures, boxes, [f"{v:.2f}" for _, v, _, _ in top]),
                        key="inside_exciting")
    with st.expander("Per-layer statistics on a batch of 256 test images"):
        st.dataframe([{"layer": name, "mean": s.mean, "std": s.std, "zero (dead) share": s.zero_share,
                       "saturated share": s.saturated_share} for name, s in passed.batch_stats.items()],
                     hide_index=True)
    if len(passed.features):
        st.markdown("**The learned space**: each test image's penultimate features (what the last layer "
                    "sees), projected to 2-D; hollow markers are the mistakes. Click one to look at it above.")
        method = st.radio("Projection", ["pca", "tsne"], horizontal=True, key="inside_projection",
                          format_func={"pca": "PCA (instant)", "tsne": "t-SNE (2,000 images, some seconds)"}.get)
        shown = torch.arange(len(passed.features))[: 2000 if method == "tsne" else None]
        points = projection_of(choice, method)
        truths = [subject.classes[i] for i in test_labels[shown].tolist()]
        guesses = [subject.classes[i] for i in passed.predicted[shown].tolist()]
        st.plotly_chart(charts.embedding_figure(points.numpy(), truths, guesses, subject.classes),
                        on_select="rerun", selection_mode="points", key="inside_space")
        dot = new_click("inside_space")
        if dot:
            st.session_state["inside_open"] = {"inside_image_from": "A test image of this run", "inside_wrong": False,
                                               "inside_index": int(dot["customdata"][0])}
            st.rerun()

# ---------------------------------------------------------------- why this class: Grad-CAM at this layer
if isinstance(layer.module, torch.nn.Conv2d):
    st.subheader("Why this class: Grad-CAM at this layer")
    ranked = seen.probs.argsort(descending=True).tolist()
    target = st.selectbox("Class (most likely first)", ranked,
                          format_func=lambda i: f"{subject.classes[i]} ({seen.probs[i]:.1%})",
                          key=f"inside_target_{image_key}")  # a new image starts on its predicted class
    heat = grad_cam(choice, image_key, layer.name, target, image)
    st.plotly_chart(charts.overlay_figure(picture(image), heat, f"Where {layer.name} finds {subject.classes[target]}"),
                    key="inside_cam")
