import io
import socket
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnn_lab import data
from cnn_lab.data import folders
from cnn_lab.downloads import Reporter
from cnn_lab.paths import cache_root
from tests.helpers import noise_folder


def test_cifar10_from_real_archive(cifar10):
    assert cifar10.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    train, test = cifar10.splits["train"], cifar10.splits["test"]
    assert train.images.shape == (50_000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 3, 32, 32)
    assert cifar10.class_counts("train") == [5000] * 10
    assert train.labels.dtype == torch.int64
    assert 100 < train.images.float().mean() < 140  # real photos, not zeros


def test_cached_load_decodes_nothing_and_is_identical(cifar10, monkeypatch):
    def no_decoding(*args):
        raise AssertionError("a cached load decoded an image again")

    monkeypatch.setattr(folders, "_decode", no_decoding)
    monkeypatch.setattr(folders, "_decode_folder", no_decoding)
    again = data.load_dataset("cifar10")  # how long this takes is in BENCHMARKS.md, not asserted here
    assert torch.equal(again.splits["train"].images, cifar10.splits["train"].images)
    assert torch.equal(again.splits["test"].labels, cifar10.splits["test"].labels)


def test_boats9_presplit(boats9_folder):
    boats = data.load_folder(boats9_folder, size=48)
    assert len(boats.classes) == 9 and "Cruise Ships" in boats.classes  # names with spaces
    assert {k: len(v) for k, v in boats.splits.items()} == {"train": 872, "val": 105, "test": 118}
    assert boats.image_shape == (3, 48, 48)


def test_digits_builtin():
    digits = data.load_dataset("digits")
    assert len(digits.splits["train"]) + len(digits.splits["test"]) == 1797
    assert digits.image_shape == (1, 8, 8)
    assert digits.splits["train"].images.max() == 255
    # read from scikit-learn's own file without importing it: the same images and labels as its loader
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.cat([digits.splits["train"].images, digits.splits["test"].images]).flatten(1).tolist()
    labels = torch.cat([digits.splits["train"].labels, digits.splits["test"].labels]).tolist()
    expected = (bunch.images * (255 / 16)).round().astype(int).reshape(len(bunch.images), -1).tolist()
    assert sorted(zip(images, labels)) == sorted(zip(expected, bunch.target.tolist()))


def test_unsplit_folder_skips_corrupt_files_and_splits_stratified(tmp_path):
    noise_folder(tmp_path, ["cats", "dogs"], per_class=10)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    ds = data.load_folder(tmp_path, size=8)
    assert ds.skipped == 2
    assert ds.classes == ["cats", "dogs"]
    assert sum(len(s) for s in ds.splits.values()) == 20
    for split in ds.splits.values():
        assert torch.bincount(split.labels).tolist()[0] == torch.bincount(split.labels).tolist()[1]


def test_cache_invalidated_when_source_changes(tmp_path):
    noise_folder(tmp_path, ["a", "b"], per_class=5)
    first = data.load_folder(tmp_path, size=8)
    noise_folder(tmp_path / "extra", [], per_class=0)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a" / "new.png")
    second = data.load_folder(tmp_path, size=8)
    assert sum(len(s) for s in second.splits.values()) == sum(len(s) for s in first.splits.values()) + 1


def test_a_folder_split_on_disk_is_decoded_once_for_every_seed(tmp_path):
    """The seed draws only the splits a folder lacks: with train, val and test on disk, a second seed reads the
    first one's arrays; a folder of class folders alone is split anew by each seed."""
    for split in ("train", "val", "test"):
        noise_folder(tmp_path / "split" / split, ["a", "b"], per_class=3)
    noise_folder(tmp_path / "flat", ["a", "b"], per_class=10)
    decoded = []
    reporter = Reporter(report=lambda progress: decoded.append(progress.done))
    first = data.load_folder(tmp_path / "split", size=8, seed=0, reporter=reporter)
    assert decoded  # the first load decodes
    decoded.clear()
    second = data.load_folder(tmp_path / "split", size=8, seed=1, reporter=reporter)
    assert not decoded and second.source_id == first.source_id
    assert all(torch.equal(second.splits[s].images, first.splits[s].images) for s in first.splits)
    flat = [data.load_folder(tmp_path / "flat", size=8, seed=seed) for seed in (0, 1)]
    assert flat[0].source_id != flat[1].source_id  # each seed's own split, and its own cached features
    assert not torch.equal(flat[0].splits["test"].images, flat[1].splits["test"].images)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "no class folders: put the photos of each class in a folder named after it"),
        (lambda root: (root / "a").mkdir() or (root / "b").mkdir(), "hold no files"),
        (lambda root: noise_folder(root, ["only"], per_class=5), r"only one class \(only\)"),
        (lambda root: noise_folder(root, ["a", "b"], per_class=2),
         "a, b have fewer than 3 photos: each class needs at least one for each of train, val, test"),
        (lambda root: noise_folder(root / "train", ["a", "b"], per_class=3) and noise_folder(root / "train", ["c"], 1),
         "c has fewer than 2 photos: each class needs at least one for each of train, test"),
    ],
)
def test_bad_folders_give_one_sentence_before_any_photo_is_decoded(tmp_path, monkeypatch, make, message):
    """Named by the class, and refused before decoding: a class short of photos, or a single class."""
    from cnn_lab.data import folders

    make(tmp_path)
    monkeypatch.setattr(folders, "_decode", lambda *args: pytest.fail("decoding started"))
    with pytest.raises(data.DatasetError, match=message):
        data.load_folder(tmp_path, size=8)


