
from tests.helpers import ROOT

PAGE = str(ROOT / "pages/2_stride_padding.py")


def _slider(at, label):
    return next(s for s in at.slider if s.label == label)


def _verdict(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Output"))


def test_formula_and_torch_agree_as_sliders_move(run_page):
    at = run_page(PAGE)
    assert not at.exception
    assert _verdict(at) == "Output **7x7**; torch says **7x7** ✓"
    _slider(at, "Input height").set_value(32).run()
    _slider(at, "Input width").set_value(32).run()
    _slider(at, "Kernel size").set_value(5).run()
    _slider(at, "Stride").set_value(2).run()
    _slider(at, "Padding (pixels per side)").set_value(0).run()
    assert _verdict(at) == "Output **14x14**; torch says **14x14** ✓"
    assert "= 14" in at.latex[0].value


def test_impossible_geometry_keeps_last_valid_state(run_page):
    at = run_page(PAGE)
    at.radio[0].set_value("MaxPool2d").run()
    _slider(at, "Padding (pixels per side)").set_value(3).run()  # more than half of kernel 3
    assert not at.exception
    assert "at most half the kernel size" in at.error[0].value
    assert any(c.value == "Showing the last valid settings." for c in at.caption)
    assert _verdict(at).endswith("✓")


def test_same_padding_with_stride_is_refused_like_torch(run_page):
    at = run_page(PAGE)
    next(r for r in at.radio if r.label == "Padding").set_value("same").run()
    _slider(at, "Stride").set_value(2).run()
    assert "not supported for strided convolutions" in at.error[0].value


def test_stack_calculator_shows_course_example(run_page):
    at = run_page(PAGE)
    table = at.dataframe[-1].value  # [0] is the editable layer list
    assert table["output"].tolist()[:3] == ["(16, 14, 14)", "(32, 5, 5)", "(64, 1, 1)"]
    assert at.metric[0].value == "67,722"
