"""The page list, each page's header, and the way to "Inside the network" from another page."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
# Private, and the app's only import from streamlit.runtime: no public API tells a page that Streamlit ran it in its
# old pages/ mode (see page_header). tests/test_streamlit_pins.py pins the behaviour, so an upgrade that changes it
# fails there first.
from streamlit.runtime.pages_manager import PagesManager

from ui import links

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageInfo:
    """A page's one description: its file, and what the menu, its header and the home page call it."""
    path: str  # relative to the app's folder, as st.Page and st.switch_page take it
    title: str
    icon: str
    summary: str

    @property
    def url_path(self) -> str:
        """Its address after the app's: "pages/1_convolution.py" is served at /convolution (Streamlit drops the
        number that orders the files)."""
        return Path(self.path).stem.split("_", 1)[1]


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
INSIDE = PAGES[6]


def look_inside_button(run_id: str) -> None:
    """Open this run on the "Inside the network" page."""
    if st.button("Look inside this network, layer by layer", key=f"inside_{run_id}"):
        open_inside(run_id)


def page_of(file: str) -> PageInfo:
    """The page whose script is `file` (a page passes its own __file__)."""
    path = Path(file).resolve().relative_to(ROOT).as_posix()
    return next(p for p in PAGES if p.path == path)


def page_header(file: str) -> None:
    """The title and summary of the page whose script is `file`: each page starts with page_header(__file__)."""
    info = page_of(file)
    if PagesManager.uses_pages_directory:
        # The very first request after the server starts, when it is a deep link, runs the page file without
        # app.py (Streamlit's old pages/ mode). Go through app.py, which then switches back to this page.
        st.session_state["deep_link"] = (info.path, st.query_params.to_dict())  # a shared link's settings go along
        st.switch_page("app.py")
    links.begin()
    st.title(info.title)
    st.caption(info.summary)


@dataclass(frozen=True)
class InsideOpening:
    """What another page asks "Inside the network" to show: a run, and maybe one of its test images. Only the
    Inside page turns it into its widgets' values (Streamlit clears another page's widget state on the way)."""
    run_id: str
    test_image: int | None = None


OPENING_KEY = "inside_opening"


def open_inside(run_id: str, test_image: int | None = None) -> None:
    """Go to "Inside the network" with this run (and one of its test images) chosen."""
    ask_inside(InsideOpening(run_id, test_image))
    st.switch_page(INSIDE.path)


def ask_inside(opening: InsideOpening) -> None:
    """Ask the Inside page to open this on its next run (before its widgets are drawn, when they may be set)."""
    st.session_state[OPENING_KEY] = opening


def inside_opening() -> InsideOpening | None:
    """The opening another page asked for, once: the Inside page reads it as it starts."""
    return st.session_state.pop(OPENING_KEY, None)
