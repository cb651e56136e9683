"""A run's results and what to do with it: test accuracy, per class, the confusion matrix and its misclassified
images; its files to download; classify a photo with it; a checkpoint imported back as a run."""
from __future__ import annotations

import json

import numpy as np
import streamlit as st

from cnn_lab import charts, checkpoints, evaluate, jobs, runs, subjects
from cnn_lab.identity import Person
from cnn_lab.subjects import Subject
from cnn_lab.train import TrainResult
from ui.inputs import new_click, once_per_upload, photo_from, photo_input, picture
from ui.nav import look_inside_button, open_inside


def results_panel(result: TrainResult, key: str, run_id: str = "") -> None:
    """Test accuracy, per-class accuracy, the confusion matrix (click a cell) and its misclassified images, each
    of which opens on the "Inside the network" page when the run is given."""
    classes = result.classes
    st.header(f"Test accuracy: {result.test_acc:.1%}")
    matrix = evaluate.confusion_matrix(result.test_probs, result.test_labels, len(classes)).numpy()
    cell = new_click(f"confusion_{key}")
    if cell:
        st.session_state[f"true_{key}"], st.session_state[f"pred_{key}"] = int(cell["y"]), int(cell["x"])
    confusions = matrix.copy()
    np.fill_diagonal(confusions, -1)
    worst_true, worst_predicted = divmod(int(confusions.argmax()), len(classes))
    for name, worst in ((f"true_{key}", worst_true), (f"pred_{key}", worst_predicted)):
        if st.session_state.get(name, len(classes)) >= len(classes):  # a new result: open on the most confused
            st.session_state[name] = worst
    left, right = st.columns(2)
    left.plotly_chart(charts.bars(classes, evaluate.per_class_accuracy(result.test_probs, result.test_labels,
                                                                       len(classes)), "Accuracy per class"),
                      key=f"per_class_{key}", alt=f"The test accuracy of each of the {len(classes)} classes, as bars")
    right.plotly_chart(charts.confusion_figure(matrix, classes), on_select="rerun", selection_mode="points",
                       key=f"confusion_{key}", alt="The confusion matrix: for each true class (rows), how many "
                                                   "test images were given each class (columns)")
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
                   caption=", ".join(f"{c} {p:.0%}" for c, p in top3),
                   alt=f"A misclassified test image of a {classes[int(result.test_labels[index])]}")
        if run_id and slot.button("Inside", key=f"inside_{key}_{index}", help="Open it on \"Inside the network\""):
            open_inside(run_id, test_image=index)


def classify_panel(subject: Subject, key: str) -> None:
    """Upload a photo or take one with the camera: the model's top-5, beside the photo as the model sees it."""
    loaded = photo_from(photo_input(key), key)
    if loaded:
        probs = evaluate.classify(subject.model, subject.input_of(loaded.image), subject.mean, subject.std)
        top = evaluate.top_k(probs, subject.classes, min(5, len(subject.classes)))
        a, b = st.columns([1, 3])
        a.image(loaded.image, width=160, alt="The photo to classify")
        b.plotly_chart(charts.bars([c for c, _ in top], [p for _, p in top], f"Top-{len(top)}"), key=f"{key}_top",
                       alt=charts.ranking_alt(f"The {len(top)} likeliest classes", top))


def run_files(record: runs.RunRecord) -> None:
    """A finished run's downloads: the checkpoint (everything it needs, to use elsewhere or import back), ONNX,
    the weights alone and the config. Each file is made only when its button is clicked. An imported ONNX model
    gives back its file as it came."""
    if record.kind == "onnx":
        a, b = st.columns(2)
        a.download_button("ONNX (as imported)", (record.path / runs.ONNX_FILE).read_bytes, f"{record.run_id}.onnx",
                          key=f"onnx_{record.run_id}")
        b.download_button("Config (JSON)", json.dumps(record.config, indent=2), f"{record.run_id}.json",
                          key=f"config_{record.run_id}")
        return
    a, b, c, d = st.columns(4)
    a.download_button("Checkpoint (.pt)", lambda: checkpoints.checkpoint_bytes(record), f"{record.run_id}.pt",
                      key=f"ckpt_{record.run_id}", help="Config, weights, class names, input shape and normalisation "
                      "in one file: torch.load(path, weights_only=True), or import it back here.")
    b.download_button("ONNX", lambda: checkpoints.onnx_bytes(record), f"{record.run_id}.onnx",
                      key=f"onnx_{record.run_id}", help="For onnxruntime and other runtimes: input 'pixels' "
                      "(N, C, H, W) in [0, 1], output 'logits'; the class names are in the file's metadata.")
    c.download_button("Weights (state_dict)", (record.path / runs.WEIGHTS_FILE).read_bytes,
                      f"{record.run_id}-state_dict.pt", key=f"weights_{record.run_id}")
    d.download_button("Config (JSON)", json.dumps(record.config, indent=2), f"{record.run_id}.json",
                      key=f"config_{record.run_id}")


