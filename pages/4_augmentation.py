import hashlib
import json

import numpy as np
import streamlit as st
import torch

from cnn_lab import augment, data
from ui import links
from ui.identity import preset_owner, signed_in
from ui.inputs import image_picker, jpeg
from ui.nav import page_header

page_header(__file__)


@st.cache_data(max_entries=256, show_spinner=False)
def drawn(pipeline: str, seed: int, image_key: str, _image: torch.Tensor) -> tuple[bytes, list[str]]:
    """One draw of the pipeline (as its link spells it) with this seed, as a JPEG and what it sampled: a move
    that keeps the pipeline, the image and the seed (more draws, the parameters shown) redraws nothing."""
    (image, log), = augment.draw(_image, augment.from_json(pipeline), 1, seed)
    return jpeg(image), log


@st.cache_data(max_entries=16, show_spinner=False)
def tta_pictures(image_key: str, _image: torch.Tensor) -> list[bytes]:
    """The original, then each test-time view, as JPEGs: they change with the image only, not at every move."""
    batch = _image[None].float() / 255
    return [jpeg(_image)] + [jpeg(view(batch)[0]) for view in augment.TTA_VIEWS.values()]


@st.cache_data(max_entries=64, show_spinner=False)
def hidden_pictures(image_key: str, block: int, drop: float, cut: int, seed: int,
                    _image: torch.Tensor) -> tuple[bytes, bytes, float]:
    """(DropBlock's picture, Cutout's picture, the share DropBlock dropped) for these settings."""
    h, w = _image.shape[-2:]
    picture = _image.float() / 255
    dropblock = augment.dropblock_mask(h, w, block, drop, seed)
    cutout = augment.cutout_mask(h, w, cut, seed)
    return jpeg(picture * dropblock), jpeg(picture * cutout), 1 - dropblock.mean().item()


@st.cache_resource
def dataset_batch(name: str) -> torch.Tensor:
    return data.load_dataset(name).splits["train"].images[:64]


# ---------------------------------------------------------------- the image
source = links.radio(st, "Start from", ["Photo", "A dataset image (what the trainer sees)"], key="start",
                     horizontal=True)
if source == "Photo":
    image = torch.from_numpy(np.asarray(image_picker("aug", max_side=256).image).copy()).permute(2, 0, 1)
else:
    a, b = st.columns(2)
    here = [name for name in data.DATASETS if data.where_here(name)]  # nothing downloads in a page's thread
    name = links.selectbox(a, "Dataset", here, format_func=lambda d: data.DATASETS[d].title, key="dataset")
    try:
        batch = dataset_batch(name)
    except (data.DatasetUnavailable, data.DatasetError) as error:
        st.error(str(error))
        st.stop()
    image = batch[links.slider(b, "Image", 0, len(batch) - 1, 0, key="image")]

image_key = hashlib.sha1(image.numpy().tobytes()).hexdigest()

# ---------------------------------------------------------------- the pipeline
state = st.session_state
DEFAULT_STEPS = [augment.new_step("crop", 1.0), augment.new_step("hflip", 0.5), augment.new_step("rotation", 0.5),
                 augment.new_step("color_jitter", 0.8)]


def valid_pipeline(text: str) -> bool:
    try:
        augment.from_json(text)
    except augment.AugmentError:
        return False
    return True


def as_link(pipeline: list[dict]) -> str:
    return json.dumps(pipeline, separators=(",", ":"))


linked = links.from_link("pipeline", valid_pipeline)
if "aug_steps" not in state or linked:
    state.aug_steps = augment.from_json(linked) if linked else DEFAULT_STEPS
    state.aug_version = state.get("aug_version", -1) + 1  # fresh widgets for the new steps
steps: list[dict] = state.aug_steps


def restructure(new_steps: list[dict]) -> None:
    """Replace the pipeline; a new version number gives every step fresh widgets."""
    state.aug_steps = new_steps
    state.aug_version += 1


st.header("The pipeline")
st.caption("Random changes applied in order, each with its probability, as torchvision.transforms.v2 does them.")
version = state.aug_version
for i, step in enumerate(steps):
    spec = augment.STEPS[step["name"]]
    with st.expander(f"{i + 1}. {spec.title} · p = {step['p']:g}" + ("" if step["enabled"] else " · off")):
        c1, c2, c3, c4, c5 = st.columns([2, 3, 1, 1, 1])
        step["enabled"] = c1.toggle("On", step["enabled"], key=f"on_{version}_{i}")
        step["p"] = c2.slider("Probability", 0.0, 1.0, float(step["p"]), key=f"p_{version}_{i}")
        if c3.button("↑", key=f"up_{version}_{i}", disabled=i == 0):
            restructure(steps[: i - 1] + [steps[i], steps[i - 1]] + steps[i + 1 :])
            st.rerun()
        if c4.button("↓", key=f"down_{version}_{i}", disabled=i == len(steps) - 1):
            restructure(steps[:i] + [steps[i + 1], steps[i]] + steps[i + 2 :])
            st.rerun()
        if c5.button("✕", key=f"del_{version}_{i}"):
            restructure(steps[:i] + steps[i + 1 :])
            st.rerun()
        for param, (default, lo, hi) in spec.params.items():
            whole = all(isinstance(v, int) for v in (default, lo, hi))
            label = param.replace("_", " ") + (" (0 = the input's size)" if param == "size" else "")
            value = st.slider(label, lo if whole else float(lo), hi if whole else float(hi),
                              int(step["params"][param]) if whole else float(step["params"][param]),
                              key=f"{param}_{version}_{i}")
            step["params"][param] = float(value)
