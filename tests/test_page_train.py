"""The train page through AppTest: a short real run on the built-in digits, then its results and history."""
import json
import time

from streamlit.testing.v1 import AppTest

from cnn_lab import jobs
from tests.helpers import wait_for

SETTINGS = ("train_settings_open",)  # the page's "Settings", opened as a user would


def test_short_run_on_digits_shows_curves_and_results(run_page):
    at = run_page("pages/5_train.py")
    assert not at.exception
    at.selectbox[0].select("Digits (seconds, built in)").run()
    at.button[0].click().run()  # Start training
    assert not at.exception
    job = jobs.MANAGER.latest("train")
    assert job is not None and job.config.dataset == "digits"
    for _ in range(120):
        if not job.alive:
            break
        time.sleep(0.5)
    at.run()
    assert job.status == "finished", job.message
    assert not at.exception
    assert any("Test accuracy" in h.value for h in at.header)
    assert job.result.test_acc > 0.9
    charts = at.get("plotly_chart")
    assert len(charts) >= 4  # step loss, epoch curves, per-class, confusion matrix, filters
    assert json.loads(_step_chart(at).proto.config) == {}  # the job has ended: hover and zoom are back
    assert any(job.run_id == row for row in at.dataframe[0].value["run"].tolist())
    # each layer's gradient norm, on demand: one line per weight layer, from the run's own samples
    at.toggle(key="norms_train").set_value(True).run()
    norms = next(c for c in at.get("plotly_chart") if "gradient norm" in c.proto.spec)
    lines = [trace["name"] for trace in json.loads(norms.proto.spec)["data"]]
    assert lines == job.log.snapshot().progress.layer_norms["layers"] == ["0.0 (Conv2d)", "1.0 (Conv2d)", "5 (Linear)"]
    assert any(c.value.startswith("Now: the first layer's gradient norm is") for c in at.caption)
    _use_the_run(at, job)


def _step_chart(at: AppTest):
    return next(c for c in at.get("plotly_chart") if c.proto.id.endswith("steps_train"))


def _live_chart(at: AppTest) -> dict:
    """What the page gave the live chart (ui.live_chart): its data, as the browser receives it."""
    return json.loads(at.get("bidi_component")[0].proto.json)


def _use_the_run(at: AppTest, job) -> None:
    """The run just trained, under "Use a run": its files, a photo (upload or camera) classified with it, and
    its checkpoint imported back as a second run; a bad file gets one sentence."""
    import io

    from PIL import Image

    from cnn_lab import checkpoints, runs
    from cnn_lab.data import load_dataset

    saved = at.selectbox(key="train_saved")
    assert saved.value.run_id == job.run_id or saved.options[0] > job.run_id  # the newest first (another test's?)
    saved.select_index(next(i for i, o in enumerate(saved.options) if o.startswith(job.run_id))).run()
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Checkpoint (.pt)", "ONNX", "Weights (state_dict)", "Config (JSON)"} <= set(labels)
    seven = load_dataset("digits").splits["test"]
    index = int((seven.labels == 7).nonzero()[0])
    buffer = io.BytesIO()
    Image.fromarray(seven.images[index][0].numpy()).resize((64, 64)).save(buffer, format="PNG")
    at.file_uploader(key="train_classify_upload").set_value(("seven.png", buffer.getvalue(), "image/png")).run()
    assert not at.exception
    top = next(c for c in at.get("plotly_chart") if "Top-5" in c.proto.spec)
    assert json.loads(top.proto.spec)["data"][0]["y"][0] == "7"  # a test seven, upscaled as a photo would be
    at.radio(key="train_classify_from").set_value("Camera").run()
    assert len(at.camera_input) == 1 and not at.exception
    data = checkpoints.checkpoint_bytes(runs.load_run(job.run_id))
    at.file_uploader(key="train_import").set_value(("run.pt", data, "application/octet-stream")).run()
    assert any("Imported as run" in m.value for m in at.success), [e.value for e in at.error]
    imported = runs.list_runs(kind="train")[0]
    assert imported.run_id != job.run_id and "Imported" in imported.message
    listed = at.selectbox(key="train_saved").options
    assert any(o.startswith(f"{imported.run_id} · ") and o.endswith("imported") for o in listed)
    at.file_uploader(key="train_import").set_value(("notes.pt", b"some notes", "application/octet-stream")).run()
    assert [e.value for e in at.error] == [checkpoints.NOT_A_CHECKPOINT]


