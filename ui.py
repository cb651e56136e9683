"""Streamlit pieces shared by the pages (the core in cnn_lab/ never imports Streamlit)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly
import streamlit as st
import torch
from streamlit.runtime.pages_manager import PagesManager

import links
from cnn_lab import charts, checkpoints, downloads, evaluate, identity, images, jobs, runs
from cnn_lab.activations import ACTIVATIONS
from cnn_lab.identity import LOCAL, Person
from cnn_lab.inside import Subject, can_rebuild, run_subject
from cnn_lab.jobs import live
from cnn_lab.models import NORMS, ModelSpec
from cnn_lab.settings import load_settings
from cnn_lab.train import TrainResult


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


cached_sample = st.cache_resource(images.load_sample)


def image_picker(key: str, max_side: int = images.WORK_SIDE) -> images.LoadedImage:
    """Sample photo or upload; a bad upload gets one sentence and the previous image stays."""
    source = links.radio(st, "Image", ["Sample photo", "Upload"], key=f"{key}_source", horizontal=True)
    state_key = f"{key}_image"
    if source == "Sample photo":
        name = links.selectbox(st, "Sample", list(images.SAMPLES), key=f"{key}_sample")
        st.session_state[state_key] = cached_sample(name, max_side)
    else:
        upload = st.file_uploader("Upload a photo", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                                  key=f"{key}_upload")
        seen = st.session_state.get(f"{key}_upload_seen")  # (file id, error): decode each upload once
        if upload is not None and (seen is None or seen[0] != upload.file_id):
            try:
                st.session_state[state_key] = images.load_image(upload.getvalue(), max_side)
                seen = (upload.file_id, None)
            except images.ImageError as error:
                seen = (upload.file_id, str(error))
            st.session_state[f"{key}_upload_seen"] = seen
        if upload is not None and seen[1]:
            st.error(seen[1])
    if state_key not in st.session_state:
        st.session_state[state_key] = cached_sample(next(iter(images.SAMPLES)), max_side)
    loaded = st.session_state[state_key]
    if loaded.note:
        st.caption(loaded.note)
    return loaded


# ---------------------------------------------------------------- downloads started from a page


def download_panel(name: str, label: str, button: str, work, ready: bool, offline: str) -> Path:
    """A download the page starts: a button, then live progress (bytes, speed, ETA) and Cancel, in a thread the
    process owns, so a refresh or a second tab finds it. Returns what `work` made once it is done; until then the
    page stops here. When `ready` is False (its server cannot be reached) it says `offline` and offers no button."""
    task = downloads.BACKGROUND.get(name)
    if task is not None and task.status == "done":
        return task.result
    if task is None or not task.alive:
        if task is not None and task.message:
            (st.info if task.status == "cancelled" else st.error)(task.message)
        if not ready:
            st.warning(offline)
        elif st.button(button, type="primary"):
            downloads.BACKGROUND.start(name, label, work)
            st.rerun()
        st.stop()

    @st.fragment(run_every=1.0)
    def progress() -> None:
        if not task.alive:
            st.rerun(scope="app")
        shown = task.progress
        st.progress(shown.fraction if shown else 0.0, text=shown.text() if shown else f"downloading {label}: connecting")
        if st.button("Cancel the download"):
            task.cancel.set()

    progress()
    st.stop()


# ---------------------------------------------------------------- model settings (train page)


def ints(text: str, fallback: list[int]) -> list[int]:
    """'24, 48, 96' -> [24, 48, 96]; anything else keeps the fallback, with a sentence."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
        if values and all(v > 0 for v in values):
            return values
    except ValueError:
        pass
    st.warning(f"'{text}' is not a list of positive whole numbers; keeping {fallback}.")
    return fallback


