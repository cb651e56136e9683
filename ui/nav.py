"""The page list, each page's header, and the way to "Inside the network" from another page."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from ui import links


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
    PageInfo("pages/7_inside.py", "Inside the network", ":material/layers:",
             "Every layer of a real network responding to your image, down to one value's arithmetic."),
    PageInfo("pages/8_class.py", "Class", ":material/groups:",
             "Everyone's runs for a teacher, and who may be stuck; your own runs for a learner."),
]


def look_inside_button(run_id: str) -> None:
    """Open this run on the "Inside the network" page."""
    if st.button("Look inside this network, layer by layer", key=f"inside_{run_id}"):
        open_inside(run_id)


def page_header(path: str) -> None:
    if PagesManager.uses_pages_directory:
        # The very first request after the server starts, when it is a deep link, runs the page file without
        # app.py (Streamlit's old pages/ mode). Go through app.py, which then switches back to this page.
        st.session_state["deep_link"] = (path, st.query_params.to_dict())  # a shared link's settings go along
        st.switch_page("app.py")
    links.begin()
    info = next(p for p in PAGES if p.path == path)
    st.title(info.title)
    st.caption(info.summary)


def open_inside(run_id: str, test_image: int | None = None) -> None:
    """Go to "Inside the network" with this run (and one of its test images) chosen."""
    choices = {"inside_model": run_id}
    if test_image is not None:
        choices |= {"inside_image_from": "A test image of this run", "inside_image_for": run_id, "inside_wrong": False,
                    "inside_index": test_image}
    st.session_state["inside_open"] = choices  # that page sets its widgets from it (widget state of another page
    st.switch_page("pages/7_inside.py")       # would be cleared on the way)
