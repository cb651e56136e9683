"""Runs leave the app and come back: TensorBoard events, the checkpoint file, ONNX (checked with onnxruntime)
and the import of a checkpoint, with a sentence for each kind of bad file."""
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_lab import checkpoints, jobs, runs, subjects
from cnn_lab.data import load_dataset
from cnn_lab.models import ModelSpec
from cnn_lab.subjects import run_subject
from cnn_lab.train import TrainConfig


@pytest.fixture(scope="module")
def digits_run(lab_cache) -> runs.RunRecord:
    """A small CNN trained on the built-in digits through the job manager, as the train page starts it."""
    manager = jobs.JobManager(max_running=1)
    job = manager.start(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32], dropconnect=0.2),
                                    epochs=3, batch_size=32, lr=0.05))
    job.thread.join(timeout=300)
    assert job.status == "finished", job.message
    return runs.load_run(job.run_id)


def test_each_run_folder_holds_tensorboard_events(digits_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(digits_run.path)).Reload()
    tags = events.Tags()["scalars"]
    assert {"step/train_loss", "step/lr", "epoch/train_loss", "epoch/val_acc", "epoch/images_per_s"} <= set(tags)
    epochs = events.Scalars("epoch/val_acc")
    assert [e.step for e in epochs] == [1, 2, 3]
    assert [round(e.value, 5) for e in epochs] == [round(r.val_acc, 5) for r in digits_run.epochs]
    steps = events.Scalars("step/train_loss")
    assert len(steps) > 50 and steps[0].value > steps[-1].value  # it learned
    # the hyperparameters and the final test accuracy (TensorBoard's HPARAMS tab)
    hparams = events.Scalars("hparam/test_acc")
    assert hparams[0].value == pytest.approx(digits_run.test_acc)
    plugin = events.PluginTagToContent("hparams")
    assert any(b"model.dropconnect" in content for content in plugin.values())


def test_a_resumed_runs_step_curve_is_read_back_from_its_events(tmp_path):
    """Two sessions of one run (the second resumed from step 30, after the first had reached 50), a record cut off
    by a kill mid-write, and a file of noise: each step once, the later session's where they overlap."""
    import os
    import time

    from torch.utils.tensorboard import SummaryWriter

    from cnn_lab.tensorboard_events import read_steps

    for first, last, loss, lr in ((1, 50, 1.0, 0.1), (31, 60, 2.0, 0.2)):
        writer = SummaryWriter(str(tmp_path))
        for step in range(first, last + 1):
            writer.add_scalar("step/train_loss", loss / step, step)
            writer.add_scalar("step/lr", lr, step)
        writer.close()
        time.sleep(1.1)  # the next session's file is named by a later second
    rows = read_steps(tmp_path, until=55)
    assert [step for step, _, _ in rows] == list(range(1, 56))
    assert rows[29] == (30, pytest.approx(1 / 30), pytest.approx(0.1))
    assert rows[30] == (31, pytest.approx(2 / 31), pytest.approx(0.2))
    last = max(tmp_path.iterdir())
    last.write_bytes(last.read_bytes()[:-7])  # the last record cut off
    (tmp_path / "events.out.tfevents.9999999999.noise").write_bytes(os.urandom(300))
    assert [step for step, _, _ in read_steps(tmp_path, until=100)] == list(range(1, 60))
    assert read_steps(tmp_path / "absent", until=100) == []


def test_the_onnx_export_gives_pytorchs_top1_on_100_test_images(digits_run):
    import onnx
    import onnxruntime

    data = checkpoints.onnx_bytes(digits_run)
    meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert json.loads(meta["classes"]) == digits_run.classes and "[0, 1]" in meta["input"]
    test = load_dataset("digits").splits["test"]
    pixels = test.images[:100].float() / 255
    session = onnxruntime.InferenceSession(data)
    onnx_logits = session.run(["logits"], {"pixels": pixels.numpy()})[0]
    subject = run_subject(digits_run)
    with torch.no_grad():
        torch_logits = subject.model((pixels - subject.mean) / subject.std)
    assert onnx_logits.shape == (100, 10)
    assert np.array_equal(onnx_logits.argmax(1), torch_logits.argmax(1).numpy())
    assert np.allclose(onnx_logits, torch_logits.numpy(), atol=1e-4)
    assert (onnx_logits.argmax(1) == test.labels[:100].numpy()).mean() > 0.8  # a model that learned


