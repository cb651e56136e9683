"""The app's Streamlit settings that keep training from the page near the CLI's speed (issue 18,
docs/benchmarks-log.md): a training thread shares the GIL with Streamlit's, so nothing in the server may hold it
for long every second."""
import tomllib

import pytest

from tests.helpers import ROOT


def test_no_file_watcher_and_no_full_garbage_collection_after_each_rerun():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"  # polling torch's thousands of module files
    assert config["runner"]["postScriptGC"] is False  # gc.collect(2) after each run of the live panel, every second


@pytest.mark.heavy
def test_the_server_imports_pandas_whole_before_any_page_runs():
    """Streamlit imports app.py once as the server starts. Pandas must be whole by then: plotly looks it up in
    sys.modules without importing it, so a page's figure built while another page's thread was still importing pandas
    met half a module (the live chart's "partially initialized module 'pandas'" after an app's restart)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, app; print('pandas' in sys.modules)"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr[-2000:]
