"""Small Playwright helpers for Streamlit widgets, found by their labels."""
from __future__ import annotations

import time

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from cnn_lab.presets import preset
from tests.helpers import wait_for
from tests.launch import ARTIFACTS


def slider(page, label: str):
    exact = page.locator('[data-testid="stWidgetLabel"]').get_by_text(label, exact=True)  # "Stride", not "(= stride)"
    return page.locator('[data-testid="stSlider"]').filter(has=exact).locator('input[type="range"]').first


def nudge(page, label: str, presses: int = 1, key: str = "ArrowRight") -> None:
    handle = slider(page, label)
    handle.focus()
    for _ in range(presses):
        handle.press(key)


def choose(page, label: str, option: str, tries: int = 3) -> None:
    """Open a selectbox and pick an option; again if a rerun closed the list before the pick."""
    for _ in range(tries):
        page.get_by_role("combobox", name=label, exact=True).click()
        item = page.locator('[role="option"]').filter(has_text=option).first
        try:
            item.click(timeout=5_000)
            return
        except PlaywrightTimeout:  # the list closed under us
            page.keyboard.press("Escape")
            page.wait_for_timeout(1_000)
    raise AssertionError(f"could not choose {option!r} in {label!r}")


def click_until(target, done, tries: int = 3, seconds: float = 15) -> bool:
    """Click a chart's point until `done()` holds: a rerun that redraws the chart just then (the job's end on a busy
    machine) drops the click, as it would a user's, who clicks again."""
    for _ in range(tries):
        target.click(force=True)
        if wait_for(done, seconds):
            return True
    return False


def digits_preset_with_epochs(page, epochs: int) -> None:
    """On the train page: choose the digits preset and set its number of epochs. On a busy machine the rerun for a
    newly chosen preset can outlast wait_idle, and the last preset's controls are then still there, beside the new
    ones or alone: the Epochs field is filled once it is the only one and shows the digits preset's own value."""
    choose(page, "Preset", "Digits (seconds, built in)")
    wait_idle(page)
    page.locator("summary:has-text('Settings'), [data-testid='stExpander'] >> text=Settings").first.click()
    field = page.get_by_label("Epochs", exact=True)
    expected = str(preset("Digits (seconds, built in)").epochs)
    assert wait_for(lambda: field.count() == 1 and field.input_value() == expected, 60), field.count()
    field.fill(str(epochs))
    field.press("Enter")
    wait_idle(page)


def chosen(page, label: str) -> str:
    """The option a selectbox shows."""
    return page.get_by_role("combobox", name=label, exact=True).input_value()


def text_of(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def no_exception(page) -> bool:
    return page.locator('[data-testid="stException"]').count() == 0


def settled(read, quiet: float = 1.5, timeout: float = 30.0):
    """What `read()` answers once it has stopped changing for `quiet` seconds (or at `timeout`)."""
    end = time.time() + timeout
    last, since = read(), time.time()
    while time.time() < end:
        time.sleep(0.25)
        now = read()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return now
    return last


def progress_text(page) -> str:
    """The line on the job's progress bar: the live chart's while the job waits or runs, st.progress's after."""
    bar = page.locator('.cnn-lab-live-text, [data-testid="stProgress"]')
    return bar.first.inner_text() if bar.count() else ""


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)
    page.wait_for_timeout(500)


def screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to its height first."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 600), 6000)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(size)


def long_digits_run(page, url: str, epochs: int = 400) -> None:
    """The train page with the digits preset, set to `epochs` (long enough to watch, pause and stop)."""
    page.goto(f"{url}/train")
    page.wait_for_selector("text=Start training", timeout=60_000)
    wait_idle(page)
    digits_preset_with_epochs(page, epochs)


def progress_step(page) -> int:
    """The step the progress line shows, or -1 before training."""
    text = progress_text(page)
    return int(text.split("step ")[1].split("/")[0]) if "step " in text else -1
