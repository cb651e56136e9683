"""The Inside page's figures: every colour of the architecture chart has a legend entry, bars keep their middle on
the chart (log10 heights on a linear axis), and the chosen pixel's outline sits exactly on its cell."""
import numpy as np

from cnn_lab import inside_charts


def test_every_colour_of_the_architecture_has_a_legend_entry_and_bars_stay_on_the_chart():
    kinds = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Dropout"]
    shapes = [(8, 32, 32), (8, 32, 32), (8, 32, 32), (8, 16, 16), (2048,), (10,), (10,)]
    fig = inside_charts.architecture_figure([f"l{i}" for i in range(7)], kinds, shapes, [3, 3, 3, 4, None, None, None],
                                            chosen=3)
    colours = {t.marker.color: t.name for t in fig.data}
    assert set(colours.values()) == {"convolution", "normalisation", "linear", inside_charts.OTHER[0]}
    assert all(t.showlegend is not False for t in fig.data)
    heights = {x: y for t in fig.data for x, y in zip(t.x, t.y)}
    assert heights[0] == np.log10(8 * 32 * 32) and heights[5] == 1.0  # 10 values: 10^1
    assert fig.layout.yaxis.type in (None, "linear") and fig.layout.hovermode == "x"
    outlined = [x for t in fig.data for x, w in zip(t.x, t.marker.line.width) if w]
    assert outlined == [3]


def test_the_chosen_pixel_is_outlined_on_its_own_cell():
    fig = inside_charts.pixel_map_figure(np.arange(12.0).reshape(3, 4), (2, 1))
    (box,) = fig.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (0.5, 1.5, 1.5, 2.5)  # column 1, row 2, edge to edge


def test_the_layer_strip_is_one_picture_with_a_tile_per_layer():
    maps = [np.arange(64.0).reshape(8, 8), np.ones((3, 3)), -np.arange(4.0).reshape(2, 2)]
    sheet = inside_charts.layer_strip_picture(maps, ["0", "4", "9"], columns=2, side=20)
    assert sheet.shape == (2 * (20 + 14 + 4), 2 * (20 + 4), 3) and sheet.dtype == np.uint8
    first = sheet[14:34, 0:20]  # the first tile: its smallest value dark purple, its largest yellow
    assert tuple(first[0, 0]) == tuple(inside_charts.VIRIDIS[0].astype(np.uint8))
    assert tuple(first[-1, -1]) == tuple(inside_charts.VIRIDIS[-1].astype(np.uint8))