def test_the_checkpoint_loads_anywhere_and_imports_back_as_a_run(digits_run):
    data = checkpoints.checkpoint_bytes(digits_run)
    bundle = torch.load(io.BytesIO(data), weights_only=True)  # outside CNN Lab: plain torch
    assert bundle["classes"] == digits_run.classes and bundle["input_shape"] == [1, 8, 8]
    assert len(bundle["mean"]) == len(bundle["std"]) == 1
    assert json.loads(bundle["config"])["model"]["name"] == "cnn"
    imported = checkpoints.import_checkpoint(data, owner="ada")
    assert imported.run_id != digits_run.run_id and imported.owner == "ada" and imported.status == "finished"
    assert imported.classes == digits_run.classes and imported.test_acc == digits_run.test_acc
    original, back = run_subject(digits_run), run_subject(imported)
    x = original.prepare(load_dataset("digits").splits["test"].images[0])
    assert torch.equal(original.model(x), back.model(x))  # the same model, so it classifies and opens Inside
    assert imported.run_id in [r.run_id for r in runs.list_runs(kind="train", owner="ada")]


def _bundle(digits_run, **changes) -> bytes:
    bundle = torch.load(io.BytesIO(checkpoints.checkpoint_bytes(digits_run)), weights_only=True) | changes
    buffer = io.BytesIO()
    torch.save(bundle, buffer)
    return buffer.getvalue()


def test_bad_files_get_one_sentence_and_leave_no_run(digits_run, tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'owned')!r}, 'w').write('owned')",))

    state = runs.load_weights(digits_run.run_id)
    wrong_shape = dict(state)
    first = next(k for k, v in state.items() if v.ndim == 4)
    wrong_shape[first] = torch.zeros(3, *state[first].shape[1:])
    other_model = json.loads(json.dumps(digits_run.config))
    other_model["model"]["name"] = "mlp"
    buffer, evil_zip = io.BytesIO(), io.BytesIO()
    torch.save(state, buffer)
    torch.save({"format": checkpoints.FORMAT, "kind": Evil()}, evil_zip)
    cases = {
        evil_zip.getvalue(): "could run code",
        b"just some text": "not a PyTorch checkpoint",
        b"# a markdown file": "not a PyTorch checkpoint",
        pickle.dumps(Evil()): "could run code",
        buffer.getvalue(): "bare state_dict",
        _bundle(digits_run, state_dict=wrong_shape): "weights do not fit",
        _bundle(digits_run, config=json.dumps(other_model)): "weights do not fit",
        _bundle(digits_run, kind="gan"): "incomplete or malformed",
    }
    before = {r.run_id for r in runs.list_runs()}
    for data, words in cases.items():
        with pytest.raises(checkpoints.CheckpointError, match=words) as error:
            checkpoints.import_checkpoint(data)
        assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")  # one sentence
    assert not (tmp_path / "owned").exists()
    assert {r.run_id for r in runs.list_runs()} == before


def test_every_page_shares_one_built_model_until_its_weights_change(digits_run):
    """subjects.subject_of: the same object for the same run, built again once its weights file changes (a resumed
    run), and gone when the run is deleted."""
    first = subjects.subject_of(digits_run.run_id)
    assert subjects.subject_of(digits_run.run_id) is first
    assert first.input_of(Image.new("RGB", (40, 30))).shape == (1, 8, 8)  # the digits' grey 8x8
    weights = digits_run.path / runs.WEIGHTS_FILE
    os.utime(weights, (weights.stat().st_atime, weights.stat().st_mtime + 5))
    again = subjects.subject_of(digits_run.run_id)
    assert again is not first and again.classes == first.classes
    subjects.forget(digits_run.run_id)
    assert subjects.subject_of(digits_run.run_id) is not again
