from dataclasses import replace

import numpy as np
import streamlit as st
import torch

from cnn_lab import augment, charts, data, downloads, evaluate, explain, jobs, limits, overrides, subjects, transfer
from cnn_lab.backbones import BACKBONES, WeightsUnavailable, weights_advice
from cnn_lab.device import cpu_bf16
from cnn_lab.settings import load_settings
from ui.download_panel import download_panel
from ui.identity import preset_owner, who_is_asking
from ui.inputs import once_per_upload, photo_from, photo_input, picture
from ui.jobs_panel import job_controls, live_panel, recipe_words, resumable_runs
from ui.nav import look_inside_button, page_header
from ui.progress import once_with_progress
from ui.results import import_panel, results_panel, run_files

page_header(__file__)
person = who_is_asking()
shared = load_settings().shared
config = transfer.TransferConfig()


def dataset_at(source: str, size: int) -> data.ImageDataset:
    """The photos at this size, once for the server; the first decoding shows its count and ETA."""
    def load(show) -> data.ImageDataset:
        reporter = downloads.Reporter(report=lambda progress: show(progress.fraction, progress.text()))
        return transfer.load_images(transfer.TransferConfig(data=source, image_size=size), reporter)

    return once_with_progress("transfer photos", (source, size), load,
                              "Reading the photos (the first time only; later visits read the cache)", limit=4)


# ---------------------------------------------------------------- data
st.header("1. Data")
ready = transfer.first_ready_source()
if ready is None:  # a fresh machine: say what each source is and what to do
    st.info("No boat photos are on this machine yet. Four ways to get some:\n\n" + "\n".join(
        f"- **{source.title}**: {source.about} {source.todo}" for source in transfer.SOURCES.values()))
choice = st.radio("Dataset", list(transfer.SOURCES), index=list(transfer.SOURCES).index(ready or "upload"),
                  format_func=lambda name: transfer.SOURCES[name].title
                  + ("" if transfer.SOURCES[name].ready() or name in ("upload", "folder") else " (not here yet)"),
                  horizontal=True, key="source")
try:
    if choice == "boats9":
        if not transfer.SOURCES["boats9"].ready():
            st.warning(f"boats9 is not on this machine. {transfer.SOURCES['boats9'].todo}")
            st.stop()
        config.data = "boats9"
    elif choice == "folder":
        folder = st.text_input("Folder (ImageFolder layout: <root>/<class>/ or <root>/{train,val,test}/<class>/)",
                               key="folder")
        if not folder.strip():
            st.caption("Type a folder's path to use the photos in it.")
            st.stop()
        config.data = str(limits.allowed_folder(folder, person.name))
    elif choice == "upload":
        upload = st.file_uploader("A zip of class folders", type=["zip"])
        if upload is None:
            st.stop()
        # hashed and stored (named by its content) once, not on every rerun of the page
        saved = once_per_upload(upload, "zip_saved",
                                lambda file: str(limits.save_upload(file.getvalue(), file.name, person.name)),
                                errors=(limits.LimitError,))
        if saved.error:
            raise limits.LimitError(saved.error)
        config.data = saved.value
    else:
        folder = transfer.kaggle_boats_folder() or download_panel(
            "kaggle", "the Kaggle boat types", "Download the Kaggle boat types", transfer.download_kaggle_boats,
            ready=downloads.reachable(transfer.KAGGLE_SERVER),
            offline="The Kaggle boat types cannot be downloaded now: this machine cannot reach kaggle.com. "
                    "Use boats9 or your own photos instead.", person=person)
        config.data = str(folder)
    dataset = dataset_at(config.data, config.image_size)
except (data.DatasetError, data.DatasetUnavailable, limits.LimitError) as error:
    st.error(str(error))
    st.stop()

counts = {split: dataset.class_counts(split) for split in dataset.splits}
st.caption(f"{len(dataset.classes)} classes; " + ", ".join(f"{split}: {sum(c)}" for split, c in counts.items())
           + (f"; {dataset.skipped} unreadable files skipped" if dataset.skipped else ""))
