"""Every page in a real browser: it loads, a slider moves, the output changes, and no exception box shows."""
import pytest

from tests.e2e.helpers import choose, chosen, no_exception, nudge, screenshot, settled, slider, text_of, wait_idle
from tests.helpers import wait_for
from tests.launch import start_app, stop_app
from ui.nav import PAGES


@pytest.mark.newcomer
def test_home_and_every_page(page, app_url):
    page.goto(app_url)
    page.wait_for_selector("h1:has-text('CNN Lab')", timeout=60_000)
    page.wait_for_selector("text=shipped in a package", timeout=60_000)
    wait_idle(page)
    screenshot(page, "home")
    links = page.locator('[data-testid="stSidebarNavLink"]')
    assert links.count() == len(PAGES) + 1
    for index, info in enumerate(PAGES, start=1):
        links.nth(index).click()
        page.wait_for_selector(f"h1:has-text('{info.title}')", timeout=60_000)
        wait_idle(page)
        assert no_exception(page), info.title
        screenshot(page, info.path.split("/")[-1].removesuffix(".py"))


# page, slider label, presses, what to read, the text before
SLIDER_CASES = [
    ("convolution", "Stride", 1, "p:has-text('Input (3, 512, 512)')", "convolution (3, 512, 512)"),
    ("stride_padding", "Stride", 1, "p:has-text('torch says')", "Output 7x7"),
    ("activations", "Depth N", 3, "p:has-text('sigmoid: 0.25^')", "0.25^10"),
]


@pytest.mark.parametrize("path, label, presses, selector, before", SLIDER_CASES, ids=[c[0] for c in SLIDER_CASES])
def test_a_slider_changes_the_output(page, app_url, path, label, presses, selector, before):
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector(selector, timeout=60_000)
    wait_idle(page)
    assert before in text_of(page, selector)
    nudge(page, label, presses)
    assert wait_for(lambda: before not in text_of(page, selector), 30), f"{path}: {text_of(page, selector)}"
    wait_idle(page)
    assert no_exception(page)
    screenshot(page, f"slider-{path}")


def test_augmentation_draw_count_follows_the_slider(page, app_url):
    page.goto(f"{app_url}/augmentation")
    page.wait_for_selector("text=Random draws", timeout=60_000)
    wait_idle(page)
    images = page.locator('[data-testid="stImage"]')
    assert wait_for(lambda: images.count() > 0, 60)  # drawn (on a busy machine after wait_idle), then settled
    before = settled(images.count)
    nudge(page, "Draws", 2)
    assert wait_for(lambda: images.count() == before + 2, 30), (before, images.count())
    assert no_exception(page)
    screenshot(page, "slider-augmentation")


# corpus file (from the reliability tests) -> what the convolution page must then show
UPLOADS = [
    ("text renamed .jpg", "text=This file is not an image that can be read"),
    ("empty file", "text=The file is empty"),
    ("truncated JPEG", "text=truncated or corrupt"),
    ("20000x20000 PNG", "text=over the 40-megapixel limit"),
    ("SVG", "text=This file is not an image that can be read"),
    ("CMYK JPEG", "text=32x32"),
    ("1x1 PNG", "text=The pooling window (2) is larger than the feature map (1x1)"),
]


def test_bad_uploads_give_one_sentence_and_keep_the_image(page, app_url, tmp_path):
    from tests.helpers import ODD_FILES

    page.goto(f"{app_url}/convolution")
    page.wait_for_selector("text=512x512", timeout=60_000)
    wait_idle(page)
    page.locator("label:has-text('Upload')").first.click()
    wait_idle(page)
    for name, expected in UPLOADS:
        path = tmp_path / f"{name.replace(' ', '_')}.{'png' if 'PNG' in name else 'jpg'}"
        path.write_bytes(ODD_FILES[name][0])
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(path))
        page.wait_for_selector(expected, timeout=30_000)
        wait_idle(page)
        assert no_exception(page), name
        if ODD_FILES[name][1] is not None:  # refused: the previous image stays
            assert page.locator("text=512x512").count() >= 1, name
    screenshot(page, "bad-upload")