def model_settings(spec: ModelSpec, settings: tuple[str, ...], key: str) -> None:
    """Widgets for the ModelSpec fields that this model reads (the model registry names them), editing `spec`;
    a setting the model would ignore is not shown."""
    if not settings:
        st.caption("This model has no settings of its own.")
        return
    a, b, c = st.columns(3)
    if "activation" in settings:
        chosen = links.selectbox(a, "Activation", list(ACTIVATIONS), list(ACTIVATIONS).index(spec.activation),
                                 key=f"{key}_act", name="model.activation")
        if chosen != spec.activation:  # another function: its own parameters, at their defaults
            spec.activation, spec.activation_params = chosen, {}
        for param, (default, low, high) in ACTIVATIONS[chosen].params.items():
            value = float(spec.activation_params.get(param, default))
            spec.activation_params[param] = links.slider(a, f"{chosen}: {param}", low, high, value,
                                                         key=f"{key}_{chosen}_{param}",
                                                         name=f"model.activation_params.{param}")
    if "norm" in settings:
        spec.norm = links.selectbox(b, "Normalisation layers", list(NORMS), list(NORMS).index(spec.norm),
                                    format_func=lambda n: NORMS[n].title, key=f"{key}_norm", name="model.norm")
    if "dropout" in settings:
        spec.dropout = links.slider(b, "Dropout", 0.0, 0.8, spec.dropout, key=f"{key}_drop", name="model.dropout")
    if "dropconnect" in settings:
        spec.dropconnect = links.slider(b, "DropConnect (linear layers' weights)", 0.0, 0.8, spec.dropconnect,
                                        key=f"{key}_dropconnect", name="model.dropconnect",
                                        help="Drops this fraction of the linear layers' weights at each training "
                                        "step (lesson 19); dropout drops activations instead.")
    if "widths" in settings:
        spec.widths = ints(links.text_input(c, "Conv widths", ", ".join(map(str, spec.widths)), key=f"{key}_widths",
                                            name="model.widths"), spec.widths)
    if "linear_stem" in settings:
        spec.linear_stem = links.toggle(c, "Linear whitened stem", spec.linear_stem, key=f"{key}_linear_stem",
                                        name="model.linear_stem",
                                        help="On: the stem's whitening filters alone (12 for colour images), no "
                                        "activation. Off: airbench's stem (each filter and its negative), then GELU.")
    if "hidden" in settings:
        spec.hidden = ints(links.text_input(c, "Hidden sizes", ", ".join(map(str, spec.hidden)), key=f"{key}_hidden",
                                            name="model.hidden"), spec.hidden)


# ---------------------------------------------------------------- who is asking (shared mode)


def signed_in() -> Person | None:
    """Who is asking, without asking: you in local mode; in shared mode st.login's user, or the person whose key
    the URL (or this tab) holds; None when nobody has signed in yet."""
    settings = load_settings()
    if not settings.shared:
        return LOCAL
    if settings.login:
        return identity.logged_in(st.user.email, settings.admins) if st.user.is_logged_in else None
    key = st.query_params.get("who") or st.session_state.get("who", "")
    person = identity.People().by_key(key)
    if person is not None:
        st.session_state["who"] = key
        if st.query_params.get("who") != key:  # kept in the URL, so a refresh is the same person
            st.query_params["who"] = key
        st.sidebar.caption(f"Signed in as **{person.name}**{' (admin)' if person.admin else ''}. This page's link "
                           "holds your key: bookmark it to find your jobs again.")
    return person


def who_is_asking() -> Person:
    """Local mode: you, who own every job. Shared mode: st.login's user (when CNN_LAB_LOGIN is on), or the name
    claimed with the key that the URL keeps; until then a sign-in form, and the page stops there."""
    person = signed_in()
    if person is not None:
        return person
    settings = load_settings()
    if settings.login:
        st.info("This is a shared server: log in to train, so that your jobs are yours.")
        st.button("Log in", on_click=st.login)
        st.stop()
    with st.form("sign_in"):
        st.markdown("**This is a shared server.** Give a name to own your jobs; the class sees it in the queue.")
        name = st.text_input("Your name")
        password = st.text_input("Admin password (leave it empty to join as a learner)", type="password")
        if st.form_submit_button("Join", type="primary"):
            try:
                person, key = identity.People().claim(name, password, settings.admin_password)
            except identity.IdentityError as error:
                st.error(str(error))
            else:
                st.session_state["who"] = st.query_params["who"] = key
                st.rerun()
    st.stop()


# ---------------------------------------------------------------- training jobs (train and transfer pages)


