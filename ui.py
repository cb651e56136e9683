"""Streamlit pieces shared by the pages (the core in cnn_lab/ never imports Streamlit)."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from cnn_lab import images


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    summary: str


PAGES = [
    PageInfo("pages/1_convolution.py", "Convolution visualizer", ":material/blur_on:",
             "Slide any kernel over a real photo: every channel, stride, padding, pooling and the arithmetic."),
    PageInfo("pages/2_stride_padding.py", "Stride & padding explorer", ":material/grid_on:",
             "Watch the output-size formula at work, cell by cell, for every layer the course uses."),
    PageInfo("pages/3_activations.py", "Activation functions", ":material/show_chart:",
             "Curves, autograd derivatives, saturation, dead units and softmax with cross-entropy."),
    PageInfo("pages/4_augmentation.py", "Augmentation preview", ":material/auto_awesome:",
             "Build a torchvision pipeline and see exactly what the trainer will see."),
    PageInfo("pages/5_train.py", "Train & watch the loss", ":material/monitoring:",
             "Train a real network in the background and watch its learning curves stream in."),
    PageInfo("pages/6_transfer.py", "Transfer learning on boats", ":material/sailing:",
             "Fine-tune a pretrained network on boat photos, then classify a photo you upload."),
]


def page_header(path: str) -> None:
    if PagesManager.uses_pages_directory:
        # The very first request after the server starts, when it is a deep link, runs the page file without
        # app.py (Streamlit's old pages/ mode). Go through app.py, which then switches back to this page.
        st.session_state["deep_link"] = path
        st.switch_page("app.py")
    info = next(p for p in PAGES if p.path == path)
    st.title(info.title)
    st.caption(info.summary)


cached_sample = st.cache_resource(images.load_sample)


def image_picker(key: str, max_side: int = images.WORK_SIDE) -> images.LoadedImage:
    """Sample photo or upload; a bad upload gets one sentence and the previous image stays."""
    source = st.radio("Image", ["Sample photo", "Upload"], horizontal=True, key=f"{key}_source")
    state_key = f"{key}_image"
    if source == "Sample photo":
        name = st.selectbox("Sample", list(images.SAMPLES), key=f"{key}_sample")
        st.session_state[state_key] = cached_sample(name, max_side)
    else:
        upload = st.file_uploader("Upload a photo", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                                  key=f"{key}_upload")
        if upload is not None:
            try:
                st.session_state[state_key] = images.load_image(upload.getvalue(), max_side)
            except images.ImageError as error:
                st.error(str(error))
    if state_key not in st.session_state:
        st.session_state[state_key] = cached_sample(next(iter(images.SAMPLES)), max_side)
    loaded = st.session_state[state_key]
    if loaded.note:
        st.caption(loaded.note)
    return loaded
