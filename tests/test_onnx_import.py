"""Issue 35: any ONNX image classifier comes in as a run (onnx2torch, after ONNX's version converter brings it down
to opset 17). A small VGG-like network with batch norm and a residual add, built and exported here by torch.onnx,
imports with the same logits and opens on "Inside the network" and on the convolution page; a run that CNN Lab
exports and imports back gives the same logits; every hostile file gets one sentence."""
import json

import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from cnn_lab import checkpoints, jobs, runs
from cnn_lab.data import load_dataset
from cnn_lab.identity import Person
from cnn_lab.subjects import run_subject
from cnn_lab.models import ModelSpec
from cnn_lab.onnx_models import OnnxError, read_onnx
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, assert_the_views_of_a_convolution

CLASSES = ["carrier", "kayak", "sailboat", "tug", "submarine"]


class SmallVGG(nn.Module):
    """Two 3x3 convolutions with batch norm, a residual add, a pooled head: 3x32x32 -> 5 scores."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.head = nn.Linear(16, len(CLASSES))

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.block(x) + x)
        return self.head(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def _exported(model: nn.Module, shape=(3, 32, 32), classes: list[str] | None = None, dynamic_size=False) -> bytes:
    dims = {0: torch.export.Dim("batch")} | ({2: torch.export.Dim("h", min=16), 3: torch.export.Dim("w", min=16)}
                                             if dynamic_size else {})
    program = torch.onnx.export(model.eval(), (torch.rand(2, *shape),), input_names=["image"],
                                output_names=["scores"], dynamic_shapes=(dims,), dynamo=True, verbose=False)
    proto = program.model_proto
    if classes:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "classes", json.dumps(classes)
    return proto.SerializeToString()


@pytest.fixture(scope="module")
def small_vgg() -> tuple[nn.Module, bytes]:
    torch.manual_seed(0)
    model = SmallVGG()
    for bn in (model.stem[1], model.block[1]):  # batch norm with statistics of its own, not the identity
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return model.eval(), _exported(model, classes=CLASSES)


def test_a_model_exported_elsewhere_imports_with_the_same_logits(lab_cache, small_vgg):
    model, data = small_vgg
    record = checkpoints.import_model(data, "small_vgg.onnx", owner="ada", normalisation="imagenet")
    assert record.kind == "onnx" and record.usable and record.owner == "ada" and record.status == "finished"
    assert record.classes == CLASSES and record.input_shape == [3, 32, 32]
    assert record.mean == pytest.approx([0.485, 0.456, 0.406])  # the file does not say: as chosen on import
    assert record.config["opset"] >= 18  # today's exporter writes a newer opset than the converter reads
    subject = run_subject(record)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(subject.model(x), model(x), atol=1e-4)
    assert any(isinstance(m, nn.Conv2d) for m in subject.model.modules())  # real layers: hooks see them
    assert record.run_id in [r.run_id for r in jobs.MANAGER.runs_of(Person("ada"), usable=True)]


def test_an_imported_model_opens_on_inside_and_on_the_convolution_page(lab_cache, small_vgg):
    from streamlit.testing.v1 import AppTest

    record = checkpoints.import_model(small_vgg[1], "small_vgg.onnx", normalisation="pixels")
    at = AppTest.from_file(str(ROOT / "pages/7_inside.py"), default_timeout=120)
    at.session_state["inside_model"] = record.run_id
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="inside_model").value == record.run_id
    assert "imported from small_vgg.onnx" in at.selectbox(key="inside_model").format_func(record.run_id)
    layers = at.selectbox(key="inside_layer").options
    assert sum("(Conv2d)" in o for o in layers) == 2, layers  # each batch norm folded into its convolution
    assert_the_views_of_a_convolution(at)
    conv = AppTest.from_file(str(ROOT / "pages/1_convolution.py"), default_timeout=120).run()
    conv.radio(key="kernel_source").set_value("Learned (from a trained run)").run()
    run = next(s for s in conv.selectbox if s.label == "Run")
    run.select_index(next(i for i, r in enumerate(run.options) if r.startswith(record.run_id))).run()
    assert not conv.exception and not conv.error
    filters = json.loads(conv.get("plotly_chart")[0].proto.spec)["layout"]["annotations"]
    assert [a["text"] for a in filters][:8] == [f"filter {i}" for i in range(8)]  # its first Conv2d's 16 kernels


def test_a_run_exported_to_onnx_and_imported_back_gives_the_same_answers(lab_cache):
    """The round trip: 100 test images, the same top-1, logits within 1e-4."""
    job = jobs.JobManager(max_running=1).start(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]),
                                                           epochs=2, batch_size=64, device="cpu"))
    job.thread.join(timeout=300)
    original = runs.load_run(job.run_id)
    back = checkpoints.import_model(checkpoints.onnx_bytes(original), f"{job.run_id}.onnx")
    assert back.classes == original.classes and back.input_shape == original.input_shape
    assert back.mean == [0.0] and back.std == [1.0]  # a CNN Lab export: its normalisation is inside
    images = load_dataset("digits").splits["test"].images[:100]
    a, b = run_subject(original), run_subject(back)
    with torch.no_grad():
        theirs = a.model((images.float() / 255 - a.mean) / a.std)
        ours = b.model((images.float() / 255 - b.mean) / b.std)
    assert torch.equal(theirs.argmax(1), ours.argmax(1)) and torch.allclose(theirs, ours, atol=1e-4)


def _graph(nodes, initializers=(), input_shape=(1, 3, 8, 8), output_shape=(1, 2), opsets=(("", 17),)) -> bytes:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(output_shape))],
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets]).SerializeToString()


def _claims_10_gb() -> bytes:
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2_684_354_560], raw_data=bytes(16))  # forged
    return _graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                  [weight])


def _outside_data() -> bytes:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [192, 2], [0.0] * 384)
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    return _graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                  [weight])


HOSTILE = {
    "truncated": (lambda vgg: vgg[: len(vgg) // 2], "This file is not a readable ONNX model"),
    "a pickle": (lambda vgg: b"\x80\x04\x95" + bytes(100), "This file is not a readable ONNX model"),
    "a 10 GB initializer": (lambda vgg: _claims_10_gb(), "This model's tensor 'w' claims 10.0 GB but the file holds "
                                                         "16 bytes of it"),
    "data outside the file": (lambda vgg: _outside_data(), "This model's tensor 'w' refers to data outside the file"),
    "not a classifier": (lambda vgg: _graph([helper.make_node("Relu", ["x"], ["y"])], output_shape=(1, 3, 8, 8)),
                         "This model's output is (1, 3, 8, 8), not one score per class"),
    "an unsupported operator": (lambda vgg: _graph([helper.make_node("Foo", ["x"], ["y"], domain="com.example")],
                                                   opsets=(("", 17), ("com.example", 1))),
                                "This model uses the operator Foo, which the converter (onnx2torch) does not support"),
    "a dynamic spatial shape": (lambda vgg: _exported(SmallVGG(), dynamic_size=True),
                                "This model's input has no fixed channels, height and width"),
}


@pytest.mark.parametrize("what", list(HOSTILE))
def test_a_hostile_onnx_file_gets_one_sentence_and_leaves_no_run(lab_cache, small_vgg, what):
    make, sentence = HOSTILE[what]
    before = {r.run_id for r in runs.list_runs()}
    with pytest.raises(OnnxError) as raised:
        checkpoints.import_model(make(small_vgg[1]), "model.onnx")
    assert str(raised.value).startswith(sentence) and str(raised.value).count(". ") <= 1, str(raised.value)
    assert {r.run_id for r in runs.list_runs()} == before


def test_an_onnx_file_over_the_size_limit_is_refused_before_it_is_parsed(monkeypatch, small_vgg):
    monkeypatch.setenv("CNN_LAB_ONNX_MAX_MB", "0.001")
    with pytest.raises(OnnxError, match=r"^This file is \d+ MB, more than the 0.001 MB an ONNX model may take here"):
        read_onnx(small_vgg[1])


def test_the_train_page_imports_an_onnx_file_and_classifies_a_photo_with_it(lab_cache, small_vgg, run_page):
    import io

    from PIL import Image

    at = run_page("pages/5_train.py")
    at.radio(key="train_import_norm").set_value("imagenet").run()
    at.file_uploader(key="train_import").set_value(("small_vgg.onnx", small_vgg[1], "application/octet-stream")).run()
    assert any("Imported as run" in m.value for m in at.success), [e.value for e in at.error]
    record = runs.list_runs(kind="onnx")[0]
    assert record.mean == pytest.approx([0.485, 0.456, 0.406])  # what the page's choice said
    saved = at.selectbox(key="train_saved")
    saved.select_index(next(i for i, o in enumerate(saved.options) if o.startswith(record.run_id))).run()
    assert at.selectbox(key="train_saved").value.run_id == record.run_id
    assert {b.proto.label for b in at.get("download_button")} >= {"ONNX (as imported)", "Config (JSON)"}
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 200)).save(photo, format="PNG")
    at.file_uploader(key="train_classify_upload").set_value(("sea.png", photo.getvalue(), "image/png")).run()
    top = json.loads(next(c for c in at.get("plotly_chart") if "Top-5" in c.proto.spec).proto.spec)
    assert sorted(top["data"][0]["y"]) == sorted(CLASSES) and not at.exception


@pytest.mark.heavy
def test_the_command_line_imports_an_onnx_file_and_refuses_a_truncated_one(lab_cache, small_vgg, tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "small_vgg.onnx").write_bytes(small_vgg[1])
    (tmp_path / "cut.onnx").write_bytes(small_vgg[1][:1000])
    env = os.environ | {"CNN_LAB_CACHE": str(tmp_path / "cache")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cnn_lab", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)

    done = cli("import", str(tmp_path / "small_vgg.onnx"), "--normalisation", "imagenet")
    assert done.returncode == 0, done.stderr[-2000:]
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported["kind"] == "onnx" and imported["classes"] == CLASSES
    listed = cli("runs").stdout
    assert f"{imported['run']}  onnx      finished     imported from small_vgg.onnx · test -" in listed, listed
    refused = cli("import", str(tmp_path / "cut.onnx"))
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1] == (
        "error: This file is not a readable ONNX model (it is damaged, truncated, or another kind of file).")
