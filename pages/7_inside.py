"""Inside the network: every layer of a model answering one image.

A move reruns only what it changes: the model and the image rerun the page; the layer reruns the layer's part
(a fragment); the channel, pixel, Grad-CAM class and the projection rerun their own parts (fragments within it).
Every layer's output is computed once per model and image (`inspected`), and each figure once per what it shows."""
import hashlib

import numpy as np
import streamlit as st
import torch

from cnn_lab import architectures, charts, evaluate, explain, inside, jobs, runs, subjects
from cnn_lab import inside_charts as figures
from cnn_lab.data import DatasetError, DatasetUnavailable
from cnn_lab.identity import Person
from cnn_lab.subjects import ARCHITECTURE, PRETRAINED, Subject
from ui.identity import signed_in
from ui.download_panel import download_panel
from ui.inputs import cached_sample, image_picker, jpeg, new_click, photo_from, picture
from ui.nav import InsideOpening, ask_inside, inside_opening, page_header
from ui.progress import once_with_progress

page_header(__file__)
TEST_IMAGE = "A test image of this run"


def open_as_asked(opening: InsideOpening | None) -> None:
    """Set this page's widgets to what another page, or a click on the learned space, asked for (ui.nav)."""
    if opening is None:
        return
    st.session_state["inside_model"] = opening.run_id
    if opening.test_image is not None:
        st.session_state.update(inside_image_from=TEST_IMAGE, inside_image_for=opening.run_id, inside_wrong=False,
                                inside_index=opening.test_image)


open_as_asked(inside_opening())


def subject_of(choice: str) -> Subject:
    """The model chosen, from the server's one cache of models (cnn_lab.subjects); a spinner if it must be built.
    The page's cached functions below ask subjects.subject_of itself: an element inside them would be replayed."""
    with st.spinner("Loading the model"):  # shown only after half a second: a cached model never shows it
        return subjects.subject_of(choice)


@st.cache_resource(max_entries=16, show_spinner=False)
def inspected(choice: str, image_key: str, _image: torch.Tensor) -> inside.Inspection:
    """Every layer's output for this model and image (by content): a rerun that changes nothing reruns nothing."""
    subject = subjects.subject_of(choice)
    return inside.inspect(subject.model, subject.prepare(_image))


@st.cache_data(max_entries=16, show_spinner=False)
def layer_table(choice: str, image_key: str, _seen: inside.Inspection) -> list[dict]:
    stats = [inside.layer_stats(l) for l in _seen.layers]
    return [{"#": i, "layer": l.name, "kind": l.kind, "output": " x ".join(map(str, l.shape)),
             "parameters": l.parameters,
             "receptive field": "whole image" if l.receptive_field is None else f"{l.receptive_field} px",
             "mean": s.mean, "std": s.std, "zero (dead) share": s.zero_share, "saturated share": s.saturated_share}
            for i, (l, s) in enumerate(zip(_seen.layers, stats))]


@st.cache_data(max_entries=16, show_spinner=False)
def strip_picture(choice: str, image_key: str, _seen: inside.Inspection) -> bytes:
    convs = _seen.conv_layers()
    names = [l.name for l in _seen.layers]
    sheet = figures.contact_sheet(  # each layer's most active map, on its own scale
        [figures.colourise(l.output[inside.sorted_channels(l.output)[0]].float().numpy()) for l in convs],
        [str(names.index(l.name)) for l in convs], columns=10, side=56)
    return jpeg(torch.tensor(sheet).permute(2, 0, 1))


@st.cache_data(max_entries=32, show_spinner=False)
def maps_picture(choice: str, image_key: str, layer_name: str, _layer: inside.LayerOutput) -> bytes:
    """The layer's 16 most active channels on one scale (the 99.5th percentile of their sizes, so that a few
    extreme values do not wash out the rest), 8 a row, each titled with its channel and mean."""
    order = inside.sorted_channels(_layer.output)[:16]
    maps = _layer.output[order].float().numpy()
    limit = float(np.quantile(np.abs(maps), 0.995)) or 1.0
    means = _layer.output.flatten(1).mean(1)
    sheet = figures.contact_sheet([figures.diverging(m, limit) for m in maps],
                                  [f"ch {c}: {means[c]:.2f}" for c in order], columns=8, side=96)
    return jpeg(torch.tensor(sheet).permute(2, 0, 1))


