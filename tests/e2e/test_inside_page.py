"""The "Inside the network" page in a real browser, on a fresh machine's pretrained network: upload a photo,
see every layer, click a bar of the architecture and a feature map, and read the arithmetic of the clicked value.
Screenshots: test-artifacts/inside-*.png."""
import re

import pytest

from cnn_lab import images, inside, inside_charts, subjects
from tests.e2e.helpers import choose, chosen, click_until, long_digits_run, no_exception, screenshot, wait_idle
from tests.helpers import wait_for

PRETRAINED = "EfficientNet-Lite0, pretrained on ImageNet (works offline)"


def _arithmetic(page) -> tuple[str, float, float]:
    """(where: 'channel c, row r, column k', the computed sum, the layer's value), as the page says them."""
    text = page.locator("p:has-text('The arithmetic at channel')").first.inner_text()
    where = re.search(r"The arithmetic at (channel \d+, row \d+, column \d+)", text).group(1)
    computed, given = re.search(r"= (-?\d+\.\d+); the layer gave (-?\d+\.\d+)", text).groups()
    return where, float(computed), float(given)


def _pretrained_and_a_photo():
    subject = subjects.pretrained_subject()
    return subject.model, subject.prepare(images.to_model_input(images.load_sample("coffee").image, (3, 224, 224)))


@pytest.mark.newcomer  # the pretrained network: works on a bare machine
def test_upload_click_a_layer_and_a_map_read_the_arithmetic(page, app_url, tmp_path):
    page.goto(f"{app_url}/inside")
    page.wait_for_selector("text=The arithmetic at channel", timeout=120_000)
    wait_idle(page)
    if chosen(page, "Model") != PRETRAINED:  # runs trained earlier in this session come first
        choose(page, "Model", PRETRAINED)
        wait_idle(page)
    page.locator("label:has-text('Upload')").first.click()
    wait_idle(page)
    photo = tmp_path / "coffee.jpg"  # a real photo, saved as a JPEG file to upload
    images.load_sample("coffee").image.save(photo)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(photo))
    page.wait_for_selector("text=Top-5: the softmax of the logits", timeout=60_000)  # the chart is drawn last
    wait_idle(page)
    screenshot(page, "inside-uploaded")

    # a bar of the architecture: that layer (a depthwise convolution of the third block) becomes the chosen one
    layers = inside.inspect(*_pretrained_and_a_photo()).layers
    names = [layer.name for layer in layers]
    index = names.index("_blocks.2._depthwise_conv")
    figure = inside_charts.architecture_figure(names, [l.kind for l in layers], [l.shape for l in layers],
                                               [l.receptive_field for l in layers], 0)
    drawn = [x for trace in figure.data for x in trace.x]  # the bars in the order Plotly draws them: by colour
    bars = page.locator(".st-key-inside_arch .point path, .st-key-inside_arch path.point")
    assert wait_for(lambda: bars.count() == len(names), 90), bars.count()  # a busy machine draws it late
    bars.nth(drawn.index(index)).click(force=True)
    assert wait_for(lambda: page.locator(f"h2:has-text('Layer {index}: _blocks.2._depthwise_conv')").count(), 30)
    wait_idle(page)

    # a channel's bar, then a pixel of its map: the arithmetic follows both
    before = _arithmetic(page)
    page.locator(".st-key-inside_bars .point path, .st-key-inside_bars path.point").nth(3).click(force=True)
    assert wait_for(lambda: _arithmetic(page)[0].split(",")[0] != before[0].split(",")[0], 30), before
    wait_idle(page)
    channel_chosen = _arithmetic(page)[0]
    plot = page.locator(".st-key-inside_pixels .nsewdrag").first
    box = plot.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.3)
    assert wait_for(lambda: _arithmetic(page)[0] != channel_chosen, 30), channel_chosen
    wait_idle(page)
    where, computed, given = _arithmetic(page)
    assert computed == pytest.approx(given, abs=2e-4), where
    screenshot(page, "inside-clicked")
    assert no_exception(page)


def test_a_confusion_matrix_cell_opens_its_images_and_one_opens_inside(page, app_url):
    """Train digits from the page, click a cell of the confusion matrix: its images show; "Inside" on one opens
    it on the "Inside the network" page with its true class."""
    long_digits_run(page, app_url, epochs=3)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_selector("text=Test accuracy:", timeout=120_000)
    wait_idle(page)
    cells = page.locator(".st-key-confusion_train .point path, .st-key-confusion_train path.point")
    assert wait_for(lambda: cells.count() == 100, 30), cells.count()
    assert click_until(cells.nth(3 * 10 + 8),  # true 3, predicted 8
                       lambda: chosen(page, "True class") == "3" and chosen(page, "Predicted as") == "8")
    wait_idle(page)
    screenshot(page, "inside-confusion-click")
    # a cell with images, then one of them inside the network
    for true, predicted in ((t, p) for t in range(10) for p in range(10) if t != p):
        assert click_until(cells.nth(true * 10 + predicted), lambda: chosen(page, "True class") == str(true))
        wait_idle(page)
        if page.get_by_role("button", name="Inside", exact=True).count():
            break
    page.get_by_role("button", name="Inside", exact=True).first.click()
    page.wait_for_selector("h1:has-text('Inside the network')", timeout=60_000)
    wait_idle(page)
    screenshot(page, "inside-from-a-mistake")
    page.wait_for_selector(f"text=True class: {true}", timeout=60_000)
    wait_idle(page)
    assert no_exception(page)
    screenshot(page, "inside-from-a-mistake")
