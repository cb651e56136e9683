from pathlib import Path

import streamlit as st
import torch

from cnn_lab import augment, charts, jobs, limits, overrides, runs
from cnn_lab.data import DATASETS, availability
from cnn_lab.models import MODELS, first_conv_weights
from cnn_lab.presets import PRESETS, default_preset, preset
from cnn_lab.settings import load_settings
from cnn_lab.augment import BATCHED_AUGMENTS
from cnn_lab.train import TrainConfig
from cnn_lab.normalise import NORMALISATIONS
from cnn_lab.train.optim import OPTIMIZERS, SCHEDULES
from ui import links
from ui.identity import preset_owner, who_is_asking
from ui.inputs import once_per_upload
from ui.jobs_panel import job_controls, live_panel, recipe_words, resumable_runs
from ui.model_settings import model_settings
from ui.nav import page_header
from ui.results import import_panel, results_panel, saved_run_panel
from ui.train_preview import train_preview

page_header(__file__)
person = who_is_asking()
shared = load_settings().shared


# ---------------------------------------------------------------- the recipe
DIGITS = "Digits (seconds, built in)"
PRESET_CONFIGS = {name: config for name, (_, config) in PRESETS.items()}


def open_on(config: TrainConfig) -> None:
    """Put `config` in the address bar as the nearest preset and its changes, for the widgets below to show it
    (what a loaded config file, or this tab's running job, sets)."""
    name, changed = overrides.nearest(PRESET_CONFIGS, config)
    if config.dataset not in DATASETS:  # a folder: the dataset control says "folder", the path goes beside
        changed |= {"dataset": "folder", "folder": config.dataset}
    kept = {k: st.query_params[k] for k in links.KEEP if k in st.query_params}
    st.query_params.from_dict(kept | {"preset": name} | {field: links.encode(v) for field, v in changed.items()})


# A tab that opens (a refresh, a second tab, the app restarted) while your run trains shows that run's settings,
# unless its link names settings of its own.
running = jobs.MANAGER.get(st.session_state.get("job_train", "")) or jobs.MANAGER.latest("train", person)
if "preset" not in st.session_state and not set(st.query_params) - set(links.KEEP) and running and running.alive:
    open_on(running.config)
if "use_digits" in st.session_state:  # the "train on the built-in Digits" button, from the last run of the page
    del st.session_state["use_digits"]
    st.session_state["preset"] = DIGITS
name = links.selectbox(st, "Preset", list(PRESETS), list(PRESETS).index(default_preset(torch.cuda.is_available())),
                       key="preset", on_change=links.forget,
                       help="The course's three practicals, and better recipes.")
st.caption(PRESETS[name][0])
config = preset(name)