def job_controls(kind: str, start_label: str, make_job, person: Person, can_start: bool = True) -> jobs.Job | None:
    """Start / Pause / Resume / Stop for this tab's job of `kind` (else your newest); `make_job()` submits one.
    Start queues when the device is busy; only the owner or an admin sees the other buttons enabled."""
    job = jobs.MANAGER.get(st.session_state.get(f"job_{kind}", "")) or jobs.MANAGER.latest(kind, person)
    start, pause, resume, stop = st.columns(4)
    if start.button(start_label, type="primary", disabled=not can_start):
        try:
            job = make_job()
            st.session_state[f"job_{kind}"] = job.run_id
        except jobs.QueueFull as error:
            st.warning(str(error))
    if job and job.alive:
        allowed = jobs.MANAGER.can_control(job, person)
        if pause.button("Pause", disabled=job.status != "running" or not allowed):
            jobs.MANAGER.pause(job, person)
        if resume.button("Resume", disabled=job.status != "paused" or not allowed):
            jobs.MANAGER.resume(job, person)
        if stop.button("Stop" if job.status != "queued" else "Leave the queue", disabled=not allowed):
            jobs.MANAGER.stop(job, person)
    return job


def _queue(person: Person) -> None:
    """Every job that waits or runs, everyone's: whose, what, where, its place in the queue, how far along.
    An admin can stop any of them."""
    alive = [job for job in jobs.MANAGER.jobs() if job.alive]
    if not alive:
        st.caption("The device is free: no job is running or waiting.")
        return
    rows = []
    for job in alive:
        progress = job.log.snapshot()[2]
        done = progress.get("step", 0) / max(1, progress.get("total_steps", 1))
        position = jobs.MANAGER.position(job)
        rows.append({"who": job.owner, "what": job.kind, "status": job.status,
                     "where": progress.get("node", "this machine") if job.status != "queued" else "",
                     "queue": f"#{position} · {live.wait_words(job)}" if position else "",
                     "progress": f"{done:.0%}" if job.status != "queued" else ""})
    st.dataframe(rows, hide_index=True)
    if person.admin and load_settings().shared:
        a, b = st.columns([3, 1])
        names = {job.run_id: f"{job.owner} · {job.kind} · {job.status}" for job in alive}
        target = a.selectbox("Admin: a job", list(names), format_func=names.get)
        if b.button("Stop this job"):
            jobs.MANAGER.stop(jobs.MANAGER.get(target), person)


def live_panel(job: jobs.Job | None, empty_note: str, person: Person) -> None:
    """This tab's job (progress, the per-step curve, the per-epoch curves, each layer's norms on demand) and the
    queue, in one fragment on purpose: Streamlit's front end can crash ("'setIn' cannot be called on an
    ElementNode", a blank page) when one fragment's timer fires while another fragment's st.rerun(scope="app")
    rebuilds the page. While this tab's job waits or runs, its progress and step curve are redrawn every second
    by the browser itself (live_chart), and the fragment reruns when the job's status or epoch count changes (the
    live chart's trigger), every second while the layer norms are shown, every 5 s while the queue is open or
    others' jobs run, and not at all once every job has ended (each rerun costs the server and the browser, and so
    a laptop's training, some CPU). When the job's status changes (it starts, pauses, ends), or the last of the
    others' jobs ends, the whole page reruns once, so the buttons, results and polling follow."""
    watching = job is not None and job.alive  # then the live chart tells the fragment when to rerun
    if watching and st.session_state.get(f"norms_{job.kind}", False):
        every = 1.0  # the layer norms are drawn by the fragment
    elif st.session_state.get("queue_open", load_settings().shared) and any(j.alive for j in jobs.MANAGER.jobs()):
        every = 5.0  # the queue, open
    elif watching:
        every = 60.0  # only in case the browser could not run the live chart
    else:
        every = 5.0 if any(j.alive for j in jobs.MANAGER.jobs()) else None  # others' jobs, until they end

    @st.fragment(run_every=every)
    def live() -> None:
        if job is None:
            st.info(empty_note)
        else:
            _job_progress(job)
        with st.expander("The queue: everyone's jobs", expanded=load_settings().shared, key="queue_open",
                         on_change="rerun") as queue:
            if queue.open:  # drawn only when open: a hidden table redrawn every second still costs the browser
                _queue(person)
        if job is not None:
            seen, now = f"status_seen_{job.kind}", (job.status, job.alive)  # it started, ended, its thread is done
            if st.session_state.get(seen, now) != now:  # then the whole page follows, once
                st.session_state[seen] = now
                st.rerun(scope="app")
            st.session_state[seen] = now
        if every == 5.0 and not any(j.alive for j in jobs.MANAGER.jobs()):
            st.rerun(scope="app")  # the others' jobs have all ended: stop polling

    live()