fig = charts.bars(dataset.classes, counts["train"], "Training images per class", percent=False)
left, right = st.columns([2, 3])
left.plotly_chart(fig, key="counts", alt="Training images per class, as bars: " + ", ".join(
    f"{name} {count}" for name, count in zip(dataset.classes, counts["train"])))
with right:
    labels = dataset.splits["train"].labels
    for index, name in enumerate(dataset.classes[:9]):
        first = torch.nonzero(labels == index).flatten()[:4].tolist()
        columns = st.columns([2, 1, 1, 1, 1])
        columns[0].caption(name)
        for slot, i in zip(columns[1:], first):
            slot.image(picture(dataset.splits["train"].images[i]), width="stretch", alt=f"A training photo of a {name}")

# ---------------------------------------------------------------- backbone and mode
st.header("2. Recipe, backbone and training mode")
RECIPES = {name: recipe for name, (_, recipe) in transfer.PRESETS.items()}
# Each setting's widget, by the config field it sets (the mode's is its own: f"mode|{recipe}")
WIDGETS = {"backbone": "backbone", "flip_features": "flip", "unfreeze": "unfreeze", "backbone_lr_factor": "backbone_lr",
           "augment_preset": "augment", "image_size": "size", "head_from_probe": "lpft", "frozen_views": "views",
           "tta": "tta", "epochs": "epochs", "lr": "lr", "weight_decay": "wd", "label_smoothing": "ls",
           "batch_size": "bs"}


def widget_key(name: str, recipe: str, mode: str) -> str:
    """A widget's key: a new recipe (or mode, for the settings whose defaults follow it) starts from its values."""
    return f"tf_{name}|{recipe}" + (f"|{mode}" if name in ("epochs", "lr", "wd", "bs") else "")


# A tab that opens (a refresh, a second tab, the app restarted) while your run trains shows that run's settings.
running = jobs.MANAGER.get(st.session_state.get("job_transfer", "")) or jobs.MANAGER.latest("transfer", person)
if "tf_recipe" not in st.session_state and running and running.alive:
    nearest, changed = overrides.nearest(RECIPES, running.config)
    st.session_state["tf_recipe"], st.session_state[f"mode|{nearest}"] = nearest, running.config.mode
    for field, value in changed.items():
        if field in WIDGETS:
            st.session_state[widget_key(WIDGETS[field], nearest, running.config.mode)] = value
recipe = st.selectbox("Start from", list(transfer.PRESETS), key="tf_recipe")
st.caption(transfer.PRESETS[recipe][0])
config = replace(transfer.preset(recipe), data=config.data)


def key(name: str) -> str:
    return widget_key(name, recipe, config.mode)


status = {name: spec.status() for name, spec in BACKBONES.items()}
st.dataframe([{"backbone": spec.title, "weights": status[name]} for name, spec in BACKBONES.items()], hide_index=True)
if st.session_state.pop("tf_use_lite0", False):  # the button below, from the last run of the page
    st.session_state[key("backbone")] = "efficientnet_lite0"
config.backbone = st.selectbox("Backbone", list(BACKBONES), list(BACKBONES).index(config.backbone),
                               format_func=lambda n: f"{BACKBONES[n].title} · {status[n]}", key=key("backbone"))
weights_ready, weights_note = weights_advice(config.backbone)
if weights_note:
    (st.info if weights_ready else st.warning)(weights_note)
if not weights_ready and st.button("Use EfficientNet-Lite0 instead"):
    st.session_state["tf_use_lite0"] = True
    st.rerun()
a, b, c = st.columns(3)
config.mode = a.radio("Mode", transfer.MODES, transfer.MODES.index(config.mode), format_func={
    "probe": "train only a new last layer (linear probe)", "partial": "also retrain the last N blocks (fine-tune)",
    "full": "retrain the whole network (full fine-tuning)"}.get, key=f"mode|{recipe}")
if config.mode == "probe":
    config.flip_features = a.toggle("Also use mirrored images' features", True, key=key("flip"))
    if transfer.features_cached(config.backbone, dataset):
        st.success("This dataset's features from this backbone are cached: the probe will take seconds.")
    st.caption("The pretrained network runs once over the photos and its outputs (features) are kept; then only "
               "the new last layer trains on them, in seconds. "
               "Augmentation cannot apply here, because each epoch would need the backbone to run again on new "
               "views; the mirrored features are the one augmentation computed once, ahead of time.")
