"""The train page with its jobs on a local Ray cluster (CNN_LAB_RAY=local), in a real browser: a digits job streams,
finishes, and is found again after a reload (the course CNN on CIFAR-10 through a cluster is tests/test_ray.py's,
from the command line). Screenshot: test-artifacts/ray-job.png."""
import subprocess
import sys

import pytest

from cnn_lab import runs

from .conftest import screenshot, start_app, wait_idle

from .helpers import no_exception, wait_until
from .test_workflows import _long_digits_run, _step

pytestmark = pytest.mark.e2e
pytest.importorskip("ray", reason="ray is in requirements-test.txt")


def test_a_ray_job_streams_finishes_and_survives_a_reload(page, lab_cache):
    process, url = start_app({"CNN_LAB_RAY": "local"})
    try:
        before = {r.run_id for r in runs.list_runs()}
        _long_digits_run(page, url, epochs=30)
        page.get_by_role("button", name="Start training").click()
        assert wait_until(lambda: _step(page) > 0, 120)  # the cluster starts with the first job
        seen = {_step(page)}
        assert wait_until(lambda: (seen.add(_step(page)) or len(seen)) >= 3, 60), seen  # it streams
        assert page.locator("text=Ray node").count() + page.locator("[data-testid='stDataFrame']").count() >= 1
        screenshot(page, "ray-job")
        page.wait_for_selector("text=Test accuracy", timeout=180_000)
        run_id = next(r.run_id for r in runs.list_runs() if r.run_id not in before)
        page.reload()
        page.wait_for_selector(f"text=Latest run {run_id}: finished", timeout=60_000)
        wait_idle(page)
        assert no_exception(page)
        assert len(runs.load_run(run_id).epochs) == 30
    finally:
        process.terminate()
        process.wait(timeout=30)
        subprocess.run([sys.executable, "-c", "from ray.scripts.scripts import main; main()", "stop"], timeout=120)