def live_base() -> str:
    """Where the live charts' routes are served (under server.baseUrlPath when the app is behind one)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/cnn-lab" if base else "/cnn-lab"


def live_routes() -> list:
    """The routes app.py serves beside Streamlit's: a job's live view by its watch token (jobs.live; an unknown
    token gets 404), and Plotly's own script for the live chart."""
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    async def view(request):
        found = live.watched_view(request.path_params["token"], request.query_params.get("smoothing"))
        if found is None:
            return Response(status_code=404)
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    async def plotly_js(request):
        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                            headers={"Cache-Control": "max-age=86400"})

    return [Route(f"{live_base()}/live/{{token}}", view), Route(f"{live_base()}/plotly.min.js", plotly_js)]


LIVE_COMPONENT = st.components.v2.component(
    "cnn_lab_live_chart", js=(Path(live.__file__).parent / "live_chart.js").read_text(), isolate_styles=False, css="""
    .cnn-lab-live-text { font-size: 14px; margin: 0 0 6px; }
    .cnn-lab-live-track { height: 8px; border-radius: 4px; background: var(--st-secondary-background-color, #f0f2f6); }
    .cnn-lab-live-track div { height: 100%; border-radius: 4px; background: var(--st-primary-color, #ff4b4b); }
    .cnn-lab-live-title { margin: 16px 0 0; }
    .cnn-lab-live-title span { font-size: 14px; margin-left: 12px; }
    .cnn-lab-live-chart { height: 250px; }""")


def live_chart(job: jobs.Job, smoothing: float, log_y: bool) -> None:
    """The job's progress bar and train loss per step, drawn by the browser and redrawn there every second from
    the job's live view (jobs.live); a new status or epoch reruns the fragment around it."""
    figure = charts.live_step_loss_figure(smoothing, log_y)
    LIVE_COMPONENT(key=f"live_{job.kind}", on_changed_change=lambda: None, data={
        "url": f"{live_base()}/live/{job.watch_token}?smoothing={smoothing}", "plotly": f"{live_base()}/plotly.min.js",
        "figure": json.loads(figure.to_json()), "config": charts.LIVE_CHART, "view": live.live_view(job, smoothing)})


def _job_progress(job: jobs.Job) -> None:
    steps, epochs, progress = job.log.snapshot()
    smoothing = st.session_state.get(f"ema_{job.kind}", 0.9)  # the controls are drawn under the chart
    log_y = st.session_state.get(f"log_y_{job.kind}", False)
    if job.alive:
        live_chart(job, smoothing, log_y)
    else:
        fraction, text = live.progress_line(job)
        st.progress(fraction, text=text)
        if steps:
            st.markdown("**Train loss per step**")
            st.plotly_chart(charts.step_loss_figure(steps, smoothing, log_y), key=f"steps_{job.kind}", theme=None)
    a, b = st.columns(2)
    a.slider("Smoothing (EMA)", 0.0, 0.99, 0.9, key=f"ema_{job.kind}")
    b.toggle("Log-scale loss", key=f"log_y_{job.kind}")
    if job.status == "failed":
        st.error(job.message)
    elif job.status == "stopped" and job.result is None:  # stopped before training, e.g. a cancelled download
        st.info(job.message)
    elif not job.alive and job.message:
        st.success(job.message)
    if epochs:
        st.plotly_chart(charts.epoch_figure({job.run_id: epochs}, log_y), key=f"epochs_{job.kind}")
    trace = progress.get("layer_norms")
    if trace and trace["steps"] and st.toggle("Each layer's gradient norm (vanishing or exploding gradients)",
                                              key=f"norms_{job.kind}"):
        which = st.radio("Norm of", ["grad", "weight"], horizontal=True, key=f"norms_which_{job.kind}",
                         format_func={"grad": "the gradients", "weight": "the weights"}.get)
        st.plotly_chart(charts.layer_norms_figure(trace, which), key=f"norms_chart_{job.kind}")
        first, last = trace["grad"][-1][0], trace["grad"][-1][-1]
        st.caption(f"Now: the first layer's gradient norm is {first:.2g}, the last layer's {last:.2g} "
                   f"({last / max(first, 1e-30):.3g}x the first's).")


