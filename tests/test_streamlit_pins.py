"""What the app assumes of Streamlit's private parts, pinned: an upgrade that changes it fails here first.

ui.nav reads `PagesManager.uses_pages_directory` (the app's only import from streamlit.runtime): Streamlit sets it
when the server starts, True because app.py has a pages/ folder beside it, and runs a page file alone (its old
pages/ mode) until a script calls st.navigation, which sets it False. A shared link's first request after a start
is such a run; the page then goes through app.py (tests/e2e/test_pages_in_browser.py opens a link so)."""
import ast
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager

from tests.helpers import ROOT


def imports_of(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_only_ui_nav_imports_streamlit_runtime():
    sources = [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py"),
               *(ROOT / "cnn_lab").rglob("*.py")]
    private = {p.relative_to(ROOT).as_posix() for p in sources
               if any(m.startswith("streamlit.runtime") for m in imports_of(p))}
    assert private == {"ui/nav.py"}


def test_a_pages_folder_starts_the_old_mode_and_st_navigation_ends_it(run_page):
    before = PagesManager.uses_pages_directory
    try:
        PagesManager.uses_pages_directory = None
        PagesManager(str(ROOT / "app.py"))
        assert PagesManager.uses_pages_directory is True
        at = run_page("app.py")
        assert not at.exception and PagesManager.uses_pages_directory is False
    finally:
        PagesManager.uses_pages_directory = before
