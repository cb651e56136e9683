"""The train page with its jobs on a local Ray cluster (CNN_LAB_RAY=local), in a real browser: a digits job streams,
is found still running after a reload, and stops from the page through the cluster (a Ray job run to its end, the
course CNN on CIFAR-10, is tests/test_ray.py's, from the command line). Screenshot: test-artifacts/ray-job.png."""
import subprocess
import sys

from cnn_lab import runs
from tests.e2e.helpers import long_digits_run, no_exception, progress_step, screenshot, wait_idle
from tests.helpers import wait_for
from tests.launch import start_app


def test_a_ray_job_streams_survives_a_reload_and_stops(ray_module, page, lab_cache):
    process, url = start_app({"CNN_LAB_RAY": "local"})
    try:
        before = {r.run_id for r in runs.list_runs()}
        long_digits_run(page, url, epochs=1000)
        batch = page.get_by_label("Batch size", exact=True)  # batches of 4: about ten minutes of work in all,
        batch.fill("4")  # so the job is still running when the test stops it
        batch.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        assert wait_for(lambda: progress_step(page) > 0, 120)  # the cluster starts with the first job
        seen = {progress_step(page)}
        assert wait_for(lambda: (seen.add(progress_step(page)) or len(seen)) >= 3, 60), seen  # it streams
        assert page.locator("text=Ray node").count() + page.locator("[data-testid='stDataFrame']").count() >= 1
        screenshot(page, "ray-job")
        run_id = next(r.run_id for r in runs.list_runs() if r.run_id not in before)
        step_before_reload = max(seen)
        page.reload()
        assert wait_for(lambda: progress_step(page) > step_before_reload, 60), progress_step(page)  # the same job, still going
        assert [r.run_id for r in runs.list_runs() if r.run_id not in before] == [run_id]  # not started twice
        assert wait_for(lambda: runs.load_run(run_id).epochs, 180)  # an epoch is saved from the cluster (slow when busy)
        saved = len(runs.load_run(run_id).epochs)
        page.get_by_role("button", name="Stop").click()
        page.wait_for_selector("text=Stopped by the user", timeout=60_000)
        wait_idle(page)
        assert no_exception(page)
        record = runs.load_run(run_id)
        assert record.status == "stopped" and saved <= len(record.epochs) < 1000, (record.status, len(record.epochs))
        assert record.config["batch_size"] == 4
    finally:
        process.terminate()
        process.wait(timeout=30)
        subprocess.run([sys.executable, "-c", "from ray.scripts.scripts import main; main()", "stop"], timeout=120)
