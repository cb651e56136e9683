"""What a learner gives a page, each handled in one place: an upload handled once (not on every rerun), a click on
a chart applied once, the image picker (a sample photo or an upload), a photo or a camera shot read once, and a
tensor turned back into a picture for st.image."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import streamlit as st
import torch
from PIL import Image

from cnn_lab import images
from ui import links

# Every photo input accepts the same files: what Pillow reads that browsers commonly hold.
PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


@dataclass(frozen=True)
class Handled:
    """What handling an upload gave: its value, or the one sentence that says why it could not be used; `new` on the
    rerun that handled it, False on the reruns after."""

    value: Any = None
    error: str = ""
    new: bool = False


def once_per_upload(upload, key: str, handle: Callable[[Any], Any],
                    errors: tuple[type[Exception], ...] = (ValueError,)) -> Handled | None:
    """`handle(upload)` once per uploaded file, however often the page reruns; its outcome is kept in the session
    under `key` until another file comes. None while nothing is uploaded."""
    if upload is None:
        return None
    seen = st.session_state.get(key)
    if seen is None or seen[0] != upload.file_id:
        try:
            outcome = Handled(handle(upload))
        except errors as error:
            outcome = Handled(error=str(error))
        st.session_state[key] = (upload.file_id, outcome)
        return replace(outcome, new=True)
    return seen[1]


def new_click(chart_key: str) -> dict | None:
    """The point clicked on the chart drawn with `chart_key` (on_select="rerun"), the first time it is seen: a
    selection stays in the chart's state across reruns, and applying it again would undo the learner's later
    choices."""
    points = st.session_state.get(chart_key, {}).get("selection", {}).get("points", [])
    if not points:
        return None
    point = points[0]
    where = (point.get("x"), point.get("y"))
    if st.session_state.get(f"{chart_key}_applied") == where:
        return None
    st.session_state[f"{chart_key}_applied"] = where
    return point


cached_sample = st.cache_resource(images.load_sample)


def image_picker(key: str, max_side: int = images.WORK_SIDE) -> images.LoadedImage:
    """Sample photo or upload; a bad upload gets one sentence and the previous image stays."""
    source = links.radio(st, "Image", ["Sample photo", "Upload"], key=f"{key}_source", horizontal=True)
    state_key = f"{key}_image"
    if source == "Sample photo":
        name = links.selectbox(st, "Sample", list(images.SAMPLES), key=f"{key}_sample")
        st.session_state[state_key] = cached_sample(name, max_side)
    else:
        photo = photo_from(st.file_uploader("Upload a photo", type=PHOTO_TYPES, key=f"{key}_upload"), key, max_side)
        if photo is not None:  # a bad upload keeps the image before it
            st.session_state[state_key] = photo
    if state_key not in st.session_state:
        st.session_state[state_key] = cached_sample(next(iter(images.SAMPLES)), max_side)
    loaded = st.session_state[state_key]
    if loaded.note:
        st.caption(loaded.note)
    return loaded


def photo_input(key: str, label: str = "A photo to classify", choices: tuple[str, ...] = ("Upload", "Camera")):
    """An uploaded file or a camera shot (st.camera_input, which asks for the camera only once chosen). With more
    `choices`, a choice that is neither returns that choice's name for the page to handle."""
    source = st.radio("Photo from", choices, horizontal=True, key=f"{key}_from")
    if source == "Camera":
        return st.camera_input("Take a photo", key=f"{key}_camera")
    if source == "Upload":
        return st.file_uploader(label, type=PHOTO_TYPES, key=f"{key}_upload")
    return source


def photo_from(upload, key: str, max_side: int = images.WORK_SIDE) -> images.LoadedImage | None:
    """An uploaded file or a camera shot as a photo, read once per file (a rerun reads nothing again); None while
    there is none, or with its one sentence on the page when it is not a photo. A model then takes it through its
    own Subject.input_of: the one way from a photo to a model's input."""
    handled = once_per_upload(upload, f"{key}_photo_seen", lambda file: images.load_image(file.getvalue(), max_side),
                              errors=(images.ImageError,))
    if handled is not None and handled.error:
        st.error(handled.error)
        return None
    return handled.value if handled is not None else None


def picture(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image, uint8 or float in [0, 1], as the array st.image draws (H, W) or (H, W, C)."""
    if image.is_floating_point():
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    array = image.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


@st.cache_data(max_entries=512, show_spinner=False)
def _jpeg(key: str, _array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_array).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def jpeg(image: torch.Tensor) -> bytes:
    """A (C, H, W) image as JPEG bytes for st.image, encoded once per content: a rerun that shows the same picture
    again sends the same file, which the browser already holds (st.image would encode it anew each time)."""
    array = np.ascontiguousarray(picture(image))
    return _jpeg(hashlib.sha1(array.tobytes()).hexdigest() + str(array.shape), array)