def draw_settings(config: TrainConfig, name: str) -> None:
    """The preset's settings as widgets, editing `config`. Each setting's link name is its config field, as
    `python -m cnn_lab train --set` spells it (lr, model.widths)."""
    a, b, c = st.columns(3)
    choices = [*DATASETS, "folder"]
    config.dataset = links.selectbox(a, "Dataset", choices, choices.index(config.dataset), key=f"{name}_dataset",
                                     name="dataset", format_func=lambda d: DATASETS[d].title if d in DATASETS
                                     else "An image folder (32x32)")
    if config.dataset == "folder":
        config.dataset = links.text_input(a, "Folder (<root>/<class>/ or <root>/{train,val,test}/<class>/)", "",
                                          key=f"{name}_dir", name="folder")
    models = list(MODELS)
    config.model.name = links.selectbox(b, "Model", models, models.index(config.model.name), key=f"{name}_model",
                                        name="model.name", format_func=lambda m: MODELS[m].title)
    config.optimizer = links.selectbox(c, "Optimizer", list(OPTIMIZERS), list(OPTIMIZERS).index(config.optimizer),
                                       key=f"{name}_opt", name="optimizer")
    config.lr = links.number_input(a, "Learning rate", 1e-6, 1e3, config.lr, format="%g", key=f"{name}_lr", name="lr")
    config.batch_size = links.number_input(b, "Batch size", 1, 8192, config.batch_size, key=f"{name}_bs",
                                           name="batch_size")
    config.epochs = links.number_input(c, "Epochs", 1, 1000, config.epochs, key=f"{name}_epochs", name="epochs")
    config.schedule = links.selectbox(a, "LR schedule", list(SCHEDULES), list(SCHEDULES).index(config.schedule),
                                      key=f"{name}_sched", name="schedule")
    config.weight_decay = links.number_input(b, "Weight decay", 0.0, 1.0, config.weight_decay, format="%g",
                                             key=f"{name}_wd", name="weight_decay")
    config.label_smoothing = links.slider(c, "Label smoothing", 0.0, 0.5, config.label_smoothing, key=f"{name}_ls",
                                          name="label_smoothing", help="Train towards slightly softened targets "
                                          "(0.9 for the true class instead of 1), so the network is less sure of "
                                          "itself and generalises better.")
    config.augment = links.multiselect(a, "Augmentation (batched on the device)", list(BATCHED_AUGMENTS), config.augment,
                                       key=f"{name}_aug", name="augment")
    presets = [""] + augment.list_presets(preset_owner(person))
    config.augment_preset = links.selectbox(a, "Augmentation preset (from the augmentation page)", presets,
                                            format_func=lambda p: p or "none", key=f"{name}_augpreset",
                                            name="augment_preset")
    config.patience = links.number_input(b, "Early-stopping patience (epochs, 0 = off)", 0, 50, config.patience,
                                         key=f"{name}_pat", name="patience")
    config.max_train = links.number_input(c, "Training images (0 = all)", 0, 1_000_000, config.max_train,
                                          key=f"{name}_max", name="max_train")
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    config.device = links.selectbox(a, "Device", devices, key=f"{name}_device", name="device")
    config.tta = links.toggle(b, "Average the test answers over flipped copies (TTA)", config.tta, key=f"{name}_tta",
                              name="tta")
    config.seed = links.number_input(c, "Seed", 0, 10**6, config.seed, key=f"{name}_seed", name="seed")
    config.lookahead = links.toggle(b, "Lookahead (average the weights every 5 steps)", config.lookahead,
                                    key=f"{name}_lookahead", name="lookahead")
    course_like = ["dataset", "course"]  # (imagenet is for pretrained backbones: the transfer page's)
    config.normalisation = links.selectbox(a, "Normalisation", course_like, course_like.index(config.normalisation),
                                           format_func=lambda n: NORMALISATIONS[n].title, key=f"{name}_norm",
                                           name="normalisation",
                                           help="The course's exact pipeline: batch size 4 and Normalize(0.5, 0.5).")
    config.bias_lr_factor = links.number_input(c, "Bias learning-rate factor", 1.0, 256.0,
                                               float(config.bias_lr_factor), key=f"{name}_biaslr",
                                               name="bias_lr_factor", help="Biases and batch-norm shifts learn this "
                                               "many times faster than the weights (airbench uses 64).")
    config.small_epochs = links.number_input(b, "Epochs on small windows first (0 = off)", 0, 1000,
                                             config.small_epochs, key=f"{name}_small", name="small_epochs",
                                             help="Progressive resizing: the first epochs train on a random square "
                                             "window of each image (\"Small window\"), so their steps cost less; "
                                             "the last epochs and the test see whole images. The speedrun net and "
                                             "the small ResNet take any size.")
    config.small_size = links.number_input(c, "Small window (pixels a side)", 1, 1024, config.small_size,
                                           key=f"{name}_smallsize", name="small_size", disabled=not config.small_epochs,
                                           help="24 on CIFAR-10's 32x32 images: a step costs about two thirds.")

    st.markdown(f"**{MODELS[config.model.name].title}**: its own settings")
    model_settings(config.model, MODELS[config.model.name].settings, key=f"{name}_{config.model.name}")


def config_file(config: TrainConfig) -> None:
    """Download these settings as a config file, or load one into them."""
    left, right = st.columns(2)
    left.download_button("Download this config (JSON)", config.to_json(), "config.json", "application/json")
    uploaded = right.file_uploader("Load a config (JSON) into these settings", type=["json"], key="config_upload")
    handled = once_per_upload(uploaded, "config_loaded",
                              lambda file: TrainConfig.from_json(file.getvalue().decode("utf-8", "replace")),
                              errors=(TypeError, ValueError, AttributeError))
    if handled is not None and handled.error:
        st.error(f"This is not a training config (as \"Download this config\" gives it): {handled.error}.")
    elif handled is not None and handled.new:  # the file's settings become the link, each checked as a link's
        loaded = handled.value                 # would be
        stale = tuple(f"{each}_" for each in PRESETS)  # every preset's widgets: the file's may be another preset
        for key in [k for k in st.session_state if isinstance(k, str) and (k.startswith(stale) or k == "preset")]:
            del st.session_state[key]
        open_on(loaded)
        st.rerun()


