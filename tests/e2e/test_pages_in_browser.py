"""Every page loads in a real browser, without a Streamlit exception box."""
import pytest

from ui import PAGES

from .conftest import screenshot, wait_idle

pytestmark = pytest.mark.e2e


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
        assert page.locator('[data-testid="stException"]').count() == 0, info.title
        screenshot(page, info.path.split("/")[-1].removesuffix(".py"))