def saved_run_panel(person: Person, kind: str | tuple[str, ...], key: str) -> None:
    """Pick a finished run (the newest first): download it, open it on "Inside the network", classify with it."""
    usable = jobs.MANAGER.runs_of(person, kind, usable=True)
    if not usable:
        st.caption("A finished run (or an imported one) appears here, to download, look inside and classify with.")
        return
    record = st.selectbox("Run", usable, key=f"{key}_saved", format_func=lambda r: f"{r.run_id} · {r.label}" if
                          r.kind == "onnx" else f"{r.run_id} · test {r.test_acc or 0:.1%}" +
                          (" · imported" if r.imported else ""))
    run_files(record)
    look_inside_button(record.run_id)
    delete_button(record, person, key)
    try:
        subject = subjects.subject_of(record.run_id)
    except (ValueError, RuntimeError) as error:  # weights unavailable, or not this model's
        st.error(f"Run {record.run_id} cannot be rebuilt: {error}.")
        return
    st.markdown(f"**Classify a photo with run {record.run_id}**")
    classify_panel(subject, f"{key}_classify")


def delete_button(record: runs.RunRecord, person: Person, key: str) -> None:
    """Delete a run for good (its owner or an admin), after a second click that says so: it frees that person's
    share of the server's disk."""
    with st.popover(f"Delete run {record.run_id}"):
        st.markdown(f"Run {record.run_id} and its files (weights, curves, checkpoint) go for good; entries it made in "
                    "a challenge stay on the board.")
        if not st.button("Delete it for good", key=f"{key}_delete", type="primary"):
            return
        try:
            jobs.MANAGER.delete_run(record.run_id, person)
        except (jobs.NotAllowed, *jobs.EXPECTED_ERRORS) as error:
            st.warning(str(error))
            return
        subjects.forget(record.run_id)
        st.rerun()


def import_panel(person: Person, key: str) -> None:
    """Upload a checkpoint that CNN Lab exported, or any ONNX image classifier: it becomes a run of yours (parsed as
    data: weights_only loading, ONNX's protobuf; a bad file gets one sentence). Each upload is imported once,
    however often the page reruns."""
    upload = st.file_uploader("Import a trained model: a CNN Lab checkpoint (.pt), or an image classifier from "
                              "anywhere as ONNX (.onnx)", type=["pt", "onnx"], key=f"{key}_import")
    normalisation = st.radio(
        "An ONNX model's input, if its file does not say", list(checkpoints.ONNX_INPUTS),
        format_func=checkpoints.ONNX_INPUTS.get, key=f"{key}_import_norm", horizontal=True,
        help="Models take images scaled in some way; a CNN Lab export says so in its file. For others, choose what "
             "the model was trained with.")
    handled = once_per_upload(upload, f"{key}_import_seen", lambda file: checkpoints.import_model(
        file.getvalue(), file.name, owner=person.name, normalisation=normalisation),
        errors=(checkpoints.CheckpointError, checkpoints.OnnxError))
    if handled is None:
        return
    if handled.error:
        st.error(handled.error)
        return
    record = handled.value
    where = ("under \"Use a run\" on the train page" if record.kind in ("train", "onnx") else
             "in this page's list of runs")
    st.success(f"Imported as run {record.run_id}: classify with it {where}, or open it on \"Inside the network\" "
               "to look inside it.")
