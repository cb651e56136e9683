"""The transfer page through AppTest: a linear probe on boats9, then classification with Grad-CAM."""
import time
from dataclasses import replace

import pytest
import torch

from cnn_lab import jobs, transfer
from cnn_lab.device import fast_bf16
from tests.helpers import ROOT, wait_for

PAGE = str(ROOT / "pages/6_transfer.py")


def test_probe_run_then_classify_a_test_image(boats9_archive, run_page):
    at = run_page(PAGE)
    assert not at.exception
    assert any(c.value.startswith("9 classes; train: 872, val: 105, test: 118") for c in at.caption)
    # without the mirrored photos' features: half the default's work, the same code
    next(t for t in at.toggle if t.label == "Also use mirrored images' features").set_value(False).run()
    next(b for b in at.button if b.label == "Start the linear probe").click().run()
    job = jobs.MANAGER.latest("transfer")
    assert job is not None
    for _ in range(600):
        if not job.alive:
            break
        time.sleep(0.5)
    assert job.status == "finished", job.message
    assert job.result.test_acc >= 0.85
    at.run()
    assert not at.exception
    assert any(h.value.startswith("Test accuracy") for h in at.header)
    assert ("This run: **Linear probe (seconds, even on a CPU)**, changed: flip_features=false."
            in [c.value for c in at.caption])
    at.radio(key="photo_from").set_value("A test image").run()
    assert not at.exception
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(keys) >= 4  # counts, per class, confusion, top-k, Grad-CAM
    next(t for t in at.toggle if t.label.startswith("Test-time")).set_value(True).run()
    assert any(c.value.startswith("Confidence in") for c in at.caption)
    # the run's files, the camera, and the ONNX file a boat photo gives the same class in onnxruntime as here
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Checkpoint (.pt)", "ONNX", "Weights (state_dict)", "Config (JSON)"} <= set(labels)
    at.radio(key="photo_from").set_value("Camera").run()
    assert len(at.camera_input) == 1 and not at.exception
    _onnx_agrees(job)


def _onnx_agrees(job) -> None:
    """The ONNX file of the fine-tuned EfficientNet-Lite0 gives PyTorch's logits on the run's test photos."""
    import numpy as np
    import onnxruntime

    from cnn_lab import checkpoints, runs
    from cnn_lab.subjects import run_subject

    record = runs.load_run(job.run_id)
    session = onnxruntime.InferenceSession(checkpoints.onnx_bytes(record))
    subject = run_subject(record)
    images = job.result.test_images[:16]  # uint8 at the run's size
    logits = session.run(["logits"], {"pixels": (images.float() / 255).numpy()})[0]
    with torch.no_grad():
        expected = subject.model((images.float() / 255 - subject.mean) / subject.std).numpy()
    assert np.array_equal(logits.argmax(1), expected.argmax(1))
    assert np.allclose(logits, expected, atol=1e-3)


def test_bad_folder_gets_one_sentence(run_page):
    at = run_page(PAGE)
    at.radio(key="source").set_value("folder").run()
    at.text_input(key="folder").input("/nonexistent/photos").run()
    assert not at.exception
    assert "does not exist" in at.error[0].value


