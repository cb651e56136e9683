import random

import pytest
import torch

from cnn_lab import geometry
from cnn_lab.geometry import GeometryError, Layer


def _random_layer(rng: random.Random) -> tuple[Layer, tuple[int, int]]:
    kind = rng.choice(["conv", "maxpool", "avgpool", "convT"])
    padding = rng.choice([0, 1, 2, 3, 5]) if kind != "conv" else rng.choice([0, 1, 2, 4, "same", "valid"])
    layer = Layer(kind, kernel=rng.randint(1, 7), stride=rng.randint(1, 4), padding=padding,
                  dilation=rng.randint(1, 3), out_channels=2, ceil_mode=rng.random() < 0.5,
                  output_padding=rng.randint(0, 2),
                  padding_mode=rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
    if kind == "avgpool":
        layer.dilation = 1
    if padding in ("same", "valid"):
        layer.padding_mode = "zeros"
    return layer, (rng.randint(1, 40), rng.randint(1, 40))


def test_arithmetic_agrees_with_torch_on_a_random_sweep():
    rng = random.Random(0)
    agreed = rejected = 0
    for _ in range(3000):
        layer, size = _random_layer(rng)
        x = torch.zeros(1, 2, *size)
        try:
            expected = tuple(geometry.torch_layer(layer, 2)(x).shape[-2:])
        except (RuntimeError, ValueError):
            expected = None
        try:
            ours = geometry.output_size(layer, size)
        except GeometryError:
            ours = None
        assert ours == expected, (layer, size, ours, expected)
        agreed += ours is not None
        rejected += ours is None
    assert agreed > 1000 and rejected > 200  # both sides of the verdict were exercised


def test_course_stack():
    rows = geometry.stack_table(geometry.STACKS["The course's CNN on 3x32x32"])
    assert [r.output for r in rows] == [(16, 14, 14), (32, 5, 5), (64, 1, 1), (64,), (32,), (10,)]
    assert sum(r.parameters for r in rows) == 1216 + 12832 + 51264 + 2080 + 330
    assert [r.receptive_field for r in rows[:3]] == [5, 13, 29]
    assert [r.jump for r in rows[:3]] == [2, 4, 8]


def test_resnet_stem_and_lenet():
    stem = geometry.stack_table(geometry.STACKS["ResNet18 stem on 3x224x224"])
    assert [r.output for r in stem] == [(64, 112, 112), (64, 56, 56)]
    assert stem[-1].receptive_field == 11 and stem[-1].jump == 4
    lenet = geometry.stack_table(geometry.STACKS["LeNet-5 on 1x32x32"])
    assert lenet[3].output == (16, 5, 5) and lenet[4].output == (400,)
    assert sum(r.parameters for r in lenet) == 61_706


def test_coverage_counts_windows():
    counts = geometry.coverage(Layer("conv", 3, 1, 0), (5, 5))
    assert counts[2, 2] == 9 and counts[0, 0] == 1 and counts[0, 2] == 3
    padded = geometry.coverage(Layer("conv", 3, 1, 1), (5, 5))
    assert padded.min() == 4 and padded[2, 2] == 9
    strided = geometry.coverage(Layer("conv", 2, 3, 0), (7, 7))
    assert (strided == 0).sum() == 49 - 16  # windows start at 0 and 3: rows and columns 2, 5, 6 are never read


def test_window_taps_with_dilation():
    taps = geometry.window(Layer("conv", 3, 2, 0, dilation=2), 1, 0)
    assert taps[0] == (2, 0) and taps[-1] == (6, 4) and len(taps) == 9


@pytest.mark.parametrize("layer, message", [
    (Layer("conv", 3, 2, "same"), "not supported for strided"),
    (Layer("maxpool", 2, 2, 2), "at most half"),
    (Layer("convT", 3, 1, 0, output_padding=1), "output_padding"),
    (Layer("conv", 9, 1, 0), "would be"),
])
def test_verdicts(layer, message):
    with pytest.raises(GeometryError, match=message):
        geometry.output_size(layer, (5, 5))


def test_linear_needs_flatten():
    with pytest.raises(GeometryError, match="flatten"):
        geometry.stack_table(geometry.Stack((3, 8, 8), [Layer("linear", out_channels=4)]))


@pytest.mark.parametrize("stack, model", [("AlexNet-style on 3x32x32", "alexnet"), ("VGG-style on 3x32x32", "vgg"),
                                          ("Inception blocks on 3x32x32", "inception")])
def test_the_classic_stacks_count_what_the_models_have(stack, model):
    """The calculator's lesson-25 stacks are the model registry's nets, layer for layer: the same parameter count
    and the same output, 10 classes."""
    from cnn_lab.models import ModelSpec, build_model, count_parameters

    rows = geometry.stack_table(geometry.STACKS[stack])
    built = build_model(ModelSpec(model, norm="none"), (3, 32, 32), 10)
    assert sum(r.parameters for r in rows) == count_parameters(built)
    assert rows[-1].output == (10,)
    if model == "inception":
        assert [r.output for r in rows if r.layer.startswith("InceptionBlock")] == [(32, 32, 32), (64, 16, 16),
                                                                                    (128, 8, 8)]
        assert rows[1].receptive_field == rows[0].receptive_field + 4  # the 5x5 branch


def test_the_sliding_window_lights_exactly_the_taps_and_the_cell_on_their_grids():
    import numpy as np

    from cnn_lab import charts, geometry

    layer = geometry.Layer("conv", 3, 2, 1, 1, 8)
    out = geometry.output_size(layer, (7, 7))
    fig = charts.sliding_window_figure((7, 7), 1, out, lambda r, c: geometry.window(layer, r, c), selected=(2, 1))
    taps, cell = fig.data[2], fig.data[3]
    lit = {(int(r), int(c)) for r, c in zip(*np.nonzero(~np.isnan(np.asarray(taps.z, dtype=float))))}
    assert lit == set(geometry.window(layer, 2, 1)) and len(lit) == 9
    assert list(zip(*np.nonzero(~np.isnan(np.asarray(cell.z, dtype=float))))) == [(2, 1)]
    assert cell.x0 == fig.data[1].x0 == 9 + 2  # the output grid sits right of the 9-wide padded input, same cells
    animated = charts.sliding_window_figure((7, 7), 1, out, lambda r, c: geometry.window(layer, r, c))
    assert len(animated.frames) == out[0] * out[1]
    assert animated.layout.updatemenus[0].y < 0 and animated.layout.margin.b >= 80  # the buttons sit below the grid
