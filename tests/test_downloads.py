"""Downloads against a real HTTP server on the loopback address: progress, cancel, broken and corrupt
downloads leave nothing behind, and a torchvision dataset arrives through them."""
import gzip
import hashlib
import http.server
import struct
import threading
import time

import numpy as np
import pytest

from cnn_lab import data, downloads


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    slow = threading.Event()  # while set, the server sends 64 kB every 50 ms
    short = False  # promise more bytes than are sent

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (1000 if self.short else 0)))
        self.end_headers()
        for start in range(0, len(body), 1 << 16):
            self.wfile.write(body[start : start + (1 << 16)])
            if self.slow.is_set():
                time.sleep(0.05)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.files, _Handler.short = {}, False
    _Handler.slow.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _Handler.slow.clear()
    httpd.shutdown()


def _leftovers(folder):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_fetch_reports_progress_and_checks_the_checksum(server, tmp_path):
    body = np.random.default_rng(0).bytes(3 << 20)
    _Handler.files["/big.bin"] = body
    _Handler.slow.set()
    seen = []
    dest = tmp_path / "big.bin"
    downloads.fetch(server + "/big.bin", dest, "a test file", hashlib.md5(body).hexdigest(),
                    downloads.Reporter(report=seen.append), every=0.1)
    assert dest.read_bytes() == body and _leftovers(tmp_path) == ["big.bin"]
    assert len(seen) >= 3 and seen[-1].done == seen[-1].total == len(body) and seen[-1].fraction == 1.0
    assert seen[0].done < seen[-1].done
    assert "downloading a test file: 3.1 of 3.1 MB" in seen[-1].text() and "ETA 0 s" in seen[-1].text()
    _Handler.slow.clear()
    with pytest.raises(downloads.DownloadError, match="corrupt"):
        downloads.fetch(server + "/big.bin", tmp_path / "other.bin", "a test file", md5="0" * 32)
    assert _leftovers(tmp_path) == ["big.bin"]


def test_cancel_and_broken_downloads_leave_nothing(server, tmp_path):
    _Handler.files["/big.bin"] = bytes(4 << 20)
    _Handler.slow.set()
    cancel = threading.Event()
    seen = []

    def report(progress):
        seen.append(progress)
        if progress.done > 1 << 20:
            cancel.set()  # the user presses Cancel (or Stop) mid-download

    with pytest.raises(downloads.DownloadCancelled, match="cancelled; nothing was kept"):
        downloads.fetch(server + "/big.bin", tmp_path / "big.bin", "a test file",
                        reporter=downloads.Reporter(report, cancel), every=0.05)
    assert seen and _leftovers(tmp_path) == []
    _Handler.slow.clear()
    _Handler.short = True
    with pytest.raises(downloads.DownloadError, match="broke off"):
        downloads.fetch(server + "/big.bin", tmp_path / "big.bin", "a test file")
    assert _leftovers(tmp_path) == []
    _Handler.short = False
    with pytest.raises(downloads.DownloadError, match="could not be downloaded"):
        downloads.fetch(server + "/missing.bin", tmp_path / "missing.bin", "a test file")
    downloads.fetch(server + "/big.bin", tmp_path / "big.bin", "a test file")  # the next try works
    assert (tmp_path / "big.bin").stat().st_size == 4 << 20


def test_background_download_is_joined_not_repeated_and_cancels(server, tmp_path):
    _Handler.files["/big.bin"] = bytes(4 << 20)
    _Handler.slow.set()
    background = downloads.Background()
    dest = tmp_path / "big.bin"
    task = background.start("big", "a test file", lambda reporter: downloads.fetch(
        server + "/big.bin", dest, "a test file", reporter=reporter, every=0.05))
    assert background.start("big", "a test file", lambda reporter: 1 / 0) is task  # a second tab joins it
    for _ in range(100):
        if task.progress and task.progress.done > 0:
            break
        time.sleep(0.05)
    task.cancel.set()
    task.thread.join(timeout=30)
    assert task.status == "cancelled" and not dest.exists() and _leftovers(tmp_path) == []
    _Handler.slow.clear()
    task = background.start("big", "a test file", lambda reporter: downloads.fetch(
        server + "/big.bin", dest, "a test file", reporter=reporter))
    task.thread.join(timeout=30)
    assert task.status == "done" and task.result == dest and dest.stat().st_size == 4 << 20


