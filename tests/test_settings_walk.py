"""Every control does what it says: for every model in the registry, every setting the train page shows is
changed through AppTest, and the change must reach the config that the trainer runs and, for a model setting,
the model that is built. A setting a model would ignore must not be shown for it. The same for the transfer page
(each backbone and mode) and the convolution page (each kernel source: every control changes what is drawn)."""
import copy
import json

import pytest
import torch

from cnn_lab import runs, transfer
from cnn_lab.backbones import BACKBONES
from cnn_lab.models import MODELS, ModelSpec, build_model
from cnn_lab.presets import default_preset
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, noise_folder

WIDGETS = ("selectbox", "number_input", "slider", "select_slider", "toggle", "text_input", "multiselect", "radio")


def _widgets(at, prefix: str = "") -> dict[str, object]:
    """Every enabled widget whose key starts with `prefix`, by key (widgets without a key are keyed by label)."""
    found = {}
    for kind in WIDGETS:
        for widget in getattr(at, kind):
            key = widget.key or f"{kind}:{widget.label}"
            if key.startswith(prefix) and not widget.disabled:
                found[key] = widget
    return found


def _change(widget) -> None:
    """Give a widget another valid value (and run the page)."""
    kind = type(widget).__name__
    if kind == "Selectbox":
        widget.select_index((widget.index + 1) % len(widget.options)).run()
    elif kind in ("Radio", "SelectSlider"):  # these pages' radios and select sliders show their values as they are
        options = [type(widget.value)(option) for option in widget.options]
        widget.set_value(options[(options.index(widget.value) + 1) % len(options)]).run()
    elif kind == "NumberInput":
        low, high, value = widget.proto.min, widget.proto.max, widget.value
        new = value * 2 if value and value * 2 <= high else (value / 2 if value and value / 2 >= low else low + 1)
        widget.set_value(type(value)(new)).run()
    elif kind == "Slider":
        low, high = widget.proto.min, widget.proto.max
        middle = type(widget.value)(round((low + high) / 2, 2))
        widget.set_value(middle if widget.value != middle else type(widget.value)(low)).run()
    elif kind == "Toggle":
        widget.set_value(not widget.value).run()
    elif kind == "TextInput" and not widget.value:  # a folder path
        widget.input("photos/of/boats").run()
    elif kind == "TextInput":  # a list of widths
        widget.input(", ".join(str(int(v) * 2) for v in widget.value.split(","))).run()
    elif kind == "Multiselect":
        missing = [o for o in widget.options if o not in widget.value]
        (widget.select(missing[0]) if missing else widget.unselect(widget.value[0])).run()
    else:
        raise AssertionError(f"no rule to change a {kind}")


def _built(spec: ModelSpec) -> str:
    return str(build_model(spec, (3, 32, 32), 10))


def _restore(at, key: str, value) -> None:
    widget = _widgets(at)[key]
    if type(widget).__name__ == "Selectbox":
        widget.select_index(list(widget.options).index(value)).run()
    elif type(widget).__name__ == "TextInput":
        widget.input(value).run()
    else:
        widget.set_value(value).run()


def _walk(at, prefix: str, read, check, skip: tuple[str, ...] = (), restore: bool = False) -> list[str]:
    """Change every widget under `prefix` once (new ones that appear too), checking each change with `check`;
    with `restore`, each widget goes back to its value before the next one changes."""
    done, walked = set(skip), []
    while True:
        todo = {k: w for k, w in _widgets(at, prefix).items() if k not in done}
        if not todo:
            return walked
        key = next(iter(todo))
        done.add(key)
        before = read(at)
        widget = todo[key]
        original = widget.options[widget.index] if type(widget).__name__ == "Selectbox" else widget.value
        _change(widget)
        assert not at.exception, (key, at.exception)
        check(key, before, read(at))
        walked.append(key)
        if restore and key in _widgets(at):
            _restore(at, key, original)


# ---------------------------------------------------------------- the train page

TRAIN_PAGE = str(ROOT / "pages/5_train.py")
SETTINGS = ("train_settings_open",)  # the page's "Settings", opened
PRESET = default_preset(torch.cuda.is_available())  # the preset the page opens on


