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


def test_a_contact_sheet_is_one_picture_with_a_titled_tile_each_and_its_boxes():
    maps = [np.arange(64.0).reshape(8, 8), np.ones((3, 3)), -np.arange(4.0).reshape(2, 2)]
    sheet = inside_charts.contact_sheet([inside_charts.colourise(m) for m in maps], ["0", "4", "9"], columns=2, side=20)
    assert sheet.shape == (2 * (20 + 14 + 4), 2 * (20 + 4), 3) and sheet.dtype == np.uint8
    first = sheet[14:34, 0:20]  # the first tile: its smallest value dark purple, its largest yellow
    assert tuple(first[0, 0]) == tuple(inside_charts.VIRIDIS[0].astype(np.uint8))
    assert tuple(first[-1, -1]) == tuple(inside_charts.VIRIDIS[-1].astype(np.uint8))
    # one shared diverging scale: zero white, +limit red, -limit (and beyond) blue
    assert inside_charts.diverging(np.array([[0.0, 2.0, -2.0, -5.0]]), 2.0).tolist() == [
        [[247, 247, 247], [178, 24, 43], [33, 102, 172], [33, 102, 172]]]
    grey = np.full((10, 10, 3), 128, np.uint8)  # a box round rows 2-4, columns 6-9 of a 10x10 tile shown at 20x20
    boxed = inside_charts.contact_sheet([grey], [""], columns=1, side=20, boxes=[(2, 6, 5, 10)])[14:34]
    assert tuple(boxed[4, 12]) == (255, 255, 0) and tuple(boxed[9, 19]) == (255, 255, 0)  # its top and right edges
    assert tuple(boxed[10, 5]) == (128, 128, 128) and tuple(boxed[7, 15]) == (128, 128, 128)  # outside and inside