def _idx(array: np.ndarray) -> bytes:
    """MNIST's idx format, gzipped: magic (0, 0, uint8 type, dims), the sizes, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_a_torchvision_set_arrives_through_the_downloader(server, monkeypatch):
    """MNIST's four files come from the loopback server (with their md5s), with progress, then torchvision reads them."""
    import torchvision.datasets as tvd

    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (30, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(30) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(10)),
    }
    _Handler.files = {f"/mnist/{name}": body for name, body in files.items()}
    monkeypatch.setattr(tvd.MNIST, "mirrors", ["http://127.0.0.1:9/nothing-listens-here/", server + "/mnist/"])
    monkeypatch.setattr(tvd.MNIST, "resources", [(name, hashlib.md5(body).hexdigest()) for name, body in files.items()])
    seen = []
    mnist = data.load_dataset("mnist", downloads.Reporter(report=seen.append))
    assert mnist.image_shape == (1, 28, 28) and len(mnist.splits["train"]) == 30 and len(mnist.splits["test"]) == 10
    assert mnist.splits["test"].labels.tolist() == list(range(10))
    assert {p.label for p in seen} == {f"downloading MNIST (file {i} of 4)" for i in range(1, 5)}
    assert data.availability("mnist").on_machine


def test_stop_cancels_a_jobs_download_and_leaves_no_run(server, monkeypatch, tmp_path):
    """A training job that has to download its data shows the download as its progress; Stop cancels it."""
    import torchvision.datasets as tvd

    from cnn_lab import jobs, runs
    from cnn_lab.models import ModelSpec
    from cnn_lab.train import TrainConfig

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    body = bytes(8 << 20)
    _Handler.files = {"/mnist/train-images-idx3-ubyte.gz": body}
    _Handler.slow.set()
    monkeypatch.setattr(tvd.MNIST, "mirrors", [server + "/mnist/"])
    monkeypatch.setattr(tvd.MNIST, "resources", [("train-images-idx3-ubyte.gz", hashlib.md5(body).hexdigest())])
    manager = jobs.JobManager()
    job = manager.start(TrainConfig(dataset="mnist", model=ModelSpec("mlp"), epochs=1))
    for _ in range(200):
        if "downloading MNIST" in job.log.snapshot().progress.stage:
            break
        time.sleep(0.05)
    progress = job.log.snapshot().progress
    assert progress.stage.startswith("downloading MNIST: ") and " of 8.4 MB" in progress.stage
    assert 0 < progress.stage_fraction < 1
    manager.stop(job)
    job.thread.join(timeout=30)
    assert job.status == "stopped" and "cancelled" in job.message
    assert not (runs.runs_root() / job.run_id).exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".part"]
    assert not (tmp_path / "torchvision" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_kagglehubs_own_download_loop_reports_progress_and_cancels(tmp_path):
    """kagglehub draws its progress with tqdm; inside `_kaggle_progress` its real download loop reports to the
    reporter and stops when it is cancelled (kagglehub resumes the partial file next time, checking its md5)."""
    import kagglehub.clients

    from cnn_lab import transfer

    class Response:  # what requests gives kagglehub: chunks of the body
        def iter_content(self, size):
            for _ in range(20):
                yield bytes(size)

    seen, cancel = [], threading.Event()

    def report(progress):
        seen.append(progress)
        if len(seen) == 5:
            cancel.set()

    total = 20 * kagglehub.clients.CHUNK_SIZE
    with pytest.raises(downloads.DownloadCancelled):
        with transfer.kaggle_progress(downloads.Reporter(report, cancel)):
            kagglehub.clients._download_file(Response(), str(tmp_path / "boats.zip"), 0, total, None)
    assert [p.done for p in seen] == [i * kagglehub.clients.CHUNK_SIZE for i in range(1, 6)]
    assert seen[0].total == total and seen[0].label == "downloading the Kaggle boat types"
    assert kagglehub.clients.tqdm.__name__ == "tqdm"  # put back afterwards
