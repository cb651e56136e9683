"""The app's Streamlit settings that keep training from the page near the CLI's speed (issue 18, BENCHMARKS.md):
a training thread shares the GIL with Streamlit's, so nothing in the server may hold it for long every second."""
import tomllib

from tests.helpers import ROOT


def test_no_file_watcher_and_no_full_garbage_collection_after_each_rerun():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"  # polling torch's thousands of module files
    assert config["runner"]["postScriptGC"] is False  # gc.collect(2) after each run of the live panel, every second
