"""CNN Lab home: what this is, the pages in course order, and what this machine has."""
import logging
import uuid

import streamlit as st

from cnn_lab import backbones, data, device
from ui import PAGES

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")


def home() -> None:
    st.title("CNN Lab")
    st.write(
        "An interactive playground for convolutional neural networks: move a slider and watch what a "
        "kernel, a stride, an activation or an augmentation does, then train real networks and watch "
        "their learning curves stream in. The pages follow the course's order."
    )
    for info in PAGES:
        st.page_link(info.path, label=f"**{info.title}**: {info.summary}", icon=info.icon)

    st.subheader("This machine")
    st.write(f"Compute device: **{device.describe_device()}**")
    left, right = st.columns(2)
    left.markdown("**Datasets**")
    left.table({"dataset": [s.title for s in data.DATASETS.values()],
                "status": [data.availability(name) for name in data.DATASETS]})
    right.markdown("**Pretrained weights**")
    right.table({"backbone": [s.title for s in backbones.BACKBONES.values()],
                 "status": [s.status() for s in backbones.BACKBONES.values()]})


pages = {p.path: st.Page(p.path, title=p.title, icon=p.icon) for p in PAGES}
navigation = st.navigation([st.Page(home, title="Home", icon=":material/home:", default=True), *pages.values()])
if "deep_link" in st.session_state:  # see ui.page_header
    path, query = st.session_state.pop("deep_link")
    st.switch_page(pages[path], query_params=query)
try:
    navigation.run()
except Exception:  # noqa: BLE001 - no traceback reaches the browser: the log has it, under an id
    error_id = uuid.uuid4().hex[:8]
    logging.getLogger("cnn_lab").exception("error %s on %s", error_id, navigation.title)
    st.error(f"Something went wrong on this page (error {error_id}). Nothing you made is lost; try again, and "
             "if it happens again, give this id to whoever runs the server: the details are in its log.")