def test_start_while_busy_queues_and_a_second_tab_finds_the_running_job(run_page):
    from cnn_lab.presets import preset

    long = preset("Digits (seconds, built in)")
    long.epochs, long.lr = 500, 0.02
    busy = jobs.MANAGER.start(long)  # a long job holds the device
    queued = None
    try:
        # A fresh session (a refresh, a second tab) finds the running job instead of starting another, and shows
        # that job's settings (not the default preset's), with a line that names them.
        assert wait_for(lambda: busy.log.snapshot().steps)  # its first steps are published
        at = run_page("pages/5_train.py")
        assert at.selectbox(key="preset").value == "Digits (seconds, built in)"
        assert at.session_state["train_config"] == long and at.session_state["train_settings_open"]
        captions = [c.value for c in at.caption]
        assert "This run: **Digits (seconds, built in)**, changed: lr=0.02, epochs=500." in captions
        live = _live_chart(at)
        assert live["view"]["text"].startswith("running") and live["view"]["series"]["x"]
        # While it runs, the browser redraws the progress and the step chart every second by itself, from the
        # job's live view behind its watch token, without hover and zoom layers (issue 18: what each redraw costs
        # the browser is taken from training on a laptop).
        assert live["url"] == f"/cnn-lab/live/{busy.watch_token}?smoothing=0.9"
        assert live["config"] == {"staticPlot": True}
        assert [trace["name"] for trace in live["figure"]["data"]] == ["loss", "loss, EMA 0.90", "learning rate"]
        assert not any("who" in table.value.columns for table in at.dataframe)  # the queue's: drawn only when open
        at.selectbox[0].select("Digits (seconds, built in)").run()
        next(b for b in at.button if b.label == "Start training").click().run()  # the device is busy: queued
        queued = jobs.MANAGER.latest("train")
        assert queued is not busy and queued.status == "queued" and jobs.MANAGER.position(queued) == 1
        assert _live_chart(at)["view"]["text"].startswith("queued · position 1 · estimated wait")
        jobs.MANAGER.stop(busy)
        assert wait_for(lambda: queued.status in ("running", "finished"))  # the queue moves on by itself
    finally:
        jobs.MANAGER.stop(busy)
        if queued is not None:
            jobs.MANAGER.stop(queued)
        assert wait_for(lambda: not busy.alive and not (queued and queued.alive))
    assert busy.status == "stopped"


def test_settings_reject_bad_widths_and_train_from_a_folder(tmp_path, run_page):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, color in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / name).mkdir()
        for i in range(20):
            noise = rng.integers(0, 40, (16, 16, 3))
            Image.fromarray((np.array(color) + noise).clip(0, 255).astype(np.uint8)).save(tmp_path / name / f"{i}.png")
    at = run_page("pages/5_train.py", opened=SETTINGS)
    at.selectbox[0].select("Digits (seconds, built in)").run()
    at.text_input(key="Digits (seconds, built in)_cnn_widths").input("16, x").run()
    assert "not a list of positive whole numbers" in at.warning[0].value
    at.selectbox(key="Digits (seconds, built in)_dataset").select("folder").run()
    at.text_input(key="Digits (seconds, built in)_dir").input(str(tmp_path)).run()
    at.number_input(key="Digits (seconds, built in)_bs").set_value(8).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    job = jobs.MANAGER.latest("train")
    for _ in range(120):
        if not job.alive:
            break
        time.sleep(0.5)
    assert job.status == "finished", job.message
    assert job.result.classes == ["blue", "red"] and job.result.test_acc == 1.0