@st.cache_resource(max_entries=2, show_spinner="Running the test set through the model (once per model)")
def test_set_of(choice: str) -> tuple[torch.Tensor, torch.Tensor, inside.DatasetPass]:
    images, labels = inside.run_test_set(runs.load_run(choice))
    subject = subjects.subject_of(choice)
    return images, labels, inside.dataset_pass(subject.model, images, subject.mean, subject.std)


@st.cache_resource(max_entries=4, show_spinner="Projecting the features (a few seconds for t-SNE)")
def space_figure(choice: str, method: str):
    """The learned space: the test images' features projected to 2-D, as a figure (built once: a thousand
    points in ten traces take Plotly half a second to build)."""
    _, test_labels, passed = test_set_of(choice)
    classes = subjects.subject_of(choice).classes
    points = inside.project(passed.features, method)  # the first PROJECTED_POINTS test images
    shown = len(points)
    return figures.embedding_figure(points.numpy(), [classes[i] for i in test_labels[:shown].tolist()],
                                    [classes[i] for i in passed.predicted[:shown].tolist()], classes)


def synthesised(choice: str, layer: str, channel: int) -> torch.Tensor:
    """An image painted to excite this channel, once per (model, layer, channel) for the whole server."""
    subject = subjects.subject_of(choice)
    module = dict(subject.model.named_modules())[layer]

    def paint(show) -> torch.Tensor:
        def step(done: int, steps: int) -> None:
            if done % 10 == 0:  # twenty updates are smooth enough, and each is a message to the browser
                show(done / steps, f"Synthesising: step {done} of {steps}")

        return inside.synthesise(subject.model, module, channel, subject.input_shape, subject.mean, subject.std,
                                 on_step=step)

    return once_with_progress("synthesised", (choice, layer, channel), paint, "Synthesising: step 0")


@st.cache_data(max_entries=64, show_spinner=False)
def exciting_picture(choice: str, layer_name: str, channel: int, _layer: inside.LayerOutput) -> bytes:
    """The test images that excite this channel most, each with its patch boxed, once per (run, layer, channel)."""
    test_images, _, passed = test_set_of(choice)
    top = inside.top_images(passed, layer_name, channel)
    boxes = [inside.patch_box(r, c, _layer.receptive_field or 1, _layer.jump, tuple(test_images.shape[-2:]))
             for _, _, r, c in top]
    pictures = [picture(test_images[i]) for i, _, _, _ in top]
    sheet = figures.contact_sheet(pictures, [f"{v:.2f}" for _, v, _, _ in top], columns=9, side=88, boxes=boxes)
    return jpeg(torch.tensor(sheet).permute(2, 0, 1))


@st.cache_data(max_entries=32, show_spinner=False)
def grad_cam(choice: str, image_key: str, layer: str, target: int, _image: torch.Tensor) -> np.ndarray:
    subject = subjects.subject_of(choice)
    module = dict(subject.model.named_modules())[layer]
    return explain.grad_cam(subject.model, module, subject.prepare(_image), target)[0].numpy()


# ---------------------------------------------------------------- the model and the image
def choose_model(person: Person | None) -> tuple[str, Subject]:
    """The model select (the newest run first), and its subject; the pretrained one if the run cannot be rebuilt."""
    rebuildable = jobs.MANAGER.runs_of(person, usable=True)
    titles = {PRETRAINED: "EfficientNet-Lite0, pretrained on ImageNet (works offline)"} | {
        r.run_id: f"Run {r.run_id} · {r.label}" + (f" · test {r.test_acc:.1%}" if r.test_acc is not None else "")
        for r in rebuildable} | {
        f"{ARCHITECTURE}{name}": f"{arch.title} (torchvision), pretrained on ImageNet" for name, arch in
        architectures.ARCHITECTURES.items()}
    if st.session_state.get("inside_model") not in titles:  # first visit (or its run is gone): the newest run
        st.session_state["inside_model"] = list(titles)[1 if rebuildable else 0]
    choice = st.selectbox("Model", list(titles), format_func=titles.get, key="inside_model",
                          help="The pretrained network, any run you trained or imported (newest first), or a "
                               "well-known network from torchvision.")
    if choice.startswith(ARCHITECTURE) and not architecture_ready(choice.removeprefix(ARCHITECTURE), person):
        return PRETRAINED, subject_of(PRETRAINED)
    try:
        return choice, subject_of(choice)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as error:  # weights gone, corrupt, unavailable
        what = ("This network cannot be opened" if choice.startswith(ARCHITECTURE) else
                "This run cannot be rebuilt from its folder")
        st.error(f"{what} ({error}); here is the pretrained network instead.")
        return PRETRAINED, subject_of(PRETRAINED)


