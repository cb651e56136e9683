"""A newcomer's first result in a real browser: the app on a machine with no data folder, an empty cache and no
network. The train and transfer pages say what to do next; the train page's offer of Digits leads to a finished
run. Screenshots: test-artifacts/newcomer-*.png."""
import pytest

from tests.e2e.helpers import no_exception, screenshot, wait_idle
from tests.launch import start_app

pytestmark = pytest.mark.newcomer


@pytest.fixture(scope="module")
def bare_app(tmp_path_factory):
    cache = tmp_path_factory.mktemp("newcomer_cache")
    process, url = start_app({"CNN_LAB_DATA": "", "CNN_LAB_CACHE": str(cache), "TORCH_HOME": str(cache / "torch")})
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_the_transfer_page_says_what_each_source_is(page, bare_app):
    page.goto(f"{bare_app}/transfer")
    page.wait_for_selector("text=No boat photos are on this machine yet", timeout=60_000)
    wait_idle(page)
    for words in ("boats9.tar.gz", "CNN_LAB_DATA", "kagglehub", "one folder per class"):
        assert page.get_by_text(words, exact=False).count() >= 1, words
    assert no_exception(page)
    screenshot(page, "newcomer-transfer")
    page.get_by_text("Kaggle boat types (not here yet)").click()
    page.wait_for_selector("text=cannot reach kaggle.com", timeout=30_000)
    assert no_exception(page)


def test_the_train_page_offers_digits_and_they_train(page, bare_app):
    page.goto(f"{bare_app}/train")
    page.wait_for_selector("text=cannot be downloaded now", timeout=60_000)
    wait_idle(page)
    start = page.get_by_role("button", name="Start training")
    assert start.is_disabled()
    screenshot(page, "newcomer-train")
    page.get_by_role("button", name="Use the built-in Digits preset instead").click()
    page.wait_for_selector("text=A small CNN on scikit-learn's 8x8 digits", timeout=30_000)
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_selector("text=Test accuracy", timeout=120_000)
    wait_idle(page)
    assert no_exception(page)
    screenshot(page, "newcomer-first-run")