a, b = st.columns([3, 1])
new = a.selectbox("Add a step", list(augment.STEPS), format_func=lambda n: augment.STEPS[n].title)
if b.button("Add", width="stretch"):
    restructure(steps + [augment.new_step(new)])
    st.rerun()

links.remember("pipeline", as_link(steps), as_link(DEFAULT_STEPS))

# ---------------------------------------------------------------- the draws
st.header("Random draws")
c1, c2, c3, c4 = st.columns(4)
n = links.slider(c1, "Draws", 1, 24, 8, key="draws")
seed = links.number_input(c2, "Seed", 0, 10**6, 0, key="aug_seed")
c3.button("Re-roll", on_click=lambda: state.update(aug_seed=state.aug_seed + n))  # n new draws
show_params = links.toggle(c4, "Show sampled parameters", key="show_params")
try:
    draws = [drawn(as_link(steps), int(seed) + i, image_key, image) for i in range(n)]
    state.aug_last = draws
except augment.AugmentError as error:
    st.error(str(error))
    draws = state.get("aug_last", [])
    if draws:
        st.caption("Showing the last draws that worked.")
original_picture, *view_pictures = tta_pictures(image_key, image)
original, grid = st.columns([1, 4])
original.image(original_picture, caption="original", width="stretch", alt="The photo before augmentation")
columns = grid.columns(4)  # 8 draws (the default) fill two rows
for i, (picture_bytes, log) in enumerate(draws):
    columns[i % 4].image(picture_bytes, caption="  \n".join(log) if show_params else None, width="stretch",
                         alt=f"Random draw {i + 1} of the pipeline: " + ("; ".join(log) or "nothing applied"))

# ---------------------------------------------------------------- export, load, save
st.header("Use it elsewhere")
tab_code, tab_json, tab_preset = st.tabs(["PyTorch code", "JSON", "Save as a preset for training"])
size = tuple(image.shape[-2:])
tab_code.code(augment.to_code(steps, size), language="python")
with tab_json:
    st.download_button("Download the pipeline (JSON)", augment.to_json(steps), "pipeline.json", "application/json")
    text = st.text_area("Paste a pipeline JSON to load it", height=120)
    if st.button("Load"):
        try:
            restructure(augment.from_json(text))
            st.rerun()
        except augment.AugmentError as error:
            st.error(str(error))
with tab_preset:
    person = signed_in()
    owner = preset_owner(person)
    preset_name = st.text_input("Preset name", "my-pipeline")
    if person is None:
        st.info("On this shared server, sign in on the train page to save presets of your own.")
    elif st.button("Save preset"):
        saved = augment.save_preset(preset_name, steps, owner)
        st.success(f"Saved as '{saved}': the train page's augmentation-preset list offers it now.")
    st.caption("Presets the train and transfer pages offer (built-in first): "
               + ", ".join(augment.list_presets(owner)))

# ---------------------------------------------------------------- TTA, DropBlock and Cutout
st.header("Copies at test time (TTA)")
st.caption("Test-time augmentation: at test time the model answers for each of these copies and the answers are "
           "averaged, which evens out its mistakes on one view; the trainer does so when TTA is on.")
for slot, name, picture_bytes in zip(st.columns(len(augment.TTA_VIEWS)), augment.TTA_VIEWS, view_pictures):
    slot.image(picture_bytes, caption=name, width="stretch", alt=f"The test-time view: {name}")

st.header("Hiding parts of the image (DropBlock, Cutout)")
st.caption("With parts hidden at random while it trains, the network cannot lean on one spot.")
c1, c2, c3 = st.columns(3)
block = links.slider(c1, "DropBlock block size", 1, 32, 7, key="block")
drop = links.slider(c2, "DropBlock drop probability", 0.0, 0.5, 0.15, key="drop")
cut = links.slider(c3, "Cutout square size", 1, 128, 24, key="cut")
dropblock_picture, cutout_picture, dropped = hidden_pictures(image_key, block, drop, cut, int(seed), image)
p1, p2 = st.columns(2)
p1.image(dropblock_picture, caption=f"DropBlock: {dropped:.0%} dropped", width="stretch",
         alt=f"The photo with {dropped:.0%} of it hidden in black {block}x{block} blocks (DropBlock)")
p2.image(cutout_picture, caption="Cutout", width="stretch",
         alt=f"The photo with one black {cut}x{cut} square hidden (Cutout)")

links.keep()
