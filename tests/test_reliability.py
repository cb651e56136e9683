"""Misuse: 20 start/stop cycles leak neither threads nor memory, and a corpus of bad files and settings each
gets one clear sentence from the core, never a crash or a hang."""
import ctypes
import gc
import os
import pickle
import subprocess
import sys
import threading
import time
import zipfile

import psutil
import pytest
import torch

from cnn_lab import augment, conv, data, geometry, images, jobs, kernels, runs
from cnn_lab.models import ModelSpec
from cnn_lab.train import TrainConfig, TrainingError, fit
from tests.helpers import ODD_FILES, ROOT


@pytest.mark.heavy
def test_twenty_start_stop_cycles_leave_no_threads_and_flat_memory():
    manager = jobs.JobManager()
    config = TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32]), epochs=500, batch_size=16)
    process = psutil.Process()
    rss = []
    threads_before = set(threading.enumerate())  # other tests' threads may end meanwhile: only new ones count
    for cycle in range(20):
        job = manager.start(config)
        deadline = time.time() + 30
        while not job.log.snapshot().progress.training and time.time() < deadline:  # its loop has started
            time.sleep(0.02)
        manager.stop(job)
        job.thread.join(timeout=30)
        assert job.status == "stopped"
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the system: RSS then counts live memory
        rss.append(process.memory_info().rss)
    left = lambda: set(threading.enumerate()) - threads_before  # noqa: E731
    for _ in range(50):  # the supervisor thread ends within half a second of the last job
        if not left():
            break
        time.sleep(0.1)
    assert not left(), left()
    growth = (rss[-1] - rss[4]) / 2**20  # after the first cycles have warmed the allocator up
    print(f"RSS after cycle 5: {rss[4] / 2**20:.0f} MiB, after 20: {rss[-1] / 2**20:.0f} MiB")
    assert growth < 60, f"memory grew by {growth:.0f} MiB over 15 cycles"


@pytest.mark.parametrize("name", list(ODD_FILES))
def test_bad_and_odd_files(name):
    payload, message = ODD_FILES[name]
    if message is None:
        loaded = images.load_image(payload)
        assert loaded.image.mode == "RGB"
        return
    with pytest.raises(images.ImageError, match=message) as error:
        images.load_image(payload)
    sentence = str(error.value)
    assert sentence.endswith(".") and "\n" not in sentence and "Traceback" not in sentence


def test_one_pixel_image_through_the_convolution_core():
    one = images.to_tensor(images.load_image(ODD_FILES["1x1 PNG"][0]).image)
    out = conv.convolve(one, kernels.make_kernel("sharpen")[None], conv.ConvSettings(padding=1))
    assert out.shape == (3, 1, 1)
    with pytest.raises(conv.ConvError, match="pooling window"):
        conv.conv_relu_pool(one, kernels.make_kernel("sharpen")[None], conv.ConvSettings(padding=1), "max", 2)


def test_zip_bomb_and_traversal(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"c{i}/zeros.png", b"\0" * (40 * 2**20))
    with pytest.raises(data.DatasetError, match=r"unpacks to 160 MB in 4 files \(1,0\d\d times its own size\)"):
        data.extract_archive(bomb, max_bytes=100 * 2**20)
    big = tmp_path / "big.zip"  # no bomb (noise does not compress), only over the size limit
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("c0/noise.png", os.urandom(2 * 2**20))
    with pytest.raises(data.DatasetError, match=r"unpacks to 2 MB in 1 file \(1 times its own size\), more than"):
        data.extract_archive(big, max_bytes=2**20)
    assert data.extract_archive(big).is_dir()  # under the default size limit: extracted
    traversal = tmp_path / "traversal.zip"
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../../etc/evil.png", b"x")
    with pytest.raises(data.DatasetError, match="unsafe path"):
        data.extract_archive(traversal)
    absolute = tmp_path / "absolute.zip"
    with zipfile.ZipFile(absolute, "w") as zf:
        zf.writestr("/tmp/evil.png", b"x")
    with pytest.raises(data.DatasetError, match="unsafe path"):
        data.extract_archive(absolute)