def unshown_setting(config: TrainConfig, field: str, text: str) -> None:
    """A linked setting whose widget is not drawn (the settings are closed): applied to the config as it is."""
    if field == "folder":  # the dataset control says "folder"; the path is its own setting
        if config.dataset == "folder":
            config.dataset = text
    else:
        overrides.apply(config, [f"{field}={text}"])


# Drawn only when opened: thirty widgets that the browser would otherwise lay out again at each preset. Closed,
# the link keeps what was changed, and applies it. A link that changes settings opens them, so that each value
# is checked against its widget's range and seen.
if "train_settings_open" not in st.session_state and set(st.query_params) - {"preset", *links.KEEP}:
    st.session_state["train_settings_open"] = True
settings_box = st.expander("Settings", key="train_settings_open", on_change="rerun")
if settings_box.open:
    with settings_box:
        draw_settings(config, name)
        config_file(config)
links.unshown(lambda field, text: unshown_setting(config, field, text), skip=("preset",),
              closed=not settings_box.open)
st.session_state["train_config"] = config  # what Start runs (the settings tests read it too)
links.keep()

# ---------------------------------------------------------------- before Start: is the data here?
ready = True
if config.dataset in DATASETS:
    available = availability(config.dataset)
    if not available.on_machine:
        ready = available.can_download  # then it downloads when Start is pressed
        (st.info if ready else st.warning)(available.advice)
        if not ready and st.button("Use the built-in Digits preset instead"):
            st.session_state["use_digits"] = True
            st.rerun()
elif not config.dataset.strip():
    ready = False
    st.info("Type the path of an image folder in the settings above, then press Start.")
else:
    try:
        config.dataset = str(limits.allowed_folder(config.dataset, person.name))
        if not Path(config.dataset).is_dir():
            raise limits.LimitError(f"The folder {config.dataset} does not exist; check the path in the settings above.")
    except limits.LimitError as error:
        ready = False
        st.warning(str(error))

# ---------------------------------------------------------------- start, pause, resume, stop; live curves
job = job_controls("train", "Start training", lambda: jobs.MANAGER.submit(config, owner=person), person, ready)
live_panel(job, "No run yet: pick a preset and press Start.", person,
           about=recipe_words(PRESET_CONFIGS, job.config) if job else "")
if job is None and ready:
    train_preview(config)

# ---------------------------------------------------------------- after training
if job and not job.alive and job.result is not None:
    result = job.result
    results_panel(result, "train", job.run_id)
    weights = first_conv_weights(result.model)
    if weights is not None:
        st.markdown("**First-layer filters**")
        st.plotly_chart(charts.filters_figure(weights.numpy()[:32]),
                        alt=f"The first {min(32, len(weights))} filters of the first layer as small images, each "
                            "scaled to its own range")

# ---------------------------------------------------------------- a saved run: download, look inside, classify
st.header("Use a run")
with st.expander("Import a trained model"):
    import_panel(person, "train")
history = jobs.MANAGER.runs_of(person, "train")
saved_run_panel(person, ("train", "onnx"), "train")  # an imported ONNX model is listed here

# ---------------------------------------------------------------- history
st.header("Runs")
if not history:
    st.caption("Finished, stopped and interrupted runs appear here.")
else:
    latest = history[0]
    st.markdown(f"Latest run **{latest.run_id}**: {latest.status}, {len(latest.epochs)} epoch(s) saved"
                + (f", test accuracy {latest.test_acc:.1%}" if latest.test_acc is not None else "") + ".")
    resumable_runs(person, "train")
    st.dataframe(
        [{"run": r.run_id, "status": r.status, "dataset": r.config["dataset"], "model": r.config["model"]["name"],
          "optimizer": r.config["optimizer"], "lr": r.config["lr"], "batch": r.config["batch_size"],
          "epochs": len(r.epochs), "best val acc": r.best_val_acc, "test acc": r.test_acc} for r in history],
        hide_index=True, column_config={"best val acc": st.column_config.NumberColumn(format="percent"),
                                        "test acc": st.column_config.NumberColumn(format="percent")},
    )
    chosen = st.multiselect("Overlay runs", [r.run_id for r in history], default=[r.run_id for r in history[:2]])
    picked = [r for r in history if r.run_id in chosen and r.epochs]
    if picked:
        runs_epochs = {r.run_id: r.epochs for r in picked}
        st.plotly_chart(charts.epoch_figure(runs_epochs), key="compare_chart", alt=charts.epochs_alt(runs_epochs))
        st.download_button("Export these metrics (CSV)", runs.metrics_csv(picked), "metrics.csv", "text/csv")
