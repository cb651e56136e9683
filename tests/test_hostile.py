"""A hostile learner on a class server (issue 55): every case in one place. Each test is an upload, an import, a
link or a setting that one learner can give, and asserts that it gets one sentence, before the work starts, and that
it costs nobody else anything. The four bombs of the issue's "Done when" run as real processes (the command line),
in both modes, each refused with exit 2 in a bounded time and memory; the rest through the core's own functions and
the pages (AppTest)."""
from __future__ import annotations

import bz2
import io
import json
import tarfile
import time
import zipfile

import pytest
import torch
from onnx import TensorProto, helper

from tests.helpers import peak_of_cli

MODES = {"local": "", "shared": "1"}


def tar_bomb(path, members: int) -> None:
    """A bzip2 tar of `members` empty files: 512 bytes of header each, which compress to almost nothing. Made of
    bzip2 streams one after another (a valid bzip2 file), the same block of 10,000 headers compressed once."""
    block = bz2.compress(tarfile.TarInfo("boats/empty.png").tobuf(format=tarfile.USTAR_FORMAT) * 10_000, 1)
    with open(path, "wb") as file:
        for _ in range(members // 10_000):
            file.write(block)
        file.write(bz2.compress(bytes(1024)))


def deflated_checkpoint(path, gib: float = 1.0) -> None:
    """A checkpoint as torch.save lays it out, plus one record of zeros that deflate shrinks about 1,000 times."""
    buffer = io.BytesIO()
    torch.save({"format": "cnn-lab-checkpoint/1", "state_dict": {"w": torch.zeros(1)}}, buffer)
    with zipfile.ZipFile(buffer) as plain, zipfile.ZipFile(path, "w") as forged:
        for info in plain.infolist():
            forged.writestr(info, plain.read(info))
        info = zipfile.ZipInfo("archive/data/2", (2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with forged.open(info, "w", force_zip64=True) as record:
            zeros = bytes(2**24)
            for _ in range(int(gib * 64)):
                record.write(zeros)


def huge_input_onnx(side: int = 60_000) -> bytes:
    """131 bytes of ONNX: a global average pool over a declared 1x3xSIDExSIDE input, three scores."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    tar_bomb(folder / "photos.zip", 600_000)  # a tar, named as a zip: the case
    (folder / "photos.tar.bz2").write_bytes((folder / "photos.zip").read_bytes())  # named as what it is
    deflated_checkpoint(folder / "model.pt")
    (folder / "model.onnx").write_bytes(huge_input_onnx())
    return folder


CLI_CASES = {
    "a tar bomb named as a zip": (["transfer", "--data", "{bombs}/photos.zip"],
                                  "photos.zip is not a zip or tar archive as its name says"),
    "a tar bomb named as a tar": (["transfer", "--data", "{bombs}/photos.tar.bz2"],
                                  "The archive photos.tar.bz2 unpacks to at least"),
    "a deflated 1 GiB checkpoint": (["import", "{bombs}/model.pt"], "This checkpoint's records are compressed"),
    "an ONNX input of 60000x60000": (["import", "{bombs}/model.onnx"], "This model takes 60000x60000 images"),
    "an MLP of 10 billion parameters": (["train", "--preset", "Digits (seconds, built in)", "--set", "model.name=mlp",
                                         "--set", "model.hidden=100000,100000"], "This model has 10,007,800,010"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CLI_CASES)
def test_a_bomb_from_the_command_line_is_refused_before_the_work(case, mode, bombs, tmp_path):
    args, sentence = CLI_CASES[case]
    start = time.perf_counter()
    done, peak_gb = peak_of_cli([a.format(bombs=bombs) for a in args],
                                {"CNN_LAB_SHARED": MODES[mode], "CNN_LAB_CACHE": str(tmp_path / "cache")}, timeout=120)
    seconds = time.perf_counter() - start
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and sentence in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    # Bounds, not speeds: today's code took 17 s and 951 MB for the tar bomb, 1.7 GB for the checkpoint, and tried
    # 40 GB for the other two. The interpreter and torch alone take about 0.7 GB.
    assert peak_gb < 1.0 and seconds < 30, (peak_gb, seconds)
    assert not list((tmp_path / "cache").rglob("empty.png"))  # nothing of the bomb is left
    assert not [p for p in (tmp_path / "cache").rglob("model.pt")]  # no run was made of an import
