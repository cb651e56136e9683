"""The "Inside the network" page through AppTest: the pretrained network on a fresh machine (no runs, no data),
then a run trained here, its layers, one value's arithmetic and Grad-CAM."""
import json
import re

import pytest

from cnn_lab import jobs
from cnn_lab.models import ModelSpec
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, wait_for

PAGE = str(ROOT / "pages/7_inside.py")


def _arithmetic(at) -> tuple[float, float]:
    """(the multiply-and-sum's result, the value the layer gave), read from the page's sentence."""
    line = next(m.value for m in at.markdown if m.value.startswith("**The arithmetic"))
    computed, given = re.search(r"= (-?[\d.]+)\*\*; the layer gave \*\*(-?[\d.]+)\*\*", line).groups()
    return float(computed), float(given)


def test_a_fresh_machine_looks_inside_the_pretrained_network(tmp_path, monkeypatch, run_page):
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))  # no runs at all
    at = run_page(PAGE)
    assert not at.exception and not at.error
    assert at.selectbox(key="inside_model").value == "pretrained"
    layer_choice = at.selectbox(key="inside_layer")
    assert layer_choice.value.startswith("0. _conv_stem (Conv2dStaticSamePadding)") and len(layer_choice.options) > 100
    assert any(s.value.startswith("Layer 0: _conv_stem") for s in at.header)
    assert any(c.value.startswith("Output 32 x 112 x 112 · 864 parameters · each value sees 3x3") for c in at.caption)
    computed, given = _arithmetic(at)
    assert computed == pytest.approx(given, abs=1e-3)
    # a deeper layer, another channel and place: the arithmetic still matches the layer's own value
    layer_choice.set_value(next(o for o in layer_choice.options if "_blocks.3._depthwise_conv" in o)).run()
    at.selectbox(key="inside_channel").set_value(at.selectbox(key="inside_channel").options[5]).run()
    at.number_input(key="inside_row").set_value(0).run()
    computed, given = _arithmetic(at)
    assert computed == pytest.approx(given, abs=1e-3)
    assert any(s.value.startswith("Why this class") for s in at.header)
    assert not at.exception


def test_a_trained_run_opens_with_its_own_layers(tmp_path, monkeypatch, run_page):
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    job = jobs.MANAGER.submit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=2,
                                          batch_size=64, device="cpu"))
    assert wait_for(lambda: not job.alive, 120) and job.status == "finished", job.message
    at = run_page(PAGE)
    assert not at.exception
    assert at.selectbox(key="inside_model").value == job.run_id  # the newest run first
    # it opens on one of the run's own 8x8 test images, not on a photo squashed to 8x8
    assert at.radio(key="inside_image_from").value == "A test image of this run"
    assert any(c.value.startswith("True class: **") for c in at.caption)
    at.radio(key="inside_image_from").set_value("A photo").run()
    assert not any(c.value.startswith("True class: **") for c in at.caption)
    at.radio(key="inside_image_from").set_value("A test image of this run").run()
    at.toggle(key="inside_wrong").set_value(True).run()  # the misclassified ones (there may be none)
    assert not at.exception
    at.toggle(key="inside_wrong").set_value(False).run()
    at.number_input(key="inside_index").set_value(3).run()
    assert any(c.value.startswith("True class: **") for c in at.caption)
    layers = at.selectbox(key="inside_layer").options
    assert [o.split(" (")[1].split(")")[0] for o in layers[:4]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert not at.dataframe  # the two tables are drawn only when their boxes open
    at.session_state["inside_table_open"] = at.session_state["inside_stats_open"] = True
    at.run()
    every_layer, statistics = at.dataframe[0].value, at.dataframe[1].value
    assert len(every_layer) == len(layers) and "parameters" in every_layer.columns
    assert set(statistics["layer"]) <= {o.split(". ")[1].split(" (")[0] for o in layers} and len(statistics)
    computed, given = _arithmetic(at)
    assert computed == pytest.approx(given, abs=1e-4)
    # across the test set (360 digits): the images that excite the chosen channel most, and the learned space
    assert any(m.value.startswith("**What channel") for m in at.markdown)
    assert any("the yellow box is the patch" in str(i.proto) for i in at.get("image"))  # the nine, in one picture
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("inside_space")]  # drawn when opened
    at.session_state["inside_space_open"] = True
    at.run()
    space = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("inside_space"))
    traces = json.loads(space.proto.spec)["data"]
    assert len(traces) == 10 and sum(len(t["customdata"]) for t in traces) == len(job.result.test_labels)
    at.radio(key="inside_projection").set_value("tsne").run()
    assert not at.exception
    at.toggle(key="inside_synthesise").set_value(True).run()
    assert any("Made for channel" in str(i.proto) for i in at.get("image")) and not at.exception
    at.slider(key="inside_cam_opacity").set_value(0.0).run()  # Grad-CAM's colour off: the image alone
    cam = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("inside_cam")).proto.spec)
    assert [t.get("opacity") for t in cam["data"] if t["type"] == "heatmap"] == [0.0]


def test_a_run_with_corrupt_weights_gets_one_sentence_and_the_pretrained_network(tmp_path, monkeypatch, run_page):
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    job = jobs.MANAGER.submit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=1,
                                          batch_size=64, device="cpu"))
    assert wait_for(lambda: not job.alive, 120) and job.status == "finished", job.message
    (tmp_path / "runs" / job.run_id / "model.pt").write_bytes(b"not a checkpoint")
    at = run_page(PAGE)
    assert not at.exception
    assert at.error[0].value.startswith("This run cannot be rebuilt from its folder (")
    assert at.error[0].value.endswith("here is the pretrained network instead.")
    assert any(s.value.startswith("Layer 0: _conv_stem") for s in at.header)