def test_speedrun_preset_is_selectable_with_its_settings(run_page):
    at = run_page("pages/5_train.py", opened=SETTINGS)
    at.selectbox[0].select("Speedrun (GPU)").run()
    assert not at.exception
    assert at.number_input(key="Speedrun (GPU)_epochs").value == 11
    assert at.number_input(key="Speedrun (GPU)_biaslr").value == 64
    assert at.toggle(key="Speedrun (GPU)_lookahead").value is True
    assert at.toggle(key="Speedrun (GPU)_tta").value is True
    assert at.toggle(key="Speedrun (GPU)_speedrun_linear_stem").value is False  # airbench's stem on a GPU
    cpu = "CPU: 70% in a minute"
    at.selectbox[0].select(cpu).run()
    assert at.toggle(key=f"{cpu}_speedrun_linear_stem").value is True  # the linear stem: a fifth less work a step


def _run_from_page(run_page, preset_name: str, changes) -> jobs.Job:
    at = run_page("pages/5_train.py", opened=SETTINGS)
    at.selectbox(key="preset").set_value(preset_name).run()
    for change in changes:
        change(at)
        at.run()
    next(b for b in at.button if b.label == "Start training").click().run()
    job = jobs.MANAGER.latest("train")
    job.thread.join(timeout=300)
    assert job.status == "finished", job.message
    return job


def test_course_cnn_with_batch_norm_and_dropout_trains_from_the_page(cifar10, run_page):
    """The course's lesson 18-22 experiment, from the page: the same CNN with batch norm and dropout is another
    model (more parameters, other layers) and its curve is not the plain one's."""
    name = "Course: CNN"
    short = [lambda at: at.number_input(key=f"{name}_max").set_value(3000),
             lambda at: at.number_input(key=f"{name}_epochs").set_value(2)]
    plain = _run_from_page(run_page, name, short)
    both = _run_from_page(run_page, name, short + [lambda at: at.selectbox(key=f"{name}_course_cnn_norm").set_value("batch"),
                                         lambda at: at.slider(key=f"{name}_course_cnn_drop").set_value(0.3)])
    kinds = [type(m).__name__ for m in both.result.model.modules()]
    assert kinds.count("BatchNorm2d") == 3 and kinds.count("Dropout") == 2
    assert both.result.parameters == plain.result.parameters + 16 + 32 + 64
    plain_curve = [e.train_loss for e in plain.log.snapshot().epochs]
    both_curve = [e.train_loss for e in both.log.snapshot().epochs]
    assert len(plain_curve) == len(both_curve) == 2 and plain_curve != both_curve
    assert both.result.test_acc > 0.2  # it learns (chance is 10%)


def test_before_start_the_page_shows_the_model_and_one_image_of_each_class(run_page):
    from cnn_lab.models import build_model
    from cnn_lab.presets import preset

    at = run_page("pages/5_train.py")
    at.selectbox(key="preset").select("Digits (seconds, built in)").run()
    assert not at.exception and any(s.value == "What will be trained" for s in at.header)
    model = build_model(preset("Digits (seconds, built in)").model, (1, 8, 8), 10)
    parameters = sum(p.numel() for p in model.parameters())
    summary = next(m.value for m in at.markdown if m.value.startswith("**The model**"))
    assert f"{parameters:,} parameters" in summary
    table = next(d for d in at.dataframe if "parameters" in d.value.columns).value
    assert table["parameters"].sum() == parameters and table["output"].iloc[-1] == "10"
    assert any(m.value.startswith("**The data**: 1,438 training images of 1 x 8 x 8, 10 classes") for m in at.markdown)
    assert len(at.get("image")) == 1 and len(at.get("image")[0].proto.imgs) == 1  # the ten, as one titled picture
    from cnn_lab import data
    from ui.train_preview import one_of_each_class

    train = data.load_dataset("digits").splits["train"]
    assert [int(train.labels[i]) for i in one_of_each_class(train)] == list(range(10))
    at.button[0].click().run()  # Start: the preview gives way to the run
    assert not any(s.value == "What will be trained" for s in at.header)
    job = jobs.MANAGER.latest("train")
    assert wait_for(lambda: not job.alive, 120)


