import io

import numpy as np
import streamlit as st
import torch

from cnn_lab import augment, charts, evaluate, images, jobs, runs
from cnn_lab.data import DATASETS
from cnn_lab.models import MODELS
from cnn_lab.presets import PRESETS, preset
from cnn_lab.train import AUGMENTS, OPTIMIZERS, SCHEDULES, TrainConfig
from ui import page_header

page_header("pages/5_train.py")
manager = jobs.MANAGER

# ---------------------------------------------------------------- the recipe
name = st.selectbox("Preset", list(PRESETS), index=3, help="The course's three practicals, and better recipes.")
st.caption(PRESETS[name][0])
config = preset(name)
with st.expander("Settings", expanded=False):
    a, b, c = st.columns(3)
    config.dataset = a.selectbox("Dataset", list(DATASETS), index=list(DATASETS).index(config.dataset),
                                 format_func=lambda d: DATASETS[d].title, key=f"{name}_dataset")
    config.model.name = b.selectbox("Model", list(MODELS), index=list(MODELS).index(config.model.name),
                                    format_func=lambda m: MODELS[m][0], key=f"{name}_model")
    config.optimizer = c.selectbox("Optimizer", list(OPTIMIZERS), index=list(OPTIMIZERS).index(config.optimizer),
                                   key=f"{name}_opt")
    config.lr = a.number_input("Learning rate", 1e-6, 1e3, config.lr, format="%g", key=f"{name}_lr")
    config.batch_size = b.number_input("Batch size", 1, 8192, config.batch_size, key=f"{name}_bs")
    config.epochs = c.number_input("Epochs", 0, 200, config.epochs, key=f"{name}_epochs")
    config.schedule = a.selectbox("LR schedule", list(SCHEDULES), index=list(SCHEDULES).index(config.schedule),
                                  key=f"{name}_sched")
    config.weight_decay = b.number_input("Weight decay", 0.0, 1.0, config.weight_decay, format="%g", key=f"{name}_wd")
    config.label_smoothing = c.slider("Label smoothing", 0.0, 0.5, config.label_smoothing, key=f"{name}_ls")
    config.augment = a.multiselect("Augmentation (batched on the device)", list(AUGMENTS), config.augment,
                                   key=f"{name}_aug")
    presets = [""] + augment.list_presets()
    config.augment_preset = a.selectbox("Augmentation preset (from the augmentation page)", presets,
                                        format_func=lambda p: p or "none", key=f"{name}_augpreset")
    config.patience = b.number_input("Early-stopping patience (epochs, 0 = off)", 0, 50, config.patience,
                                     key=f"{name}_pat")
    config.max_train = c.number_input("Training images (0 = all)", 0, 1_000_000, config.max_train,
                                      key=f"{name}_max")
    config.model.dropout = a.slider("Dropout", 0.0, 0.8, config.model.dropout, key=f"{name}_drop")
    config.model.batch_norm = b.toggle("Batch norm", config.model.batch_norm, key=f"{name}_bn")
    config.seed = c.number_input("Seed", 0, 10**6, config.seed, key=f"{name}_seed")
    st.download_button("Download this config (JSON)", config.to_json(), "config.json", "application/json")

# ---------------------------------------------------------------- start, pause, resume, stop
job = manager.latest("train")
start, pause, resume, stop = st.columns(4)
if start.button("Start training", type="primary", disabled=bool(job and job.alive)):
    try:
        job = manager.start(config)
    except jobs.DeviceBusy as error:
        st.warning(str(error))
if job and job.alive:
    if pause.button("Pause", disabled=job.status != "running"):
        job.pause()
    if resume.button("Resume", disabled=job.status != "paused"):
        job.resume()
    if stop.button("Stop"):
        job.stop()


@st.fragment(run_every=1.0 if job and job.alive else None)
def live(job: jobs.Job | None) -> None:
    """Redraws once a second while the job runs; reruns the whole page once it ends."""
    if job is None:
        st.info("No run yet: pick a preset and press Start.")
        return
    steps, epochs, progress = job.log.snapshot()
    total = max(1, progress.get("total_steps", 1))
    st.progress(min(1.0, progress.get("step", 0) / total),
                text=f"{job.status} · epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')} · "
                     f"step {progress.get('step', 0)}/{total} · {progress.get('images_per_s', 0):,.0f} img/s · "
                     f"ETA {progress.get('eta', 0):.0f} s · {progress.get('parameters', 0):,} parameters on "
                     f"{progress.get('device', '?')}")
    smoothing = st.slider("Smoothing (EMA)", 0.0, 0.99, 0.9, key="ema")
    log_y = st.toggle("Log-scale loss", key="log_y")
    if steps:
        st.plotly_chart(charts.step_loss_figure(steps, smoothing, log_y), key="steps_chart")
    if epochs:
        st.plotly_chart(charts.epoch_figure({job.run_id: epochs}, log_y), key="epochs_chart")
    if job.status == "failed":
        st.error(job.message)
    elif not job.alive and job.message:
        st.success(job.message)
    if not job.alive and st.session_state.get("was_alive"):
        st.session_state.was_alive = False
        st.rerun(scope="app")
    st.session_state.was_alive = job.alive