def test_a_class_short_of_readable_photos_is_named(tmp_path):
    """Three files in each class, but one of b's is not a photo: the sentence names b, not a label number."""
    noise_folder(tmp_path, ["a", "b"], per_class=3)
    next((tmp_path / "b").iterdir()).write_text("not a photo")
    with pytest.raises(data.DatasetError, match="b has only 2 readable image"):
        data.load_folder(tmp_path, size=8)


def test_folder_of_non_images(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):  # enough files for the three splits, none of them an image
            (tmp_path / name / f"{i}.jpg").write_text("hello")
    with pytest.raises(data.DatasetError, match="None of the files"):
        data.load_folder(tmp_path, size=8)


def test_offline_download_names_dataset(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(data.DatasetUnavailable, match="CIFAR-100 could not be downloaded: this machine cannot reach"):
        data.load_dataset("cifar100")
    assert not list((cache_root() / "torchvision").glob("*.part"))  # nothing half-written


def test_the_same_archive_extracted_twice_at_once_gives_one_whole_folder(tmp_path, monkeypatch):
    """Two people upload the same archive at the same moment (or two processes share one cache): both extractions
    end with the one complete folder. The race made certain: the first extraction to finish waits at its rename
    until the second has renamed its own folder into place (at most 2 s); that used to fail the first as "damaged",
    and could remove a folder the other was reading."""
    import threading

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(20):
            zf.writestr(f"photos/{'ab'[i % 2]}/{i}.txt", "x")
    rename, first, second_done = Path.rename, threading.Event(), threading.Event()

    def racing_rename(self, target):
        if not self.name.endswith(".partial"):
            return rename(self, target)
        if not first.is_set():  # the first to finish extracting
            first.set()
            second_done.wait(2)
            return rename(self, target)
        try:
            return rename(self, target)
        finally:
            second_done.set()

    monkeypatch.setattr(Path, "rename", racing_rename)
    start, found, errors = threading.Barrier(2), [], []

    def extract() -> None:
        start.wait()
        try:
            found.append(data.extract_archive(archive))
        except data.DatasetError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=extract) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(found)) == 1 and len(found) == 2
    assert len(list(found[0].rglob("*.txt"))) == 20 and not list(found[0].parent.glob("*.partial"))


def test_zip_with_path_traversal_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/ok.txt", "fine")
        zf.writestr("../../escape.txt", "gotcha")
    with pytest.raises(data.DatasetError, match="unsafe path"):
        data.extract_archive(archive)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_zip_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/zeros.bin", b"\0" * (64 * 2**20))
    assert archive.stat().st_size < 2**20
    with pytest.raises(data.DatasetError, match=r"unpacks to 64 MB in 1 file \(.* times its own size\), more than"):
        data.extract_archive(archive, max_bytes=32 * 2**20)


def test_availability_words(monkeypatch, tmp_path):
    from cnn_lab import downloads

    assert data.availability("digits") == data.Availability(True, "built in")
    monkeypatch.setenv("CNN_LAB_DATA", str(tmp_path))  # an empty data folder
    boats = data.availability("boats9")
    assert not boats.on_machine and boats.note.startswith("not on this machine: put boats9.tar.gz")
    monkeypatch.setattr(downloads, "_reachable_cache", {})
    monkeypatch.setattr(socket, "create_connection", _refuse)  # offline
    cifar = data.availability("cifar100")
    assert not cifar.on_machine and cifar.note == "downloads on first use (needs the network)"
    assert "cannot be downloaded now" in cifar.advice and "Digits" in cifar.advice
    monkeypatch.setattr(downloads, "_reachable_cache", {})
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: io.BytesIO())  # online: a connection opens
    assert "downloads (169 MB) when you press Start" in data.availability("cifar100").advice


def _refuse(*args, **kwargs):
    raise OSError("Network is unreachable")


def test_empty_folder_path_is_refused():
    with pytest.raises(data.DatasetError, match="Type the path of an image folder"):
        data.load_dataset("  ")