def _train_walk(at, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    """Walk the train page's widgets under `prefix`: each change must reach the config the trainer runs, and a
    change of the model's spec must change the model that is built."""
    def read(at) -> TrainConfig:
        return copy.deepcopy(at.session_state["train_config"])

    def check(key, before: TrainConfig, after: TrainConfig) -> None:
        assert after != before, f"changing {key} changed nothing the trainer sees"
        if after.model != before.model:
            assert _built(after.model) != _built(before.model), f"{key} changed the spec, not the model"

    return _walk(at, prefix, read, check, skip=skip)


def test_every_training_setting_reaches_the_trainer(run_page):
    """The settings every model shares (optimizer, schedule, data, augmentation...), walked once."""
    at = run_page(TRAIN_PAGE, opened=SETTINGS)
    model = at.session_state["train_config"].model.name
    own = tuple(key for key in _widgets(at, f"{PRESET}_{model}_"))  # the model's own: the test below walks them
    walked = _train_walk(at, f"{PRESET}_", skip=(f"{PRESET}_model", *own))
    assert len(walked) >= 12


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_setting_reaches_the_model(model, run_page):
    """For every model, the settings it reads are shown, and only those; each reaches the model that is built."""
    at = run_page(TRAIN_PAGE, opened=SETTINGS)
    at.selectbox(key=f"{PRESET}_model").set_value(model).run()
    assert at.session_state["train_config"].model.name == model
    walked = _train_walk(at, f"{PRESET}_{model}_")
    shown = {key.removeprefix(f"{PRESET}_{model}_") for key in walked}
    expected = {"act": "activation", "norm": "norm", "drop": "dropout", "dropconnect": "dropconnect",
                "widths": "widths", "hidden": "hidden", "linear_stem": "linear_stem"}
    assert {field for short, field in expected.items() if short in shown} == set(MODELS[model].settings)


def test_changing_the_activation_resets_its_parameters(run_page):
    """The course MLP's LeakyReLU(0.2) slope does not follow it to ReLU (it used to: a TypeError at Start)."""
    at = run_page(TRAIN_PAGE, opened=SETTINGS)
    at.selectbox(key="preset").set_value("Course: MLP").run()
    assert at.session_state["train_config"].model.activation_params == {"negative_slope": 0.2}
    at.selectbox(key="Course: MLP_mlp_act").set_value("relu").run()
    spec = at.session_state["train_config"].model
    assert spec.activation == "relu" and spec.activation_params == {}
    assert "ReLU()" in _built(spec)
    at.selectbox(key="Course: MLP_mlp_act").set_value("elu").run()
    assert at.session_state["train_config"].model.activation_params == {"alpha": 1.0}


# ---------------------------------------------------------------- the transfer page

TRANSFER_PAGE = str(ROOT / "pages/6_transfer.py")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """Two classes of eight 24x24 photos of noise: enough for the transfer page to load a dataset."""
    return noise_folder(tmp_path_factory.mktemp("tiny"), ["kayak", "tug"], per_class=8, size=(24, 24))


@pytest.mark.parametrize("mode", transfer.MODES)
def test_every_transfer_setting_reaches_the_config(mode, tiny_folder, run_page):
    at = run_page(TRANSFER_PAGE)
    at.radio(key="source").set_value("folder").run()
    at.text_input(key="folder").input(str(tiny_folder)).run()
    next(r for r in at.radio if r.label == "Mode").set_value(mode).run()
    assert not at.exception, at.exception
    assert at.session_state["transfer_config"].mode == mode

    def read(at) -> str:
        return at.session_state["transfer_config"].to_json()

    def check(key, before: str, after: str) -> None:
        assert after != before, f"{mode}: changing {key} changed nothing the transfer run sees"

    walked = [key.split("|")[0] for key in _walk(at, "tf_", read, check, skip=tuple(
        w.key for w in at.selectbox if w.key and w.key.startswith("tf_recipe")))]  # a recipe changes every setting
    assert "tf_backbone" in walked and "tf_epochs" in walked
    if mode == "probe":
        assert "tf_flip" in walked and "tf_unfreeze" not in walked and "tf_size" not in walked
    else:
        assert "tf_size" in walked and "tf_flip" not in walked
        assert ("tf_unfreeze" in walked) == (mode == "partial") and ("tf_backbone_lr" in walked) == (mode == "full")
    assert len(next(s for s in at.selectbox if s.label == "Backbone").options) == len(BACKBONES)


# ---------------------------------------------------------------- the convolution page

CONV_PAGE = str(ROOT / "pages/1_convolution.py")


def _drawn(at) -> str:
    """Everything the page draws: its figures and its text."""
    figures = [chart.proto.spec for chart in at.get("plotly_chart")]
    texts = [e.value for kind in ("markdown", "caption", "error", "warning", "info") for e in getattr(at, kind)]
    return json.dumps(figures) + " ".join(texts) + " ".join(str(m.value) for m in at.metric)


@pytest.fixture
def learned_run():
    """A finished run whose first layer is 4 filters of 3x3 over grey images, trained with mean 0.4, std 0.2."""
    run_id = runs.create_run(runs.new_run_id(), "train", TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[4])).to_json())
    conv = torch.nn.Conv2d(1, 4, 3)
    torch.manual_seed(0)
    torch.nn.init.normal_(conv.weight)
    runs.save_weights(run_id, torch.nn.Sequential(conv))
    runs.save_epochs(run_id, [], normalisation=([0.4], [0.2]))
    runs.finish_run(run_id, "finished", "ok", 0.9, classes=["a", "b"], input_shape=[1, 8, 8])
    yield run_id
    runs.delete_run(run_id)


@pytest.mark.parametrize("source", ["Classic", "Custom grid", "Learned (from a trained run)"])
def test_every_convolution_control_changes_what_is_drawn(source, learned_run, run_page):
    at = run_page(CONV_PAGE)
    at.radio(key="kernel_source").set_value(source).run()
    assert not at.exception

    def check(key, before: str, after: str) -> None:
        assert after != before, f"{source}: changing {key} changed nothing on the page"

    if source.startswith("Learned"):  # the photo is normalised as the run's training images were
        assert any("minus 0.400, divided by 0.200" in c.value for c in at.caption)
    walked = _walk(at, "cv_", _drawn, check, restore=True)  # e.g. normalising Sobel is refused: undo it
    assert {"cv_stride", "cv_padding", "cv_dilation", "cv_pool_size"} <= set(walked)
    assert ("cv_channels" in walked) == (source != "Learned (from a trained run)")
