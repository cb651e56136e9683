import pytest

from tests.helpers import ROOT

PAGE = str(ROOT / "pages/1_convolution.py")


def _shape_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Input"))


def test_defaults_show_sobel_maps_with_shapes(run_page):
    at = run_page(PAGE)
    assert not at.exception
    assert _shape_line(at).startswith("Input **(3, 512, 512)** → convolution **(3, 512, 512)**")
    assert "max pool **(3, 256, 256)**" in _shape_line(at)


def test_stride_kernels_and_full_mode_change_the_output(run_page):
    at = run_page(PAGE)
    stride = next(s for s in at.slider if s.label == "Stride")
    stride.set_value(2).run()
    assert "convolution **(3, 256, 256)**" in _shape_line(at)
    at.multiselect[0].set_value(["sobel x", "sobel y", "laplacian"]).run()
    assert "convolution **(9, 256, 256)**" in _shape_line(at)
    next(r for r in at.radio if r.label == "Channels").set_value("full").run()
    assert "convolution **(3, 256, 256)**" in _shape_line(at)
    assert not at.exception


def test_zero_sum_kernel_with_normalisation_gets_one_sentence(run_page):
    at = run_page(PAGE)
    next(t for t in at.toggle if t.label.startswith("Normalise")).set_value(True).run()
    assert not at.exception
    assert "sums to zero" in at.error[0].value


def test_dilation_shrinks_the_map_as_torch_does(run_page):
    at = run_page(PAGE)
    at.multiselect[0].set_value(["motion blur"]).run()  # 5x5 by default
    next(s for s in at.slider if s.label == "Dilation").set_value(8).run()
    next(s for s in at.slider if s.label == "Padding").set_value(0).run()
    assert "convolution **(3, 480, 480)**" in _shape_line(at)  # 512 - 8 * (5 - 1)


def test_impossible_stack_gets_one_sentence(run_page):
    at = run_page(PAGE)
    for label, value in (("Stride", 8), ("Pool size (= stride)", 8), ("Stages (conv-ReLU-pool, stacked)", 3)):
        next(s for s in at.slider if s.label == label).set_value(value).run()
    assert not at.exception
    assert "pooling window (8) is larger than the feature map" in at.error[0].value


def _magnifier(run_page):
    """The page with its Magnifier tab open (only the open tab's content runs)."""
    at = run_page(PAGE)
    at.session_state["cv_tab"] = "Magnifier"
    return at.run()


def test_magnifier_value_is_written_out(run_page):
    at = _magnifier(run_page)
    line = next(m.value for m in at.markdown if m.value.startswith("output["))
    assert line.startswith("output[256, 256] = ") and "**" in line


def test_the_magnifier_shows_the_kernel_you_pick(run_page):
    from cnn_lab import conv, images, kernels

    def value(at) -> float:
        line = next(m.value for m in at.markdown if m.value.startswith("output["))
        return float(line.rsplit("**", 2)[1])

    at = _magnifier(run_page)
    at.multiselect(key="cv_kernels").set_value(["sobel x", "sobel y"]).run()
    assert at.selectbox(key="cv_magnified").options == ["sobel x", "sobel y"]
    first = value(at)
    at.selectbox(key="cv_magnified").set_value(1).run()
    photo = images.to_tensor(images.load_sample("astronaut").image)
    expected = conv.magnify(photo, kernels.make_kernel("sobel y"), conv.ConvSettings(padding=1), 256, 256, 0).value
    assert value(at) == pytest.approx(expected, abs=1e-4) and value(at) != pytest.approx(first, abs=1e-4)


def test_only_the_open_tab_runs(run_page):
    at = run_page(PAGE)
    assert not any(m.value.startswith("output[") for m in at.markdown)  # the magnifier's tab is closed
    assert any(c.proto.id.endswith("maps_fig") for c in at.get("plotly_chart"))
    at.session_state["cv_tab"] = "Conv → ReLU → pool"
    at.run()
    charts = [c.proto.id for c in at.get("plotly_chart")]
    assert any(c.endswith("stage_0") for c in charts) and not any(c.endswith("maps_fig") for c in charts)
