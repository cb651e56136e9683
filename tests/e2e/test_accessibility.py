"""Every page read by axe-core (the accessibility engine browsers' own audits use) in Chromium, beside a bare
Streamlit app (tests/e2e/bare_app.py). A page fails on a serious or critical violation that the bare app does not
have, since those are ours to fix (the bare app's are Streamlit's own), and on headings out of order."""
import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.helpers import wait_idle
from tests.launch import start_app, stop_app
from ui.nav import PAGES

GRAVE = {"serious", "critical"}
# A widget switched off (the stride page's output_padding, for a plain convolution) has its label greyed by
# Streamlit; WCAG 1.4.3 exempts inactive controls from the contrast rule, so axe does not read them.
INACTIVE = {"exclude": [['[data-testid="stElementContainer"]:has(:disabled)'],
                        ['[data-testid="stElementContainer"]:has([aria-disabled="true"])']]}


def violations(page, url: str) -> dict[str, list[str]]:
    """axe's violations on the page at `url` once it has settled: rule id -> what it says, one line per element."""
    page.goto(url)
    page.wait_for_selector("h1", timeout=60_000)
    wait_idle(page)
    page.wait_for_timeout(1_500)  # charts and images drawn after the script ends
    found = Axe().run(page, context=INACTIVE).response["violations"]
    return {v["id"]: [f'{v["impact"]}: {v["help"]}: {n["target"]}' for n in v["nodes"]] for v in found}


def grave(found: dict[str, list[str]]) -> set[str]:
    return {rule for rule, lines in found.items() if any(line.split(":")[0] in GRAVE for line in lines)}


@pytest.fixture(scope="module")
def streamlits_own(browser) -> set[str]:
    """The serious and critical rules a bare Streamlit app breaks, with our theme: Streamlit's, not ours."""
    process, url = start_app(log="e2e-bare-app.log", script="tests/e2e/bare_app.py")
    try:
        page = browser.new_page()
        found = violations(page, url)
        page.close()
    finally:
        stop_app(process)
    assert grave(found) == {"svg-img-alt"}, found  # its line chart; if Streamlit fixes it, this says so
    return grave(found)


@pytest.mark.parametrize("path", ["", *(info.url_path for info in PAGES)], ids=["home", *(i.url_path for i in PAGES)])
def test_every_page_passes_axe(page, app_url, streamlits_own, path):
    found = violations(page, f"{app_url}/{path}")
    ours = {rule: found[rule] for rule in grave(found) - streamlits_own}
    assert not ours, ours
    assert "heading-order" not in found, found["heading-order"]
