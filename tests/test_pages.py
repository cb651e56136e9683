"""Every page renders through AppTest without an exception and with its title."""
import pytest

from tests.helpers import ROOT
from ui.nav import PAGES

pytestmark = pytest.mark.newcomer


def test_home_lists_pages_and_machine(run_page):
    at = run_page("app.py")
    assert not at.exception
    assert at.title[0].value == "CNN Lab"
    text = " ".join(m.value for m in at.markdown)
    assert "Compute device" in text and ("CPU" in text or "GPU" in text)
    assert len(at.table) == 3  # the three vision tasks' outputs, datasets, weights
    datasets = at.table[1].value
    assert datasets.loc[datasets["dataset"] == "Digits (8x8, built in)", "status"].tolist() == ["built in"]
    assert all(isinstance(status, str) and "Availability(" not in status for status in datasets["status"])


@pytest.mark.parametrize("kind", ["AMX", ""])
def test_home_names_the_cpus_bf16_hardware_in_a_plain_sentence(run_page, monkeypatch, kind):
    """The CPU presets' times depend on it (the 89% preset: 273 s with AMX, 557 s with AVX512-BF16 alone)."""
    import torch

    from cnn_lab import device

    monkeypatch.setattr(device, "pick_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(device, "cpu_bf16", lambda: kind)
    at = run_page("app.py")
    text = " ".join(m.value for m in at.markdown)
    captions = [c.value for c in at.caption if c.value.startswith("bf16 are 16-bit numbers")]
    if kind:
        assert "bf16 in hardware (AMX)" in text and len(captions) == 1
    else:
        assert "bf16" not in text and not captions


def test_home_shows_why_cnns_and_the_three_vision_tasks(run_page):
    """Lessons 1-2: the ImageNet error by year (the 2012 drop with AlexNet) and what each task outputs, with
    boxes and masks that are the scene's true ones."""
    import json

    from cnn_lab.vision_tasks import IMAGENET_WINNERS, toy_scene

    at = run_page("app.py")
    history = json.loads(next(c for c in at.get("plotly_chart") if "ILSVRC" in c.proto.spec).proto.spec)
    errors = dict(zip(history["data"][0]["x"], history["data"][0]["y"]))
    assert errors["2011"] - errors["2012"] > 9 and errors["2015"] < 5.1  # AlexNet's drop; ResNet below a person
    assert [int(year) for year in errors] == [w.year for w in IMAGENET_WINNERS]
    scene = toy_scene()
    assert scene.label == "disc" and scene.mask.unique().tolist() == [0, 1, 2]
    for name, x0, y0, x1, y1 in scene.boxes:  # each box is the tightest around its object's pixels
        inside = scene.mask[y0:y1, x0:x1] == scene.classes.index(name)
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        assert (scene.mask == scene.classes.index(name)).sum() == inside.sum()
    tasks = at.table[0].value
    assert list(tasks["task"]) == ["classification", "detection", "segmentation"]


@pytest.mark.parametrize("info", PAGES, ids=[p.path for p in PAGES])
def test_page_renders(info, run_page):
    at = run_page(str(ROOT / info.path))
    assert not at.exception, at.exception
    assert at.title[0].value == info.title