def test_a_plain_file_for_a_folder_gets_one_sentence(run_page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not photos")
    at = run_page(PAGE)
    at.radio(key="source").set_value("folder").run()
    at.text_input(key="folder").input(str(notes)).run()
    assert not at.exception
    assert at.error[0].value == ("notes.txt is not a zip or tar archive: CNN Lab reads photos from class folders, "
                                 "as they are or zipped (.zip, .tar.gz).")


def test_kaggle_offline_gets_one_sentence(run_page):
    at = run_page(PAGE)
    at.radio(key="source").set_value("kaggle").run()
    assert not at.exception
    assert "cannot reach kaggle.com" in at.warning[-1].value  # offline here
    assert not any(b.label.startswith("Download") for b in at.button)  # no button that can only fail


def test_the_best_recipe_fills_in_the_fine_tuning_settings(boats9_archive, run_page):
    name = "Fine-tune (best on boats9, for a GPU)"
    best = transfer.preset(name)
    at = run_page(PAGE)
    next(s for s in at.selectbox if s.label == "Start from").set_value(name).run()
    assert not at.exception
    assert next(r for r in at.radio if r.label == "Mode").value == best.mode == "partial"
    assert next(s for s in at.slider if s.label.startswith("Blocks to fine-tune")).value == best.unfreeze
    assert next(s for s in at.select_slider if s.label.startswith("Image size")).value == best.image_size == 288
    assert next(s for s in at.selectbox if s.label == "Augmentation preset").value == best.augment_preset
    assert next(t for t in at.toggle if "LP-FT" in t.label).value is best.head_from_probe is True
    assert next(n for n in at.number_input if n.label == "Epochs").value == best.epochs
    assert next(n for n in at.number_input if n.label == "Learning rate").value == best.lr
    assert any("LP-FT" in c.value for c in at.caption)  # the recipe's description
    if not torch.cuda.is_available():  # what fine-tuning will cost here, following the epochs input
        assert any(f"roughly {best.epochs} minutes" in w.value for w in at.warning)
        next(n for n in at.number_input if n.label == "Epochs").set_value(5).run()
        assert any("roughly 5 minutes" in w.value for w in at.warning)
        assert any(transfer.CPU_RECIPE in w.value for w in at.warning)  # and it names the CPU recipe


def test_the_cpu_recipe_runs_the_frozen_blocks_once_and_says_what_that_costs(boats9_archive, run_page):
    cpu = transfer.preset(transfer.CPU_RECIPE)
    at = run_page(PAGE)
    next(s for s in at.selectbox if s.label == "Start from").set_value(transfer.CPU_RECIPE).run()
    assert not at.exception
    views = next(s for s in at.slider if s.label.startswith("Run the frozen blocks once"))
    assert views.value == cpu.frozen_views == 4
    assert at.session_state["transfer_config"] == replace(cpu, data="boats9")
    assert not any("TTA" in t.label for t in at.toggle)  # tested on each photo and its mirror, cached too
    if not torch.cuda.is_available():  # 4 views of 872 photos, and each of 223 photos and its mirror
        bf16 = 2 if fast_bf16(torch.device("cpu")) else 1  # a CPU with bf16 instructions runs them twice as fast
        assert any(f"over 3,934 photos and views: about {2.2 / bf16:.1f} minutes" in c.value for c in at.caption), \
            [c.value for c in at.caption]
        views.set_value(2).run()
        assert any(f"over 2,190 photos and views: about {1.2 / bf16:.1f} minutes" in c.value for c in at.caption)
    # the recipe for a CPU with AMX: twice the views, one block more
    next(s for s in at.selectbox if s.label == "Start from").set_value(transfer.AMX_RECIPE).run()
    assert not at.exception
    assert next(s for s in at.slider if s.label.startswith("Run the frozen blocks once")).value == 8
    assert next(s for s in at.slider if s.label.startswith("Blocks to fine-tune")).value == 3
    assert any("AMX" in c.value and transfer.CPU_RECIPE in c.value for c in at.caption)  # for whom, and the other
    if not torch.cuda.is_available():  # 8 views of 872 photos, and each of 223 photos and its mirror
        minutes = 7_422 / (transfer.frozen.CPU_IMAGES_PER_S * bf16) * (288 / 224) ** 2 / 60
        assert any(f"over 7,422 photos and views: about {minutes:.1f} minutes" in c.value for c in at.caption)


def test_the_amx_recipe_says_so_on_a_cpu_without_amx_and_names_the_recipe_for_it(boats9_archive, run_page,
                                                                                     monkeypatch):
    """A student whose laptop has no AMX learns before Start that this recipe will take twice as long and more, and
    which recipe takes five minutes there; with AMX, nothing is said."""
    from cnn_lab import device

    if torch.cuda.is_available():
        pytest.skip("on a GPU the page speaks of the GPU's seconds")
    monkeypatch.setattr(device, "cpu_bf16", lambda: "")
    at = run_page(PAGE)
    next(s for s in at.selectbox if s.label == "Start from").set_value(transfer.AMX_RECIPE).run()
    assert not at.exception
    said = [i.value for i in at.info if "no AMX" in i.value]
    assert len(said) == 1 and transfer.CPU_RECIPE in said[0], [i.value for i in at.info]
    monkeypatch.setattr(device, "cpu_bf16", lambda: "AMX")
    at.run()
    assert not any("no AMX" in i.value for i in at.info)


def test_the_course_resnet18_recipe_says_when_its_weights_cannot_be_had_and_offers_lite0(boats9_archive, monkeypatch, run_page):
    """Lesson 29's frozen ResNet18 + 512 -> 9 head: offline and not cached, one sentence, Start off, and a button
    that switches to EfficientNet-Lite0."""
    from cnn_lab import backbones

    monkeypatch.setattr(backbones, "reachable", lambda url: False)  # no network, whatever this machine has
    monkeypatch.setitem(backbones.BACKBONES, "resnet18", replace(backbones.BACKBONES["resnet18"],
                                                                 status=lambda: "downloads when first used"))
    at = run_page(PAGE)
    at.selectbox(key="tf_recipe").set_value("Course: ResNet18 frozen (lesson 29)").run()
    backbone = next(s for s in at.selectbox if s.label == "Backbone")
    assert backbone.value == "resnet18" and not at.exception
    assert any(w.value.startswith("ResNet18") and "choose EfficientNet-Lite0" in w.value for w in at.warning)
    assert next(b for b in at.button if b.label == "Start the linear probe").disabled
    next(b for b in at.button if b.label == "Use EfficientNet-Lite0 instead").click().run()
    assert next(s for s in at.selectbox if s.label == "Backbone").value == "efficientnet_lite0"
    assert not next(b for b in at.button if b.label == "Start the linear probe").disabled
    config = transfer.preset("Course: ResNet18 frozen (lesson 29)")
    assert (config.backbone, config.mode, config.image_size) == ("resnet18", "probe", 224)


def test_an_uploaded_zip_is_stored_once_and_a_broken_one_gets_one_sentence(tmp_path, monkeypatch, run_page):
    """The "Upload a zip" source: the zip's class folders become the dataset (stored once, however often the page
    reruns); a file that is not a zip gets one sentence and the page stops there."""
    import io
    import zipfile

    from cnn_lab import limits
    from tests.helpers import noise_folder

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    folder = noise_folder(tmp_path / "photos", ["kayak", "tug"], per_class=8, size=(24, 24))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for photo in folder.rglob("*.png"):
            archive.write(photo, photo.relative_to(folder))
    saved = []
    save_upload = limits.save_upload
    monkeypatch.setattr(limits, "save_upload", lambda *args: saved.append(args[1]) or save_upload(*args))
    at = run_page(PAGE)
    at.radio(key="source").set_value("upload").run()
    at.file_uploader[0].set_value(("boats.zip", buffer.getvalue(), "application/zip")).run()
    assert not at.exception and not at.error, at.exception and at.exception[0].stack_trace
    assert any(c.value.startswith("2 classes; ") for c in at.caption)
    at.run()
    assert saved == ["boats.zip"]  # stored once, not on every rerun
    at.file_uploader[0].set_value(("broken.zip", b"PK\x03\x04 not really a zip", "application/zip")).run()
    assert not at.exception and len(at.error) == 1
    # the sentence fits an upload as well as a folder, and names the file this person gave (not the hash it is filed
    # under)
    assert at.error[0].value.startswith("broken.zip is not a zip or tar archive"), at.error[0].value


def test_the_start_button_names_what_it_starts(boats9_archive, run_page):
    at = run_page(PAGE)
    labels = lambda: {b.label for b in at.button if b.label.startswith("Start")}  # noqa: E731
    assert labels() == {"Start the linear probe"}
    mode = next(r for r in at.radio if r.label == "Mode")
    mode.set_value("partial").run()
    assert labels() == {"Start fine-tuning"} and not at.exception


def test_a_tab_opened_while_your_run_waits_shows_that_runs_settings(boats9_archive, run_page):
    """A refresh or a second tab: the recipe the job was started from, with its changed settings, and a line that
    names them. The job waits in the queue behind a long digits run, so nothing heavy runs."""
    from cnn_lab.presets import preset

    long = preset("Digits (seconds, built in)")
    long.epochs = 500
    busy = jobs.MANAGER.start(long)
    waiting = jobs.MANAGER.start(replace(transfer.preset(transfer.CPU_RECIPE), epochs=6, image_size=224),
                                 kind="transfer")
    try:
        assert waiting.status == "queued"
        at = run_page(PAGE)
        assert not at.exception
        assert next(s for s in at.selectbox if s.label == "Start from").value == transfer.CPU_RECIPE
        assert at.session_state["transfer_config"] == waiting.config
        captions = [c.value for c in at.caption]
        assert f"This run: **{transfer.CPU_RECIPE}**, changed: epochs=6, image_size=224." in captions
    finally:
        for job in (waiting, busy):
            jobs.MANAGER.stop(job)
        assert wait_for(lambda: not busy.alive and not waiting.alive)
