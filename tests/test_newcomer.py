"""A newcomer's first minutes, through AppTest, on a machine with no data folder and no network: each page says
what to do next, in plain words, before anything is started."""
import socket

import pytest

from cnn_lab import jobs, runs

pytestmark = pytest.mark.newcomer


class _Connection:
    def close(self) -> None:
        pass


def _unreachable(*args, **kwargs):
    raise OSError("Network is unreachable")


@pytest.fixture
def bare_machine(monkeypatch, tmp_path):
    """No data folder, an empty cache, and no network (every connection is refused)."""
    from cnn_lab import downloads

    monkeypatch.setenv("CNN_LAB_DATA", "")
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(downloads, "_reachable_cache", {})
    monkeypatch.setattr(socket, "create_connection", _unreachable)
    return tmp_path


def test_train_page_says_the_data_is_missing_before_start_and_offers_digits(bare_machine, run_page):
    at = run_page("pages/5_train.py")
    assert not at.exception
    assert at.selectbox(key="preset").value == "CPU: 70% in a minute"  # the default on a CPU; CIFAR-10 is not here
    assert "CIFAR-10 is not on this machine and cannot be downloaded now" in at.warning[0].value
    start = next(b for b in at.button if b.label == "Start training")
    assert start.disabled  # no failed run with "epoch 0/?" to read
    before = {r.run_id for r in runs.list_runs()}
    next(b for b in at.button if b.label.startswith("Use the built-in Digits preset")).click().run()
    assert at.selectbox(key="preset").value == "Digits (seconds, built in)"
    assert not at.warning and not next(b for b in at.button if b.label == "Start training").disabled
    assert {r.run_id for r in runs.list_runs()} == before  # nothing was started, nothing clutters the history


def test_train_page_says_a_download_will_happen_when_the_network_answers(bare_machine, monkeypatch, run_page):
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: _Connection())  # the server answers
    at = run_page("pages/5_train.py")
    assert "downloads (170 MB) when you press Start" in at.info[0].value
    assert not next(b for b in at.button if b.label == "Start training").disabled


def test_transfer_page_explains_every_source_when_none_is_here(bare_machine, run_page):
    at = run_page("pages/6_transfer.py")
    assert not at.exception
    guide = at.info[0].value
    assert guide.startswith("No boat photos are on this machine yet")
    for words in ("boats9", "9 classes", "CNN_LAB_DATA", "Kaggle", "kagglehub", "Upload a zip", "one folder per class",
                  "A folder on this machine"):
        assert words in guide, words
    assert at.radio(key="source").value == "upload"  # the first thing a newcomer can do here
    at.radio(key="source").set_value("boats9").run()
    assert "boats9 is not on this machine. Put boats9.tar.gz in a folder" in at.warning[0].value
    at.radio(key="source").set_value("kaggle").run()
    assert "cannot reach kaggle.com" in at.warning[0].value and not at.exception


def test_transfer_page_starts_on_boats9_when_it_is_here(boats9_archive, monkeypatch, run_page):
    at = run_page("pages/6_transfer.py")
    assert at.radio(key="source").value == "boats9"
    assert not any(i.value.startswith("No boat photos") for i in at.info)


def test_a_failed_start_is_said_in_the_panel_without_placeholders(bare_machine, run_page):
    """Started anyway (the CLI, or the data vanished after the check): the job's sentence, no "epoch 0/?"."""
    from cnn_lab.presets import preset

    job = jobs.MANAGER.start(preset("Course: CNN"))
    job.thread.join(timeout=60)
    assert job.status == "failed"
    assert job.message.startswith("CIFAR-10 could not be downloaded: this machine cannot reach its server")
    assert not (runs.runs_root() / job.run_id).exists()  # a run that never started is not in the history
    at = run_page("pages/5_train.py")
    assert at.get("progress")[0].proto.text == "failed"
    assert at.error[0].value == job.message


def test_transfer_page_says_before_start_when_backbone_weights_cannot_be_had(bare_machine, tmp_path, monkeypatch, run_page):
    import torch

    from tests.helpers import noise_folder

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no cached weights
    at = run_page("pages/6_transfer.py")
    at.radio(key="source").set_value("folder").run()
    at.text_input(key="folder").input(str(noise_folder(tmp_path / "photos", ["kayak", "tug"], per_class=8, size=(24, 24)))).run()
    backbone = next(s for s in at.selectbox if s.label == "Backbone")
    assert not backbone.value.startswith("resnet")  # EfficientNet-Lite0 first: it ships with the app
    backbone.set_value("resnet18").run()
    assert "cannot be downloaded now (no network): choose EfficientNet-Lite0" in at.warning[0].value
    assert next(b for b in at.button if b.label == "Start the linear probe").disabled