def a_training_run(choice: str) -> bool:
    """A run trained here (with a test set of its own), not a pretrained or imported network."""
    if choice == PRETRAINED or choice.startswith(ARCHITECTURE):
        return False
    record = runs.load_run(choice)
    return record.kind == "train" and not record.imported


def architecture_ready(name: str, person: Person | None) -> bool:
    """A torchvision network: a sentence about it; its weights here (True), downloading (the page stops at the
    download's progress), or not to be had now (a sentence, and False: the page keeps EfficientNet-Lite0)."""
    arch = architectures.ARCHITECTURES[name]
    st.caption(arch.about)
    if architectures.weights_file(name) is not None:
        if arch.transformer:
            st.info(architectures.TRANSFORMER_VIEWS.format(title=arch.title))
        return True
    if not architectures.can_download():
        st.warning(f"{arch.title}'s ImageNet weights are not on this machine and cannot be downloaded now (no "
                   "network), so here is EfficientNet-Lite0, which ships with the app.")
        return False
    download_panel(f"weights-{name}", f"{arch.title}'s weights",
                   f"Download {arch.title}'s ImageNet weights ({architectures.weights_mb(name):.0f} MB)",
                   lambda hooks: architectures.download(name, hooks), ready=True, offline="", person=person)
    return True