else:
    if config.mode == "partial":
        config.unfreeze = a.slider("Blocks to fine-tune (from the end)", 0, 8, config.unfreeze, key=key("unfreeze"))
    else:
        config.backbone_lr_factor = a.select_slider("Backbone learning rate / head learning rate",
                                                    [0.01, 0.03, 0.1, 0.3, 1.0], config.backbone_lr_factor,
                                                    key=key("backbone_lr"))
    presets = [""] + augment.list_presets(preset_owner(person))
    config.augment_preset = a.selectbox("Augmentation preset", presets, presets.index(config.augment_preset),
                                        format_func=lambda p: p or "flips only", key=key("augment"))
    config.image_size = a.select_slider("Image size (pixels)", [160, 224, 288, 320], config.image_size, key=key("size"))
    config.head_from_probe = a.toggle("Train the new last layer alone first (LP-FT)", config.head_from_probe,
                                      help="A random head's first gradients distort the pretrained features; a "
                                           "probe's head, trained in seconds on cached features, does not.",
                                      key=key("lpft"))
    if config.mode == "partial":
        config.frozen_views = a.slider(
            "Run the frozen blocks once, on this many views of each photo (0: at every step)", 0,
            transfer.MAX_FROZEN_VIEWS,
            config.frozen_views, key=key("views"),
            help="For a CPU: the frozen blocks are most of the work, so they run once on each photo, its mirror "
                 "and draws of the augmentation preset, and only the blocks that train run at every step.")
    else:
        config.frozen_views = 0  # full fine-tuning has no frozen blocks
    if not config.frozen_views:
        config.tta = a.toggle("Test on flipped and shifted copies too, and average (TTA)", config.tta, key=key("tta"))
    if transfer.preset(recipe).mode == "probe":  # switched away from the probe recipe: fine-tuning's own defaults
        config.epochs, config.lr, config.weight_decay, config.batch_size = 10, 0.01, 5e-4, 32
config.epochs = b.number_input("Epochs", 1, 500, config.epochs, key=key("epochs"))
config.lr = b.number_input("Learning rate", 1e-5, 10.0, config.lr, format="%g", key=key("lr"))
config.weight_decay = c.number_input("Weight decay", 0.0, 1.0, config.weight_decay, format="%g", key=key("wd"))
config.label_smoothing = c.slider("Label smoothing", 0.0, 0.4, config.label_smoothing, key=key("ls"))
config.batch_size = c.number_input("Batch size", 1, 1024, config.batch_size, key=key("bs"))
if config.mode != "probe" and torch.cuda.is_available():
    st.caption("Fine-tuning runs the whole network on every image in every epoch: seconds on this GPU.")
elif config.mode == "partial" and config.frozen_views:  # after the epochs input, so that the estimate follows it
    passes, minutes = transfer.frozen_pass_minutes(config, {split: sum(c) for split, c in counts.items()})
    st.caption(f"The frozen blocks run once, over {passes:,} photos and views: about {minutes:.1f} minutes on 2 CPU "
               f"cores; then each of the {config.epochs} epochs trains the last {config.unfreeze} blocks on every view.")
    if recipe == transfer.AMX_RECIPE and cpu_bf16() != "AMX":
        st.info(f"This CPU has no AMX, so this recipe takes twice as long here and more (10 minutes or more on 2 "
                f"cores): \"{transfer.CPU_RECIPE}\" reaches about 95% in 5 minutes.")
elif config.mode != "probe":
    st.warning(f"No GPU on this machine: fine-tuning runs the whole network on every image in every epoch, "
               f"about a minute per epoch on 2 CPU cores at 288 pixels, so roughly {config.epochs} minutes. "
               f"\"{transfer.CPU_RECIPE}\" runs the frozen blocks once instead (minutes); the linear probe takes "
               "under a minute.")


st.session_state["transfer_config"] = config  # what Start runs (the settings tests read it too)


def start_job() -> jobs.Job:
    return jobs.MANAGER.submit(config, kind="transfer", owner=person)


