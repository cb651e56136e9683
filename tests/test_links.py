"""Shareable links: the convolution, stride & padding, activation and augmentation pages and the train page's
settings keep their state in the URL; opening the link restores that view; a value that does not fit falls back
to its default with one sentence; the copied link leaves out the person's key."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from cnn_lab import overrides
from cnn_lab.presets import preset
from cnn_lab.train import TrainConfig
from ui.links import LINK_BOX, decode


def shared_link(at: AppTest) -> str:
    """The text of the "Copy a link to this view" box, opened as a learner clicks it (it is drawn only when open)."""
    if not at.session_state[LINK_BOX]:
        assert not [c for c in at.code if "?" in c.value]  # closed, the box costs the browser nothing
        at.session_state[LINK_BOX] = True
        at.run()
    return next(c.value for c in at.code if "?" in c.value)


def toasts(at: AppTest) -> list[str]:
    return [t.value for t in at.toast]


@pytest.mark.parametrize("page_file, link, widgets", [
    ("1_convolution.py", {"cv_kernels": '["sobel y","emboss"]', "cv_stride": "3", "cv_padding_mode": "reflect",
                          "cv_pool": "avg", "conv_sample": "coffee"},
     {"cv_kernels": ["sobel y", "emboss"], "cv_stride": 3, "cv_padding_mode": "reflect", "cv_pool": "avg",
      "conv_sample": "coffee"}),
    ("2_stride_padding.py", {"layer": "MaxPool2d", "k": "5", "s": "2", "ceil": "true", "stack": "VGG-style on 3x32x32"},
     {"layer": "MaxPool2d", "k": 5, "s": 2, "ceil": True, "stack": "VGG-style on 3x32x32"}),
    ("3_activations.py", {"acts": '["gelu","relu"]', "x": "[-2,3]", "target": "2", "depth": "30"},
     {"acts": ["gelu", "relu"], "x": (-2.0, 3.0), "target": 2, "depth": 30}),
    ("4_augmentation.py", {"draws": "3", "aug_seed": "7", "show_params": "true", "cut": "40"},
     {"draws": 3, "aug_seed": 7, "show_params": True, "cut": 40}),
])
def test_a_link_restores_the_view_and_the_page_keeps_it_in_the_url(page_file, link, widgets, run_page):
    at = run_page("pages/" + page_file, link)
    assert not at.exception and not toasts(at)
    for key, value in widgets.items():
        assert at.session_state[key] == value, key
    for name in link:  # the page keeps the link's settings in its URL
        assert decode(at.query_params[name]) == decode(link[name]), name
    for name in link:
        assert f"{name}=" in shared_link(at)


def test_the_url_follows_the_widgets_and_holds_only_what_differs_from_the_defaults(run_page):
    at = run_page("pages/2_stride_padding.py")
    assert dict(at.query_params) == {}
    at.slider(key="s").set_value(2).run()
    assert dict(at.query_params) == {"s": "2"}
    at.slider(key="s").set_value(1).run()  # back to the default: out of the link
    assert dict(at.query_params) == {}


@pytest.mark.parametrize("page_file, link, bad", [
    ("2_stride_padding.py", {"s": "99", "k": "5"}, "s"),
    ("2_stride_padding.py", {"layer": "Conv3d"}, "layer"),
    ("1_convolution.py", {"cv_kernels": '["sobel x","no such kernel"]', "cv_stride": "2"}, "cv_kernels"),
    ("1_convolution.py", {"kernel_source": "Custom grid", "cv_cells": "[[1,2],[3,4]]"}, "cv_cells"),
    ("3_activations.py", {"x": "[5,-5]"}, "x"),
    ("4_augmentation.py", {"pipeline": '[{"name":"hflip","p":7,"params":{}}]'}, "pipeline"),
    ("4_augmentation.py", {"draws": "<script>alert(1)</script>"}, "draws"),
])
def test_an_invalid_or_tampered_link_falls_back_to_the_defaults_with_one_sentence(page_file, link, bad, run_page):
    at = run_page("pages/" + page_file, link)
    assert not at.exception
    assert toasts(at) == [f"This link's {bad} was not valid for this page, so that setting is at the default."]
    assert bad not in at.query_params  # the URL now shows the view as it is
    if page_file == "2_stride_padding.py" and "k" in link:
        assert at.session_state["k"] == 5 and at.session_state["s"] == 1  # the rest of the link still applies


def test_an_edited_kernel_grid_and_an_augmentation_pipeline_travel_in_the_link(run_page):
    cells = "[[1,2,3],[4,5,6],[7,8,9]]"
    at = run_page("pages/1_convolution.py", {"kernel_source": "Custom grid", "cv_cells": cells})
    assert not at.exception and not toasts(at)
    assert json.loads(at.query_params["cv_cells"]) == json.loads(cells)
    pipeline = [{"name": "hflip", "p": 1.0, "enabled": True, "params": {}}]
    at = run_page("pages/4_augmentation.py", {"pipeline": json.dumps(pipeline)})
    assert at.session_state["aug_steps"] == pipeline
    assert json.loads(at.query_params["pipeline"]) == pipeline


TRAIN = "5_train.py"
DIGITS = "Digits (seconds, built in)"


def test_a_train_link_spells_settings_as_the_cli_does_and_restores_them(run_page):
    """lr, model.widths, momentum (a field with no control on the page) and the preset, as `--set` spells them."""
    at = run_page("pages/" + TRAIN, {"preset": DIGITS, "lr": "0.02", "model.widths": "[8,16]", "momentum": "0.5",
                        "model.norm": "layer", "nesterov": "false"})
    assert not at.exception and not toasts(at)
    config = at.session_state["train_config"]
    expected = overrides.apply(preset(DIGITS), ["lr=0.02", "model.widths=[8,16]", "momentum=0.5", "model.norm=layer",
                                                "nesterov=false"])
    assert config == expected
    link = shared_link(at)
    assert "preset=Digits" in link and "lr=0.02" in link and "momentum=0.5" in link
    at.selectbox(key="preset").set_value("Course: MLP").run()  # another preset: the link's settings go
    assert dict(at.query_params) == {"preset": "Course: MLP"}
    assert at.session_state["train_config"] == preset("Course: MLP")


def test_a_train_link_out_of_a_widgets_range_keeps_that_default(run_page):
    at = run_page("pages/" + TRAIN, {"preset": DIGITS, "epochs": "5000", "lr": "0.02", "lrr": "1"})
    assert toasts(at) == ["This link's epochs, lrr were not valid for this page, so those settings are at the default."]
    config = at.session_state["train_config"]
    assert config.epochs == preset(DIGITS).epochs and config.lr == 0.02


def test_a_config_file_fills_the_train_settings(run_page):
    loaded = preset(DIGITS)
    loaded.lr, loaded.model.widths, loaded.momentum, loaded.label_smoothing = 0.03, [12, 24], 0.8, 0.1
    loaded.model.dropconnect = 0.2
    at = run_page("pages/" + TRAIN, {"preset": DIGITS, "who": "key-of-ada"}, opened=("train_settings_open",))
    at.file_uploader(key="config_upload").set_value(("config.json", loaded.to_json().encode(), "application/json"))
    at.run()
    assert not at.exception and not toasts(at)
    assert at.session_state["train_config"] == loaded
    assert at.query_params["who"] == "key-of-ada"  # the person's key stays in the address bar
    at.file_uploader(key="config_upload").set_value(("bad.json", b'{"lrr": 1}', "application/json")).run()
    assert any("This is not a training config" in e.value for e in at.error)
    assert at.session_state["train_config"] == loaded  # nothing lost


def test_the_copied_link_leaves_out_the_persons_key(monkeypatch, run_page):
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    at = run_page("pages/2_stride_padding.py", {"s": "2", "who": "secret-key-of-ada"})
    assert "who" not in shared_link(at) and "s=2" in shared_link(at)


def test_differences_are_what_set_needs():
    base, changed = TrainConfig(), TrainConfig()
    changed.lr, changed.model.widths, changed.model.activation_params = 0.1, [8], {"negative_slope": 0.2}
    diff = overrides.differences(base, changed)
    assert diff == {"lr": 0.1, "model.widths": [8], "model.activation_params.negative_slope": 0.2}


def test_differences_spelled_as_assignments_give_the_config_back():
    base, changed = preset(DIGITS), preset(DIGITS)
    changed.lr, changed.model.widths, changed.augment_preset, changed.dataset = 0.1, [8, 16], "2", "cifar10"
    spelled = overrides.assignments(overrides.differences(base, changed))
    assert spelled == ["dataset=cifar10", "model.widths=[8,16]", "lr=0.1", 'augment_preset="2"']
    assert overrides.apply(base, spelled) == changed  # the text "2" stays text


def test_the_nearest_preset_is_the_one_with_the_fewest_changes():
    from cnn_lab.presets import PRESETS

    configs = {name: config for name, (_, config) in PRESETS.items()}
    changed = preset("Course: MLP")
    changed.epochs = 7
    assert overrides.nearest(configs, changed) == ("Course: MLP", {"epochs": 7})
    assert overrides.nearest(configs, preset(DIGITS)) == (DIGITS, {})