def test_malicious_pickle_checkpoint(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    run_id = runs.create_run(runs.new_run_id(), "train", TrainConfig().to_json())
    (runs.runs_root() / run_id / "model.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(pickle.UnpicklingError):
        runs.load_weights(run_id)


# settings that cannot work -> the sentence they must get
SETTINGS = [
    (lambda: fit(TrainConfig(dataset="digits", model=ModelSpec("mlp"), lr=1e8, epochs=2)), TrainingError,
     "too high for this model"),
    (lambda: fit(TrainConfig(dataset="digits", model=ModelSpec("mlp"), epochs=0)), TrainingError, "at least 1 epoch"),
    (lambda: fit(TrainConfig(dataset="digits", model=ModelSpec("mlp"), batch_size=10**4)), TrainingError,
     "larger than the training set"),
    (lambda: fit(TrainConfig(dataset="nope")), data.DatasetError, "Unknown dataset"),
    (lambda: conv.convolve(torch.rand(3, 4, 4), torch.ones(1, 9, 9), conv.ConvSettings(padding=0)), conv.ConvError,
     "more than the padded image"),
    (lambda: conv.convolve(torch.rand(3, 64, 64), kernels.make_kernel("laplacian")[None],
                           conv.ConvSettings(normalise=True)), conv.ConvError, "sums to zero"),
    (lambda: geometry.output_size(geometry.Layer("conv", 11, 8, 0, dilation=5), (32, 32)), geometry.GeometryError,
     "would be"),
    (lambda: geometry.output_size(geometry.Layer("conv", 3, 8, "same"), (64, 64)), geometry.GeometryError,
     "not supported"),
    (lambda: augment.build([{**augment.new_step("blur"), "params": {"kernel": 30.0, "min_sigma": 0.1,
                                                                      "max_sigma": 2.0}}], (32, 32)),
     augment.AugmentError, "odd"),
    (lambda: augment.from_json("[1, 2, 3]"), augment.AugmentError, "not a pipeline JSON"),
]


@pytest.mark.parametrize("call, error, message", SETTINGS, ids=[s[2] for s in SETTINGS])
def test_impossible_settings(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_corpus_is_at_least_25_cases():
    assert len(ODD_FILES) + len(SETTINGS) + 3 >= 25  # plus the zip bomb, the traversal zips and the pickle


@pytest.mark.heavy
def test_the_command_line_exits_cleanly_while_a_daemon_thread_is_inside_torch():
    """The command line's exit (exit_now) skips Python's shutdown, at which a daemon thread still inside a PyTorch
    operation aborts the process: this script, ended by a plain return instead, aborts with SIGABRT in 10 runs of
    10 here."""
    script = ("import threading, time, torch\nfrom cnn_lab.__main__ import exit_now\na = torch.randn(1500, 1500)\n"
              "threading.Thread(target=lambda: [a @ a for _ in range(10_000)], daemon=True).start()\n"
              "time.sleep(0.3)\nprint('the result')\nexit_now(3)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (3, "the result\n", "")


def test_features_are_written_whole_or_not_at_all(monkeypatch, tmp_path):
    """A probe's features whose save fails half-way (a full disk; a killed app is the same, less the clean-up) leave
    no file that the next probe would load as if it were whole; the next probe computes them again and keeps them.
    On a class server two people's probes of one dataset save the same file, each through its own temporary one."""
    from types import SimpleNamespace

    from cnn_lab.transfer import features

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(features, "extract_features", lambda *args, **kwargs: torch.ones(4, 3))
    dataset = SimpleNamespace(source_id="tiny-1234", name="tiny", splits={"train": SimpleNamespace(images=None)})
    save = torch.save

    def half_then_a_full_disk(value, path):
        open(path, "wb").write(b"PK\x03\x04 half of a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_a_full_disk)
    with pytest.raises(OSError):
        features.cached_features("backbone", None, dataset, "train", torch.device("cpu"))
    assert list((tmp_path / "features").iterdir()) == []
    monkeypatch.setattr(torch, "save", save)
    assert torch.equal(features.cached_features("backbone", None, dataset, "train", torch.device("cpu")),
                       torch.ones(4, 3))
    monkeypatch.setattr(features, "extract_features", lambda *args, **kwargs: pytest.fail("computed again"))
    assert torch.equal(features.cached_features("backbone", None, dataset, "train", torch.device("cpu")),
                       torch.ones(4, 3))
    assert [p.name for p in (tmp_path / "features").iterdir()] == ["backbone-tiny-1234-train.pt"]