# ---------------------------------------------------------------- training
st.header("3. Train")
start_label = "Start the linear probe" if config.mode == "probe" else "Start fine-tuning"
job = job_controls("transfer", start_label, start_job, person, can_start=weights_ready)
live_panel(job, "No transfer run yet: choose the settings above and press Start.", person,
           about=recipe_words(RECIPES, job.config, leave_out=("data",)) if job else "")
resumable_runs(person, "transfer")
if job and not job.alive and job.result is not None:
    results_panel(job.result, "transfer", job.run_id)
    extras = job.result.extras
    if extras.get("frozen_seconds"):
        st.caption(f"The frozen blocks ran over the photos' views in {extras['frozen_seconds']:.1f} s, the blocks "
                   f"that train took {extras['head_seconds']:.1f} s.")
    elif extras.get("feature_seconds"):
        st.caption(f"Feature extraction {extras['feature_seconds']:.1f} s (cached for the next run), head training "
                   f"{extras['head_seconds']:.1f} s.")

# ---------------------------------------------------------------- classify a photo
st.header("4. Classify a photo")
with st.expander("Import a trained model"):
    import_panel(person, "transfer")
finished = jobs.MANAGER.runs_of(person, "transfer", usable=True)
if not finished:
    st.caption("Train a transfer run first; the best finished run is then used here.")
    st.stop()
finished.sort(key=lambda r: r.test_acc or 0, reverse=True)
record = st.selectbox("Run", finished, format_func=lambda r: f"{r.run_id} · {r.config['backbone']} · "
                                                                 f"{r.config['mode']} · test {r.test_acc:.1%}")
run_files(record)
look_inside_button(record.run_id)


try:
    subject = subjects.subject_of(record.run_id)  # the server's one cache of models
except (WeightsUnavailable, ValueError) as error:
    st.error(f"Run {record.run_id} cannot be rebuilt: {error}")
    st.stop()
size = subject.input_shape[-1]


@st.cache_data(max_entries=16)
def predict(run_id: str, image: np.ndarray, target: int | None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, int]:
    """Probabilities without and with TTA, and Grad-CAM, for one photo: computed once per photo and class,
    not on every rerun of the page."""
    subject, photo = subjects.subject_of(run_id), torch.from_numpy(image)
    plain = evaluate.classify(subject.model, photo, subject.mean, subject.std)
    averaged = evaluate.classify(subject.model, photo, subject.mean, subject.std, tta=True)
    cam, explained = explain.grad_cam(subject.model, subject.model.cam_layer, subject.prepare(photo), target)
    return plain, averaged, cam.numpy(), explained


upload = photo_input("photo", choices=("Upload", "Camera", "A test image"))
if upload != "A test image":
    photo = photo_from(upload, "photo")
    if photo is None:
        st.stop()
    tensor = subject.input_of(photo.image)
else:
    tests = dataset_at(config.data, size).splits["test"].images  # at the size the run was trained at
    tensor = tests[st.slider("Test image", 0, len(tests) - 1, 0)]
k = st.slider("Top-k", 1, len(record.classes), min(5, len(record.classes)))
tta = st.toggle("Test-time augmentation (average flips, shifts and a zoom)")
left, right = st.columns([1, 2])
target = left.selectbox("Grad-CAM for class", ["the predicted class", *record.classes])
plain, averaged, cam, explained = predict(record.run_id, tensor.numpy(),
                                          None if target == "the predicted class" else record.classes.index(target))
top = evaluate.top_k(averaged if tta else plain, record.classes, k)
right.plotly_chart(charts.bars([c for c, _ in top], [p for _, p in top], f"Top-{k}"), key="topk",
                   alt=charts.ranking_alt(f"The {k} likeliest classes", top))
if tta:
    alone = plain[record.classes.index(top[0][0])].item()
    right.caption(f"Confidence in {top[0][0]}: {alone:.1%} on the photo alone, {top[0][1]:.1%} averaged over the views.")
left.markdown(f"**Where the network looks for {record.classes[explained]}** (Grad-CAM: red is where that class's "
              "evidence comes from)")
left.plotly_chart(charts.overlay_figure(picture(tensor), cam), key="cam",
                  alt=f"The photo with a Grad-CAM heat map over it: red where the evidence for "
                      f"{record.classes[explained]} lies")