def test_closing_the_settings_keeps_what_was_changed(run_page):
    """The settings are drawn only while open. Closed, what was changed still reaches the trainer and the link;
    opened again, the widgets show it. A link that changes settings opens them."""
    name = "Digits (seconds, built in)"
    at = run_page("pages/5_train.py", {"preset": name})
    assert not at.session_state["train_settings_open"] and not at.number_input  # closed by default: not drawn
    at.session_state["train_settings_open"] = True
    at.run()
    at.number_input(key=f"{name}_epochs").set_value(7).run()
    at.text_input(key=f"{name}_cnn_widths").input("8, 16").run()
    at.selectbox(key=f"{name}_cnn_act").set_value("elu").run()
    at.slider(key=f"{name}_cnn_elu_alpha").set_value(0.5).run()
    at.session_state["train_settings_open"] = False
    at.run()
    config = at.session_state["train_config"]
    assert not at.number_input and not at.exception
    assert (config.epochs, config.model.widths, config.model.activation) == (7, [8, 16], "elu")
    assert config.model.activation_params == {"alpha": 0.5}
    assert at.query_params["epochs"] == ["7"] or at.query_params["epochs"] == "7"
    at.session_state["train_settings_open"] = True
    at.run()
    assert at.number_input(key=f"{name}_epochs").value == 7 and at.text_input(key=f"{name}_cnn_widths").value == "8, 16"
    assert at.slider(key=f"{name}_cnn_elu_alpha").value == 0.5
    linked = run_page("pages/5_train.py", {"preset": name, "epochs": "9"})
    assert linked.session_state["train_settings_open"] and linked.number_input(key=f"{name}_epochs").value == 9


def test_a_stopped_run_resumes_from_its_row(run_page):
    """A run stopped before its last epoch shows a Resume button; pressed, the same run goes on to its end."""
    from cnn_lab import runs
    from cnn_lab.presets import preset

    config = preset("Digits (seconds, built in)")
    config.epochs = 200
    job = jobs.MANAGER.start(config)
    assert wait_for(lambda: len(job.log.epochs) >= 2, 60)
    jobs.MANAGER.stop(job)
    job.thread.join(60)
    done = len(runs.load_run(job.run_id).epochs)
    at = run_page("pages/5_train.py")
    assert any(f"Run {job.run_id} has {done} of its 200 epochs: it was stopped" in w.value for w in at.warning)
    at.button(key=f"resume_{job.run_id}").click().run()
    again = jobs.MANAGER.get(job.run_id)
    assert again is not job and again.run_id == job.run_id and again.alive
    jobs.MANAGER.stop(again)  # (it would finish; stopped again, it is resumable again)
    again.thread.join(60)
    epochs = [e.epoch for e in runs.load_run(job.run_id).epochs]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= done


def test_pause_resume_and_stop_from_the_page_reach_the_job(run_page):
    """The page's Pause, Resume and Stop act on the running job, as callbacks that run when the click's rerun starts
    (the page's own reruns, at each epoch of a fast job, could otherwise stop that rerun before the button)."""
    from cnn_lab.presets import preset

    long = preset("Digits (seconds, built in)")
    long.epochs = 500
    job = jobs.MANAGER.start(long)
    try:
        assert wait_for(lambda: job.log.snapshot().steps)
        at = run_page("pages/5_train.py")  # the page finds the running job
        press = lambda label: next(b for b in at.button if b.label == label).click().run()  # noqa: E731
        press("Pause")
        assert job.status == "paused" and not job.control.running.is_set()
        assert not at.exception and next(b for b in at.button if b.label == "Resume").disabled is False
        press("Resume")
        assert job.status == "running" and job.control.running.is_set()
        press("Stop")
        assert wait_for(lambda: not job.alive, 60) and job.status == "stopped", job.message
    finally:
        jobs.MANAGER.stop(job)
