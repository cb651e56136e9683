"""Every page renders through AppTest without an exception and with its title."""
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from ui import PAGES

pytestmark = pytest.mark.newcomer


def test_home_lists_pages_and_machine():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "CNN Lab"
    text = " ".join(m.value for m in at.markdown)
    assert "Compute device" in text and ("CPU" in text or "GPU" in text)
    assert len(at.table) == 2


@pytest.mark.parametrize("info", PAGES, ids=[p.path for p in PAGES])
def test_page_renders(info):
    at = AppTest.from_file(str(ROOT / info.path), default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.title[0].value == info.title