live(job)

# ---------------------------------------------------------------- after training
if job and not job.alive and job.result is not None:
    result = job.result
    classes = result.classes
    st.subheader(f"Test accuracy: {result.test_acc:.1%}")
    left, right = st.columns(2)
    left.plotly_chart(charts.bars(classes, evaluate.per_class_accuracy(result.test_probs, result.test_labels,
                                                                       len(classes)), "Accuracy per class"))
    matrix = evaluate.confusion_matrix(result.test_probs, result.test_labels, len(classes)).numpy()
    right.plotly_chart(charts.confusion_figure(matrix, classes))

    st.markdown("**Misclassified test images**: pick a cell of the confusion matrix")
    a, b = st.columns(2)
    true = a.selectbox("True class", range(len(classes)), format_func=classes.__getitem__, key="true_cls")
    predicted = b.selectbox("Predicted as", range(len(classes)), index=(true + 1) % len(classes),
                            format_func=classes.__getitem__, key="pred_cls")
    wrong = evaluate.misclassified(result.test_probs, result.test_labels, true, predicted)[:12]
    if len(wrong) == 0:
        st.caption("No test image of this cell.")
    columns = st.columns(6)
    for slot, index in zip(columns * 2, wrong.tolist()):
        top3 = evaluate.top_k(result.test_probs[index], classes, 3)
        picture = result.test_images[index].permute(1, 2, 0).numpy()
        slot.image(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, width=96,
                   caption=", ".join(f"{c} {p:.0%}" for c, p in top3))

    weights = result.model and next((m.weight for m in result.model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if weights is not None:
        st.markdown("**First-layer filters**")
        st.plotly_chart(charts.filters_figure(weights.detach().cpu().numpy()[:32]))

    buffer = io.BytesIO()
    torch.save(result.model.state_dict(), buffer)
    a, b = st.columns(2)
    a.download_button("Download the weights (state_dict)", buffer.getvalue(), f"{job.run_id}.pt")
    b.download_button("Download the config (JSON)", job.config.to_json(), f"{job.run_id}.json")

    st.markdown("**Classify an image with this model**")
    upload = st.file_uploader("Upload an image", type=["jpg", "jpeg", "png", "webp", "bmp", "gif"], key="classify")
    if upload is not None:
        try:
            loaded = images.load_image(upload.getvalue())
        except images.ImageError as error:
            st.error(str(error))
        else:
            c, h, w = result.test_images.shape[1:]
            small = loaded.image.convert("L" if c == 1 else "RGB").resize((w, h))
            tensor = torch.from_numpy(np.asarray(small).copy())
            tensor = tensor[None] if c == 1 else tensor.permute(2, 0, 1)
            probs = evaluate.classify(result.model, tensor, result.mean, result.std)
            top = evaluate.top_k(probs, classes, 5)
            a, b = st.columns([1, 3])
            a.image(loaded.image, width=160)
            b.plotly_chart(charts.bars([c for c, _ in top], [p for _, p in top], "Top-5"))

# ---------------------------------------------------------------- history
st.subheader("Runs")
history = runs.list_runs(live=manager.live_ids(), kind="train")
if not history:
    st.caption("Finished, stopped and interrupted runs appear here.")
else:
    st.dataframe(
        [{"run": r.run_id, "status": r.status, "dataset": r.config["dataset"], "model": r.config["model"]["name"],
          "optimizer": r.config["optimizer"], "lr": r.config["lr"], "batch": r.config["batch_size"],
          "epochs": len(r.epochs), "best val acc": r.best_val_acc, "test acc": r.test_acc} for r in history],
        hide_index=True,
    )
    chosen = st.multiselect("Overlay runs", [r.run_id for r in history], default=[r.run_id for r in history[:2]])
    picked = [r for r in history if r.run_id in chosen and r.epochs]
    if picked:
        st.plotly_chart(charts.epoch_figure({r.run_id: r.epochs for r in picked}), key="compare_chart")
        st.download_button("Export these metrics (CSV)", runs.metrics_csv(picked), "metrics.csv", "text/csv")
