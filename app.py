"""CNN Lab home: what this is, the pages in course order, and what this machine has.

`streamlit run app.py` first imports this file to serve it (it finds `app` below: an st.App, Streamlit's server
with two routes of ours for the live charts), then runs it as the script of every page view (as `__main__`)."""
import logging
import uuid

# Whole, as the server starts: plotly finds pandas in sys.modules without importing it, and a page building a
# figure while another page's thread was still importing pandas met half a module ("partially initialized module
# 'pandas' has no attribute 'Series'"): the train page's live chart failed on the first views after a start.
import pandas  # noqa: F401
import streamlit as st

from cnn_lab import backbones, charts, data, device, jobs, vision_tasks
from ui.live import live_routes
from ui.nav import PAGES


def home() -> None:
    st.title("CNN Lab")
    st.write(
        "An interactive playground for convolutional neural networks: move a slider and watch what a "
        "kernel, a stride, an activation or an augmentation does, then train real networks and watch "
        "their learning curves stream in. The pages follow the course's order."
    )
    for info in PAGES:
        st.page_link(info.path, label=f"**{info.title}**: {info.summary}", icon=info.icon)

    st.header("Why CNNs (lessons 1-2)")
    st.write("Until 2011 the best ImageNet classifiers used hand-made features; in 2012 a convolutional network, "
             "AlexNet, cut the error by a third, and deeper CNNs then went below one person's error.")
    st.plotly_chart(charts.imagenet_history_figure(vision_tasks.IMAGENET_WINNERS, vision_tasks.HUMAN_TOP5_ERROR),
                    key="imagenet_history",
                    alt=charts.imagenet_history_alt(vision_tasks.IMAGENET_WINNERS, vision_tasks.HUMAN_TOP5_ERROR))
    scene = vision_tasks.toy_scene()
    st.write("The vision problems differ in what they output. On one scene: **classification** gives one class for "
             "the whole image (a probability per class), **detection** a box, a class and a score per object, "
             "**segmentation** a class for every pixel.")
    st.plotly_chart(charts.vision_tasks_figure(scene.image.permute(1, 2, 0).numpy(), scene.mask.numpy(), scene.boxes,
                                               scene.label, scene.classes), key="vision_tasks",
                    alt=f"One scene three ways: classified as {scene.label}; {len(scene.boxes)} objects in boxes; "
                        "and every pixel coloured by its class")
    st.table({"task": ["classification", "detection", "segmentation"],
              "output for one image": ["(classes,) probabilities", "(objects, 4) boxes, (objects,) classes and scores",
                                       "(classes, H, W) scores: the argmax is a class per pixel"],
              "here": [f"\"{scene.label}\"", "; ".join(f"{n}: x {x0}-{x1}, y {y0}-{y1}" for n, x0, y0, x1, y1 in scene.boxes),
                       f"a {scene.mask.shape[0]}x{scene.mask.shape[1]} map of {len(scene.classes)} classes"]})

    st.header("This machine")
    st.write(f"Compute device: **{device.describe_device()}**")
    if device.pick_device().type == "cpu" and device.cpu_bf16():
        st.caption("bf16 are 16-bit numbers. This CPU computes them in hardware, faster than 32-bit ones, and the "
                   "presets that say bf16 use them; the CPU presets of the train page, and the transfer page's recipe for "
                   "AMX, name their time on such a CPU.")
    left, right = st.columns(2)
    left.markdown("**Datasets**")
    left.table({"dataset": [s.title for s in data.DATASETS.values()],
                "status": [data.availability(name).note for name in data.DATASETS]})
    right.markdown("**Pretrained weights**")
    right.table({"backbone": [s.title for s in backbones.BACKBONES.values()],
                 "status": [s.status() for s in backbones.BACKBONES.values()]})


def main() -> None:
    """One page view: the navigation, then the page."""
    st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")
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


if __name__ == "__main__":
    main()
else:  # the server starting: the jobs a killed or restarted app left running or waiting go on
    jobs.MANAGER.keep_across_restarts()
    app = st.App(__file__, routes=live_routes())