def picture(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) uint8 tensor -> an array st.image draws."""
    array = image.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def results_panel(result: TrainResult, key: str, run_id: str = "") -> None:
    """Test accuracy, per-class accuracy, the confusion matrix (click a cell) and its misclassified images, each
    of which opens on the "Inside the network" page when the run is given."""
    classes = result.classes
    st.subheader(f"Test accuracy: {result.test_acc:.1%}")
    matrix = evaluate.confusion_matrix(result.test_probs, result.test_labels, len(classes)).numpy()
    clicked = st.session_state.get(f"confusion_{key}", {}).get("selection", {}).get("points", [])
    if clicked and st.session_state.get(f"confusion_{key}_applied") != (clicked[0]["x"], clicked[0]["y"]):
        st.session_state[f"confusion_{key}_applied"] = (clicked[0]["x"], clicked[0]["y"])  # a new click on a cell
        st.session_state[f"true_{key}"], st.session_state[f"pred_{key}"] = int(clicked[0]["y"]), int(clicked[0]["x"])
    confusions = matrix.copy()
    np.fill_diagonal(confusions, -1)
    worst_true, worst_predicted = divmod(int(confusions.argmax()), len(classes))
    for name, worst in ((f"true_{key}", worst_true), (f"pred_{key}", worst_predicted)):
        if st.session_state.get(name, len(classes)) >= len(classes):  # a new result: open on the most confused
            st.session_state[name] = worst
    left, right = st.columns(2)
    left.plotly_chart(charts.bars(classes, evaluate.per_class_accuracy(result.test_probs, result.test_labels,
                                                                       len(classes)), "Accuracy per class"),
                      key=f"per_class_{key}")
    right.plotly_chart(charts.confusion_figure(matrix, classes), on_select="rerun", selection_mode="points",
                       key=f"confusion_{key}")
    st.markdown("**Misclassified test images**: click a cell of the confusion matrix (it opens on the most confused)")
    a, b = st.columns(2)
    true = a.selectbox("True class", range(len(classes)), format_func=classes.__getitem__, key=f"true_{key}")
    predicted = b.selectbox("Predicted as", range(len(classes)), format_func=classes.__getitem__, key=f"pred_{key}")
    wrong = evaluate.misclassified(result.test_probs, result.test_labels, true, predicted)[:12]
    if len(wrong) == 0:
        st.caption("No test image of this cell.")
    columns = st.columns(6)
    for slot, index in zip(columns * 2, wrong.tolist()):
        top3 = evaluate.top_k(result.test_probs[index], classes, 3)
        slot.image(picture(result.test_images[index]), width=110,
                   caption=", ".join(f"{c} {p:.0%}" for c, p in top3))
        if run_id and slot.button("Inside", key=f"inside_{key}_{index}", help="Open it on \"Inside the network\""):
            open_inside(run_id, test_image=index)


def open_inside(run_id: str, test_image: int | None = None) -> None:
    """Go to "Inside the network" with this run (and one of its test images) chosen."""
    choices = {"inside_model": run_id}
    if test_image is not None:
        choices |= {"inside_image_from": "A test image of this run", "inside_wrong": False, "inside_index": test_image}
    st.session_state["inside_open"] = choices  # that page sets its widgets from it (widget state of another page
    st.switch_page("pages/7_inside.py")       # would be cleared on the way)


def upload_to_tensor(upload, shape: tuple[int, int, int]) -> tuple[images.LoadedImage, torch.Tensor] | None:
    """An uploaded photo as a uint8 (C, H, W) tensor of the model's input shape; None (with a sentence) if bad."""
    try:
        loaded = images.load_image(upload.getvalue())
    except images.ImageError as error:
        st.error(str(error))
        return None
    return loaded, images.to_model_input(loaded.image, shape)


def photo_input(key: str, label: str = "A photo to classify"):
    """An uploaded file or a camera shot (st.camera_input, which asks for the camera only once chosen)."""
    if st.radio("Photo from", ["Upload", "Camera"], horizontal=True, key=f"{key}_from") == "Camera":
        return st.camera_input("Take a photo", key=f"{key}_camera")
    return st.file_uploader(label, type=["jpg", "jpeg", "png", "webp", "bmp", "gif"], key=f"{key}_upload")