def test_editing_a_kernel_cell_changes_the_arithmetic(page, app_url):
    page.goto(f"{app_url}/convolution")
    page.wait_for_selector("text=512x512", timeout=60_000)
    wait_idle(page)
    page.locator("label:has-text('Custom grid')").click()
    wait_idle(page)
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()  # the editable grid, above the tabs
    row_height = (grid["height"] - 35) / 3  # a header, then three rows
    editor = page.locator("#portal input")  # the cell's editor, drawn over the grid while it is open
    # A click while the grid still mounts selects nothing, and the typed key goes nowhere (seen once in the suite).
    for _ in range(3):
        page.mouse.click(grid["x"] + grid["width"] / 2, grid["y"] + 35 + 1.5 * row_height)  # the centre cell
        page.wait_for_timeout(500)
        page.keyboard.type("9")  # typing on a selected cell opens its editor
        if wait_for(lambda: editor.count() > 0, 3):
            break
    assert editor.count() > 0, "the cell's editor did not open"
    assert editor.first.input_value() == "9"
    page.keyboard.press("Enter")
    assert wait_for(lambda: editor.count() == 0, 5)
    wait_idle(page)
    page.get_by_role("tab", name="Magnifier").click()  # only the open tab's content runs
    wait_idle(page)
    line = page.locator("p:has-text('output[256, 256] =')").first
    assert wait_for(lambda: "0.07·9.00" in line.inner_text(), 30), line.inner_text()  # sharpen's centre, 5 -> 9
    assert no_exception(page)
    screenshot(page, "edited-kernel")


def test_the_best_transfer_recipe_fills_in_its_settings(boats9_archive, page, app_url):
    page.goto(f"{app_url}/transfer")
    page.wait_for_selector("text=9 classes", timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("Blocks to fine-tune").count() == 0  # the probe recipe comes first
    choose(page, "Start from", "Fine-tune (best on boats9, for a GPU)")
    wait_idle(page)
    page.wait_for_selector("text=Blocks to fine-tune (from the end)", timeout=30_000)
    assert page.get_by_text("Train the new last layer alone first (LP-FT)").count() == 1
    assert chosen(page, "Augmentation preset") == "photos: zoom crop and colour"
    assert no_exception(page)
    screenshot(page, "transfer-best-recipe")


def test_a_copied_link_opens_the_same_view_in_a_new_tab(page, app_url):
    """A teacher moves the stride slider, copies the page's link and sends it: a new tab (a new session) opens
    on the same stride, the same output size; a tampered link opens on the defaults with one sentence."""
    page.goto(f"{app_url}/stride_padding")
    page.wait_for_selector("p:has-text('torch says')", timeout=60_000)
    wait_idle(page)
    nudge(page, "Stride", 1)
    address = lambda: page.evaluate("document.location.href")  # noqa: E731 - the address bar (history.replaceState)
    assert wait_for(lambda: "s=2" in address(), 30), address()
    wait_idle(page)
    page.get_by_text("Copy a link to this view").click()
    link = page.locator('[data-testid="stCode"]').last.inner_text().strip()
    assert link.startswith(app_url) and "s=2" in link, link
    output = text_of(page, "p:has-text('torch says')")
    second = page.context.new_page()
    second.goto(link)
    second.wait_for_selector("p:has-text('torch says')", timeout=60_000)
    wait_idle(second)
    assert text_of(second, "p:has-text('torch says')") == output  # Output 4x4 with stride 2
    assert slider(second, "Stride").input_value() == "2"
    second.goto(f"{app_url}/stride_padding?s=99")
    second.wait_for_selector("text=This link's s was not valid for this page", timeout=60_000)
    assert "Output 7x7" in text_of(second, "p:has-text('torch says')")
    screenshot(second, "link-tampered")
    second.close()


def test_a_link_is_a_fresh_servers_first_request(browser):
    """A link opened before anyone else has used a just-started server: Streamlit runs the page file alone (its old
    pages/ mode, tests/test_streamlit_pins.py); the page goes through app.py and comes back with the link's
    settings and the whole menu."""
    process, url = start_app(log="e2e-first-request.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/stride_padding?s=2")
        page.wait_for_selector("p:has-text('torch says')", timeout=60_000)
        wait_idle(page)
        assert slider(page, "Stride").input_value() == "2"
        assert "Output 4x4" in text_of(page, "p:has-text('torch says')")
        assert page.locator('[data-testid="stSidebarNavLink"]').count() == len(PAGES) + 1
        assert no_exception(page)
        page.close()
    finally:
        stop_app(process)
