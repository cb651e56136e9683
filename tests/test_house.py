"""The house's rules that a reader meets, checked from the source: every picture and chart says what it shows, no
import circle, and README and BENCHMARKS.md short enough to read (issue 56)."""
import ast
import re
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of cnn_lab/, ui/, the pages and app.py -> the modules of those it imports, including imports
    made only for type hints (a circle there is still two ideas that each need the other)."""
    paths = [*(ROOT / "cnn_lab").rglob("*.py"), *page_sources()]
    names = {module_name(p): p for p in paths}
    graph = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from .config import X, from . import config
                    base = ".".join([package.rsplit(".", node.level - 1)[0]] + ([base] if base else []))
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base
                               for alias in node.names)
        graph[name] = {t for t in targets if t in names and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm): each holds an import circle."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_circles_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    graph = import_graph()
    assert len(graph) > 60 and graph["ui.nav"] == {"ui.links"}, graph["ui.nav"]  # it read them all
    assert circles(graph) == []


def paragraphs(markdown: str) -> list[str]:
    """A markdown file's paragraphs and list items, without its code blocks, tables and headings."""
    prose, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            line = ""
        if fenced or line.startswith(("|", "#", "![")):
            line = ""
        prose.append(line)
    found = []
    for block in "\n".join(prose).split("\n\n"):
        item: list[str] = []
        for line in block.strip().splitlines():
            if re.match(r"\s{0,3}(- |\d+\. )", line) and item:  # a new list item
                found.append(" ".join(item))
                item = []
            item.append(line.strip())
        if item:
            found.append(" ".join(item))
    return found


def test_paragraphs_finds_items_and_skips_code_and_tables():
    text = "One two.\nthree\n\n- a b\n- c\n  d\n\n```bash\nlong code\n```\n| x | y |\n\n# Title\n"
    assert paragraphs(text) == ["One two. three", "- a b", "- c d"]


def test_readme_shows_its_commands_first_and_no_paragraph_is_long():
    text = (ROOT / "README.md").read_text()
    assert text.index("```bash") < 1500
    long = [(len(p.split()), p[:80]) for p in paragraphs(text) if len(p.split()) > 120]
    assert not long, long


def test_benchmarks_are_short_current_tables_each_row_dated_with_its_command():
    lines = (ROOT / "BENCHMARKS.md").read_text().splitlines()
    assert len(lines) <= 300
    rows = [line for line in lines if line.startswith("| ") and not line.startswith(("| benchmark |", "| --- |"))]
    assert len(rows) > 30
    for row in rows:
        benchmark, target, figure, date, command = row.strip("| ").split(" | ")
        assert re.match(r"20\d\d-\d\d-\d\d\b", date) and re.fullmatch(r"`.*(python -m|pytest|bash).*`", command), row