def classify_panel(subject: Subject, key: str) -> None:
    """Upload a photo or take one with the camera: the model's top-5, beside the photo as the model sees it."""
    photo = photo_input(key)
    converted = upload_to_tensor(photo, subject.input_shape) if photo else None
    if converted:
        loaded, tensor = converted
        probs = evaluate.classify(subject.model, tensor, subject.mean, subject.std)
        top = evaluate.top_k(probs, subject.classes, min(5, len(subject.classes)))
        a, b = st.columns([1, 3])
        a.image(loaded.image, width=160)
        b.plotly_chart(charts.bars([c for c, _ in top], [p for _, p in top], f"Top-{len(top)}"), key=f"{key}_top")


@st.cache_resource(max_entries=4)
def saved_subject(run_id: str) -> Subject:
    """A saved run's model, rebuilt once per run (not on every rerun of the page)."""
    return run_subject(runs.load_run(run_id))


def run_files(record: runs.RunRecord) -> None:
    """A finished run's downloads: the checkpoint (everything it needs, to use elsewhere or import back), ONNX,
    the weights alone and the config. Each file is made only when its button is clicked."""
    a, b, c, d = st.columns(4)
    a.download_button("Checkpoint (.pt)", lambda: checkpoints.checkpoint_bytes(record), f"{record.run_id}.pt",
                      key=f"ckpt_{record.run_id}", help="Config, weights, class names, input shape and normalisation "
                      "in one file: torch.load(path, weights_only=True), or import it back here.")
    b.download_button("ONNX", lambda: checkpoints.onnx_bytes(record), f"{record.run_id}.onnx",
                      key=f"onnx_{record.run_id}", help="For onnxruntime and other runtimes: input 'pixels' "
                      "(N, C, H, W) in [0, 1], output 'logits'; the class names are in the file's metadata.")
    c.download_button("Weights (state_dict)", (record.path / "model.pt").read_bytes,
                      f"{record.run_id}-state_dict.pt", key=f"weights_{record.run_id}")
    d.download_button("Config (JSON)", json.dumps(record.config, indent=2), f"{record.run_id}.json",
                      key=f"config_{record.run_id}")


def saved_run_panel(records: list[runs.RunRecord], key: str) -> None:
    """Pick a finished run (the newest first): download it, open it on "Inside the network", classify with it."""
    usable = [r for r in records if r.status in ("finished", "stopped") and can_rebuild(r)]
    if not usable:
        st.caption("A finished run (or an imported one) appears here, to download, look inside and classify with.")
        return
    record = st.selectbox("Run", usable, key=f"{key}_saved", format_func=lambda r: (
        f"{r.run_id} · test {r.test_acc or 0:.1%}" + (" · imported" if "Imported" in r.message else "")))
    run_files(record)
    look_inside_button(record.run_id)
    try:
        subject = saved_subject(record.run_id)
    except (ValueError, RuntimeError) as error:  # weights unavailable, or not this model's
        st.error(f"Run {record.run_id} cannot be rebuilt: {error}.")
        return
    st.markdown(f"**Classify a photo with run {record.run_id}**")
    classify_panel(subject, f"{key}_classify")


def import_panel(person: Person, key: str) -> None:
    """Upload a checkpoint that CNN Lab exported: it becomes a run of yours (weights_only loading; a bad file gets
    one sentence). Each upload is imported once, however often the page reruns."""
    upload = st.file_uploader("Import a trained model (a CNN Lab checkpoint, .pt)", type=["pt"], key=f"{key}_import")
    if upload is None:
        return
    seen = st.session_state.get(f"{key}_import_seen")
    if seen is None or seen[0] != upload.file_id:
        try:
            seen = (upload.file_id, checkpoints.import_checkpoint(upload.getvalue(), owner=person.name).run_id, "")
        except checkpoints.CheckpointError as error:
            seen = (upload.file_id, "", str(error))
        st.session_state[f"{key}_import_seen"] = seen
    if seen[2]:
        st.error(seen[2])
    else:
        st.success(f"Imported as run {seen[1]}: pick it in the list of runs to classify with it or look inside it.")
