"""The command line as people script it: --set for any field, progress on stderr, the JSON result last on
stdout, every error as one sentence on stderr with exit code 2 (never a traceback), and the saved runs."""
import json
import os
import subprocess
import sys

import pytest

from cnn_lab import overrides
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, noise_folder


def cli(*arguments: str, cache) -> subprocess.CompletedProcess:
    env = os.environ | {"CNN_LAB_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "cnn_lab", *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_help_runs():
    out = subprocess.run([sys.executable, "-m", "cnn_lab", "--help"], capture_output=True, text=True, check=True)
    assert "python -m cnn_lab" in out.stdout


def test_set_reaches_any_field_nested_too():
    config = overrides.apply(TrainConfig(), ["lr=0.01", "model.widths=[8, 16]", "augment=[\"flip\"]",
                                             "dataset=digits", "nesterov=false", "model.name=cnn", "momentum=1"])
    assert (config.lr, config.model.widths, config.augment, config.dataset) == (0.01, [8, 16], ["flip"], "digits")
    assert config.nesterov is False and config.model.name == "cnn" and config.momentum == 1.0


@pytest.mark.parametrize("assignment, sentence", [
    ("lrr=0.1", "TrainConfig has no field 'lrr'; its fields are: dataset, model,"),
    ("model.depth=3", "model has no field 'depth'"),
    ("epochs=many", "epochs takes a whole number (it is 5 now), not \"many\"."),
    ("nesterov=1", "nesterov takes true or false"),
    ("model.widths=8", "model.widths takes a list"),
    ("lr", "--set takes field=value"),
    ("lr.x=1", "lr has no fields inside it."),
])
def test_set_refuses_unknown_fields_and_bad_values_in_one_sentence(assignment, sentence):
    with pytest.raises(overrides.OverrideError, match="^" + sentence.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.").replace("[", r"\[")):
        overrides.apply(TrainConfig(), [assignment])


@pytest.mark.heavy
def test_train_with_set_prints_progress_then_json_and_the_run_is_listed(tmp_path, monkeypatch, capsys):
    out = cli("train", "--preset", "Digits (seconds, built in)", "--set", "epochs=2", "--set", "model.widths=[8,16]",
              "--set", "lr=0.05", cache=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["test_acc"] > 0.8
    # stderr is a pipe here, not a terminal: plain lines with the step count out of its total, no \r frames
    assert "\r" not in out.stderr and "epoch 2/2 · step " in out.stderr and "img/s" in out.stderr
    last = next(line for line in reversed(out.stderr.splitlines()) if line.startswith("epoch 2/2"))
    done, total = last.split("step ")[1].split(" ·")[0].split(" of ")
    assert done == total  # the final line shows where it ended
    listing = cli("runs", "--json", cache=tmp_path)
    runs = json.loads(listing.stdout)
    assert len(runs) == 1 and runs[0]["status"] == "finished" and runs[0]["epochs"] == 2
    assert cli("runs", cache=tmp_path).stdout.startswith(runs[0]["run"])
    # out of the app and back: ONNX and the checkpoint, then the checkpoint imported as a second run (in this
    # process: main() is what `python -m cnn_lab` runs, without another start of torch)
    import onnxruntime

    from cnn_lab.__main__ import main

    run_id = runs[0]["run"]
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    assert main(["export", run_id, "--onnx", str(tmp_path / "digits.onnx"), "--checkpoint",
                 str(tmp_path / "digits.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == [str(d) for d in range(10)]
    session = onnxruntime.InferenceSession(str(tmp_path / "digits.onnx"))
    assert session.get_inputs()[0].shape[1:] == [1, 8, 8]
    assert main(["import", str(tmp_path / "digits.pt")]) == 0
    imported = json.loads(capsys.readouterr().out)["run"]
    listing = json.loads(cli("runs", "--json", cache=tmp_path).stdout)
    assert [r["run"] for r in listing] == [imported, run_id] and listing[0]["test_acc"] == runs[0]["test_acc"]
    assert " · imported · " in cli("runs", cache=tmp_path).stdout.splitlines()[0]  # not "0 epochs"


@pytest.mark.parametrize("arguments, sentence", [
    (["train", "--preset", "Digits (seconds, built in)", "--set", "lrr=1"], "error: TrainConfig has no field 'lrr'"),
    (["train", "--preset", "No such preset"], "error: No preset 'No such preset'; the presets are: "),
    (["train", "--config", "/no/such/config.json"], "error: Cannot read /no/such/config.json: No such file"),
    (["train", "--preset", "Digits (seconds, built in)", "--set", "epochs=0"], "error: Set at least 1 epoch"),
    # the course MLP's LeakyReLU slope kept for ReLU: refused before CIFAR-10 loads (it used to fail 50 s later)
    (["train", "--preset", "Course: MLP", "--set", "model.activation=relu"],
     "error: The activation relu has no parameter 'negative_slope' (it takes no parameters)"),
    (["export", "20990101-000000-000000", "--onnx", "x.onnx"], "error: No saved run '20990101-000000-000000'"),
    (["export", "20990101-000000-000000"], "error: Say what to write: --onnx FILE"),
    (["import", str(ROOT / "README.md")], "error: This file is not a PyTorch checkpoint"),
])
def test_errors_are_one_sentence_with_exit_code_2(tmp_path, monkeypatch, capsys, arguments, sentence):
    from cnn_lab.__main__ import main

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    assert main(arguments) == 2  # in this process: main() returns the exit code, and raises nothing
    assert sentence in capsys.readouterr().err


@pytest.mark.heavy
def test_a_folder_with_too_few_images_is_a_sentence_not_a_traceback(tmp_path):
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "data" / name / "one.png")
    out = cli("train", "--preset", "Digits (seconds, built in)", "--dataset", str(tmp_path / "data"),
              "--set", "model.name=cnn", cache=tmp_path / "cache")
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in out.stderr


def test_a_probe_on_a_new_folder_counts_its_images_while_decoding_and_extracting(tmp_path, monkeypatch):
    """Issue 31, bug 4: loading and feature extraction showed '0step [00:50, ?step/s]' with no total. Every stage
    the job publishes (what the CLI and the page show) is recorded here, since a 0.25-s poll can miss a fast one."""
    from cnn_lab import transfer
    from cnn_lab.metrics import MetricLog

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    noise_folder(tmp_path / "photos", ["cats", "dogs"], per_class=20, size=(64, 64))
    stages, log = [], MetricLog()
    publish = log.set_progress
    monkeypatch.setattr(log, "set_progress", lambda **fields: (stages.append(fields.get("stage", "")),
                                                               publish(**fields)))
    config = transfer.TransferConfig(data=str(tmp_path / "photos"), image_size=64, epochs=2, batch_size=16)
    transfer.run_transfer(config, log)
    assert any(s.startswith("decoding the images: 40 of 40 images · ") and "images/s" in s for s in stages), stages
    assert any(s.startswith("extracting features: 28 of 28 images · ") for s in stages), stages  # train, 70%
    assert any(s.startswith("extracting features of the mirrored images: ") for s in stages), stages