def run_tests(choice: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """A training run's test images, labels and predictions: from memory for a run of this app, else from disk."""
    job = jobs.MANAGER.get(choice)
    if job is not None and job.result is not None:
        result = job.result
        return result.test_images, result.test_labels, result.test_probs.argmax(1)
    try:
        saved_images, saved_labels, passed = test_set_of(choice)
    except (DatasetUnavailable, DatasetError) as error:
        st.error(f"This run's test images are not here, so here is a photo instead: {error}")
        return None
    return saved_images, saved_labels, passed.predicted


def choose_test_image(subject: Subject, tests: tuple[torch.Tensor, ...]) -> torch.Tensor:
    test_images, test_labels, predicted = tests
    wrong_only = st.toggle("Only the misclassified ones", key="inside_wrong")
    pool = (predicted != test_labels).nonzero().flatten() if wrong_only else torch.arange(len(predicted))
    if st.session_state.get("inside_index", 0) >= len(pool):
        st.session_state["inside_index"] = 0
    index = int(pool[st.number_input(f"Test image (of {len(pool)})", 0, max(0, len(pool) - 1),
                                     key="inside_index")]) if len(pool) else 0
    st.caption(f"True class: **{subject.classes[int(test_labels[index])]}** · predicted: "
               f"**{subject.classes[int(predicted[index])]}**")
    return test_images[index]


def choose_image(choice: str, subject: Subject) -> torch.Tensor:
    """The image at the model's input size: a training run opens on one of its own test images."""
    trained = a_training_run(choice)
    sources = ["A photo", "Camera"] + ([TEST_IMAGE] if trained else [])
    if st.session_state.get("inside_image_for") != choice or st.session_state.get("inside_image_from") not in sources:
        st.session_state["inside_image_for"] = choice  # another model: its own test images first, if it has them
        st.session_state["inside_image_from"] = sources[-1] if trained else sources[0]
    source = st.radio("Image from", sources, horizontal=True, key="inside_image_from")
    tests = run_tests(choice) if source == TEST_IMAGE else None
    if tests is not None:
        return choose_test_image(subject, tests)
    if source == "Camera":
        shot = photo_from(st.camera_input("Take a photo"), "inside_camera")
        photo = shot.image if shot else cached_sample("astronaut").image
    else:
        photo = image_picker("inside_photo").image
    return subject.input_of(photo)


person = signed_in()  # in shared mode your runs only (none before you sign in); the pretrained model for all
left, right = st.columns([1, 2])
with left:
    choice, subject = choose_model(person)
    image = choose_image(choice, subject)
image_key = hashlib.sha1(image.numpy().tobytes()).hexdigest()
seen = inspected(choice, image_key, image)
channels, height, width = subject.input_shape
with right:
    a, b = st.columns([1, 2])
    a.image(picture(image), caption=f"What the model sees: {channels}x{height}x{width}", width=180,
            alt=f"The image given to the model, at its input size of {width}x{height} pixels")
    top = evaluate.top_k(seen.probs, subject.classes, 5)
    b.plotly_chart(charts.bars([c for c, _ in top], [p for _, p in top], "Top-5: the softmax of the logits"),
                   key="inside_top5", alt=charts.ranking_alt("The model's five likeliest classes", top))
if seen.conv_layers():
    st.markdown("**From the pixels to the last convolution**: each convolution's most active channel, numbered "
                "by layer (bright: strong)")
    st.image(strip_picture(choice, image_key, seen), alt="Each convolution's most active feature map, in order from "
             "the input to the last convolution, each smaller and more abstract than the one before")


# ---------------------------------------------------------------- the architecture, layer by layer
@st.fragment
def layer_view(choice: str, subject: Subject, seen: inside.Inspection, image_key: str,
               image: torch.Tensor) -> None:
    """The architecture and the chosen layer: a new layer reruns this part only."""
    st.header("The architecture")
    names = [layer.name for layer in seen.layers]
    labels = [f"{i}. {l.name} ({l.kind}) -> {' x '.join(map(str, l.shape))}" for i, l in enumerate(seen.layers)]
    bar = new_click("inside_arch")
    if bar:
        st.session_state["inside_layer"] = labels[bar["x"]]
    if st.session_state.get("inside_layer") not in labels:  # another model: start at its first convolution
        st.session_state["inside_layer"] = labels[names.index((seen.conv_layers() or seen.layers)[0].name)]
    chosen = labels.index(st.session_state["inside_layer"])
    st.plotly_chart(figures.architecture_figure(names, [l.kind for l in seen.layers], [l.shape for l in seen.layers],
                                                [l.receptive_field for l in seen.layers], chosen),
                    on_select="rerun", selection_mode="points", key="inside_arch",
                    alt=f"The network's {len(names)} layers as bars, in order, each with its output shape; "
                        f"{chosen} is highlighted")
    layer = seen.by_name(names[labels.index(st.selectbox("Layer (or click a bar)", labels, key="inside_layer"))])
    table = st.expander(f"Every layer: {len(seen.layers)} layers, {sum(l.parameters for l in seen.layers):,} "
                        "parameters; statistics on this image", key="inside_table_open", on_change="rerun")
    if table.open:  # drawn only when opened: a table the browser lays out at every move costs it a tenth of a second
        table.dataframe(layer_table(choice, image_key, seen), hide_index=True)

    st.header(f"Layer {chosen}: {layer.name} ({layer.kind})")
    field = "the whole image" if layer.receptive_field is None else \
        f"{layer.receptive_field}x{layer.receptive_field} pixels"
    st.caption(f"Output {' x '.join(map(str, layer.shape))} · {layer.parameters:,} parameters · each value sees "
               f"{field} of the input · neighbouring values are {layer.jump} input pixels apart")
    if layer.output.ndim == 3:
        st.markdown("Its 16 most active channels, each titled with its mean value: red above zero, blue below, "
                    "white at zero, on one scale for all 16.")
        st.image(maps_picture(choice, image_key, layer.name, layer),
                 alt=f"The feature maps of {layer.name}, one small grey image per channel, bright where it responds")
        channel_view(choice, subject, layer)
    else:
        values = layer.output.float()
        if values.ndim == 2:  # a transformer's tokens: the class token first, then one per patch
            st.caption(f"A list of {values.shape[0]} tokens of {values.shape[1]} numbers each, not a map: in a "
                       "vision transformer the first token gathers the answer, one token stands for each patch. "
                       "Shown: the first token's values.")
            values = values[0]
        top = values.abs().argsort(descending=True)[:20].tolist()
        units = [subject.classes[i] if len(values) == len(subject.classes) else f"unit {i}" for i in top]
        st.plotly_chart(charts.bars(units, [float(values[i]) for i in top], "The 20 largest values (by size)",
                                    percent=False), key="inside_vector",
                        alt=f"The 20 largest values of {layer.name}'s output as bars, largest first")
    if isinstance(layer.module, torch.nn.Conv2d):
        grad_cam_view(choice, subject, seen, image_key, image, layer)


def pick_channel_and_pixel(layer: inside.LayerOutput, order: list[int]) -> tuple[int, int, int]:
    """The channel, row and column: from their inputs, or from a click on a channel's bar or on a pixel."""
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
    means = layer.output.flatten(1).mean(1)
    st.plotly_chart(figures.channel_bars_figure(means.numpy(), order, st.session_state["inside_channel"]),
                    on_select="rerun", selection_mode="points", key="inside_bars",
                    alt=f"The mean value of each of {layer.name}'s {len(order)} channels as bars, most active first")
    a, b, c = st.columns(3)
    channel = a.selectbox("Channel (most active first; or click its bar)", order, key="inside_channel")
    row = b.number_input("Row (or click a pixel)", 0, rows - 1, key="inside_row")
    col = c.number_input("Column", 0, cols - 1, key="inside_col")
    return channel, row, col


def arithmetic_view(layer: inside.LayerOutput, channel: int, row: int, col: int) -> None:
    """One value of the layer, worked out by hand: the kernel times the input patch under it, plus the bias."""
    given = float(layer.output[channel, row, col])
    if not isinstance(layer.module, torch.nn.Conv2d):
        st.markdown(f"Value at channel {channel}, row {row}, column {col}: **{given:.4f}**.")
        return
    sums = inside.conv_arithmetic(layer, channel, row, col)
    st.markdown(f"**The arithmetic at channel {channel}, row {row}, column {col}**: the kernel of channel "
                f"{channel} ({' x '.join(map(str, sums.weights.shape))}) times the input patch under it, "
                f"summed, plus the bias: **{float((sums.patch * sums.weights).sum()):.4f} + {sums.bias:.4f} = "
                f"{sums.value:.4f}**; the layer gave **{given:.4f}**.")
    k = min(6, sums.weights.shape[0])
    by_input = (sums.patch * sums.weights).flatten(1).sum(1)
    strongest = by_input.abs().argsort(descending=True)[:k].tolist()
    st.plotly_chart(charts.feature_maps_figure(
        torch.cat([sums.weights[strongest], sums.patch[strongest]]).numpy(),
        [f"in {i}" for i in strongest] + [f"sum {by_input[i]:.3f}" for i in strongest], columns=k, height=120),
        key="inside_kernel", alt="The kernel's weights for its strongest inputs above, and the patch they multiply "
                                 "below, each titled with the sum it adds")
    st.caption(f"Top row: the kernel's weights for the {k} input channels that add the most (of "
               f"{sums.weights.shape[0]}), each titled with its input channel; bottom row: the input values under "
               f"them, each titled with the sum of its products with the weights above.")


@st.fragment
def channel_view(choice: str, subject: Subject, layer: inside.LayerOutput) -> None:
    """A channel and one of its values: a new channel or pixel reruns this part only."""
    order = inside.sorted_channels(layer.output)
    channel, row, col = pick_channel_and_pixel(layer, order)
    left, right = st.columns([2, 3])
    with left:
        st.markdown(f"**Channel {channel}**: click a pixel")
        st.plotly_chart(figures.pixel_map_figure(layer.output[channel].float().numpy(), (row, col)),
                        on_select="rerun", selection_mode="points", key="inside_pixels",
                        alt=f"Channel {channel} of {layer.name} as a heat map, with the chosen value at row {row}, "
                            f"column {col} marked")
    with right:
        arithmetic_view(layer, channel, row, col)
    synthesis_view(choice, subject, layer, channel)
    exciting_view(choice, layer, channel)


def synthesis_view(choice: str, subject: Subject, layer: inside.LayerOutput, channel: int) -> None:
    side = min(max(subject.input_shape[1:]), inside.SYNTHESIS_SIDE)
    if not st.toggle(f"Paint an image that excites channel {channel}: start from noise and change the pixels, step by "
                     f"step, to make this channel fire (activation maximisation; a few seconds at {side}x{side} "
                     "pixels, up to 15 s for the deep layers of the pretrained network on a CPU)",
                     key="inside_synthesise"):
        return
    made = synthesised(choice, layer.name, channel)
    a, b = st.columns([1, 3])
    a.image(picture(made), caption=f"Made for channel {channel} of {layer.name}", width=180,
            alt=f"A pattern made by gradient ascent to excite channel {channel} of {layer.name} most")
    b.caption(f"200 steps of gradient ascent on the pixels of a {made.shape[1]}x{made.shape[2]} canvas, each on a "
              "copy shifted by up to a pixel, so that the pattern does not hang on one exact pixel grid (OpenAI "
              "Microscope's second view, for your model).")


def exciting_view(choice: str, layer: inside.LayerOutput, channel: int) -> None:
    """The test images that excite this channel most, each with the patch that did it (training runs only)."""
    test_set = test_set_here(choice)
    if test_set is None or layer.name not in test_set[2].peaks:
        return
    st.markdown(f"**What channel {channel} of {layer.name} looks for**: the test images that excite it most, "
                f"each with the {layer.receptive_field}x{layer.receptive_field}-pixel patch that did it")
    st.image(exciting_picture(choice, layer.name, channel, layer),
             caption="Each titled with the channel's value at its peak; the yellow box is the patch it sees there.",
             alt=f"The test images that excite channel {channel} of {layer.name} most, each with a yellow box on "
                 "the patch that does it")


def test_set_here(choice: str) -> tuple[torch.Tensor, torch.Tensor, inside.DatasetPass] | None:
    """A training run's whole test set through its model, or None (the pretrained network, or the data is gone)."""
    if not a_training_run(choice):
        return None
    try:
        return test_set_of(choice)
    except (DatasetUnavailable, DatasetError):
        return None


# ---------------------------------------------------------------- why this class: Grad-CAM at this layer
@st.fragment
def grad_cam_view(choice: str, subject: Subject, seen: inside.Inspection, image_key: str, image: torch.Tensor,
                  layer: inside.LayerOutput) -> None:
    st.header("Why this class: Grad-CAM at this layer")
    st.caption("Grad-CAM colours the places whose features raise the chosen class's score: red is strong evidence, "
               "blue none. It weighs each of this layer's channels by how much the class's score grows with it.")
    a, b = st.columns(2)
    ranked = seen.probs.argsort(descending=True).tolist()
    target = a.selectbox("Class (most likely first)", ranked,
                         format_func=lambda i: f"{subject.classes[i]} ({seen.probs[i]:.1%})",
                         key=f"inside_target_{image_key}")  # a new image starts on its predicted class
    opacity = b.slider("Colour over the image (0 shows the image alone)", 0.0, 1.0, 0.35, 0.05,
                       key="inside_cam_opacity")
    heat = grad_cam(choice, image_key, layer.name, target, image)
    st.markdown(f"**Where {layer.name} finds {subject.classes[target]}**")
    st.plotly_chart(charts.overlay_figure(picture(image), heat, opacity), key="inside_cam",
                    alt="The image with a Grad-CAM heat map over it: red where the layer's evidence for the top class "
                        "lies, blue where there is none")


# ---------------------------------------------------------------- the whole test set: the learned space
@st.fragment
def learned_space_view(choice: str, subject: Subject) -> None:
    test_set = test_set_here(choice)
    if test_set is None:
        return
    _, test_labels, passed = test_set
    st.header("Across the test set")
    stats = st.expander("Per-layer statistics on a batch of 256 test images", key="inside_stats_open",
                        on_change="rerun")
    if stats.open:
        stats.dataframe([{"layer": name, "mean": s.mean, "std": s.std, "zero (dead) share": s.zero_share,
                          "saturated share": s.saturated_share} for name, s in passed.batch_stats.items()],
                        hide_index=True)
    if not len(passed.features):
        return
    shown = min(len(passed.features), inside.PROJECTED_POINTS)
    space = st.expander(f"The learned space: where {shown:,} test images land, as the last layer sees them",
                        key="inside_space_open", on_change="rerun")
    if not space.open:  # drawn when opened: at the page's foot, it cost every visit a WebGL chart of the test set
        return
    inside.prepare_tsne()  # while the learner looks at PCA
    space.markdown(f"Each of the first {shown:,} test images' penultimate features (what the last layer sees), "
                   "projected to 2-D; hollow markers are the mistakes. Click one to look at it above.")
    method = space.radio("Projection", ["pca", "tsne"], horizontal=True, key="inside_projection", format_func={
        "pca": "PCA: the two directions the images differ most along (instant)",
        "tsne": "t-SNE: keeps neighbours together (a few seconds)"}.get)
    space.plotly_chart(space_figure(choice, method), on_select="rerun", selection_mode="points", key="inside_space",
                       alt=f"{shown:,} test images as dots in two dimensions ({method}), coloured by class: images "
                           "the network finds alike lie close together")
    dot = new_click("inside_space")
    if dot:
        ask_inside(InsideOpening(choice, int(dot["customdata"][0])))
        st.rerun()


layer_view(choice, subject, seen, image_key, image)
learned_space_view(choice, subject)
