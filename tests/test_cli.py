import subprocess
import sys


def test_help_runs():
    out = subprocess.run([sys.executable, "-m", "cnn_lab", "--help"], capture_output=True, text=True, check=True)
    assert "python -m cnn_lab" in out.stdout
