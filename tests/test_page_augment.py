import json

from cnn_lab import augment
from tests.helpers import ROOT

PAGE = str(ROOT / "pages/4_augmentation.py")


def _images(at):
    return at.get("imgs")


def test_draws_reroll_and_export(run_page):
    at = run_page(PAGE)
    assert not at.exception
    assert len(at.expander) >= 4  # the default pipeline's steps
    code = at.code[0].value
    assert "v2.RandomCrop(size, padding=4, padding_mode='reflect')" in code
    namespace: dict = {}
    exec(code, namespace)  # the exported code runs
    assert len(namespace["pipeline"].transforms) == 5
    seed_before = at.number_input(key="aug_seed").value
    next(b for b in at.button if b.label == "Re-roll").click().run()
    assert at.number_input(key="aug_seed").value == seed_before + 8
    assert not at.exception


def test_bad_setting_keeps_last_draws_with_one_sentence(run_page):
    at = run_page(PAGE)
    at.slider(key="size_0_0").set_value(400).run()  # RandomCrop larger than the 256-px photo...
    at.slider(key="padding_0_0").set_value(0).run()  # ...without padding
    assert not at.exception
    assert "larger than input image size" in at.error[0].value
    assert any(c.value == "Showing the last draws that worked." for c in at.caption)


def test_add_remove_load_and_save_preset(run_page):
    at = run_page(PAGE)
    count = len(at.session_state.aug_steps)
    next(s for s in at.selectbox if s.label == "Add a step").set_value("blur").run()
    next(b for b in at.button if b.label == "Add").click().run()
    assert [s["name"] for s in at.session_state.aug_steps][-1] == "blur"
    at.button(key=f"del_{at.session_state.aug_version}_0").click().run()
    assert len(at.session_state.aug_steps) == count
    at.text_area[0].input("not json").run()
    next(b for b in at.button if b.label == "Load").click().run()
    assert "not a pipeline JSON" in at.error[0].value
    steps = [augment.new_step("vflip", 1.0)]
    at.text_area[0].input(json.dumps(steps)).run()
    next(b for b in at.button if b.label == "Load").click().run()
    assert at.session_state.aug_steps == steps
    at.text_input[0].input("page test").run()
    next(b for b in at.button if b.label == "Save preset").click().run()
    assert augment.load_preset("page-test") == steps


def test_a_dataset_image_comes_from_the_sets_on_this_machine_only(run_page, monkeypatch, tmp_path):
    """The dataset list is the registry's sets that are here: never a download in the page's thread."""
    monkeypatch.setenv("CNN_LAB_DATA", "")  # a bare machine, nothing downloaded: only the built-in digits are here
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    at = run_page(PAGE)
    at.radio(key="start").set_value("A dataset image (what the trainer sees)").run()
    assert not at.exception
    assert at.selectbox(key="dataset").options == ["Digits (8x8, built in)"]
    assert at.slider(key="image").max == 63  # the first 64 training digits
