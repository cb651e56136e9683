"""Whole workflows in a real browser: a training run streamed, stopped and found again after a reload; two
sessions starting at once; an app killed mid-run; a photo classified on the transfer page."""
import json
import os
import signal

from cnn_lab import runs
from tests.e2e.helpers import (
    choose,
    long_digits_run,
    no_exception,
    progress_step,
    progress_text,
    screenshot,
    wait_idle,
)
from tests.helpers import wait_for
from tests.launch import start_app


def test_training_streams_stops_and_survives_a_reload(page, app_url):
    long_digits_run(page, app_url)
    page.get_by_role("button", name="Start training").click()
    assert wait_for(lambda: progress_step(page) > 0, 60), progress_text(page)
    seen = {progress_step(page)}
    assert wait_for(lambda: (seen.add(progress_step(page)) or len(seen)) >= 3, 30), seen  # two updates after the first
    # the step curve, drawn by Plotly in the page and redrawn in place (the live chart: no Streamlit rerun)
    assert wait_for(lambda: page.locator(".cnn-lab-live-chart .scatterlayer .trace").count() == 3, 30)
    screenshot(page, "train-running")
    assert wait_for(lambda: "epoch 1/" not in progress_text(page), 120), progress_text(page)  # an epoch to keep
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("text=Stopped by the user", timeout=60_000)
    page.reload()
    page.wait_for_selector("text=Runs", timeout=60_000)
    wait_idle(page)
    history = runs.list_runs(kind="train")
    assert history[0].status == "stopped" and history[0].epochs
    assert page.locator(f"text=Latest run {history[0].run_id}: stopped").count() == 1
    assert no_exception(page)
    screenshot(page, "train-after-reload")


def test_two_sessions_start_at_once(browser, app_url):
    """Two tabs press Start together: two jobs, one runs and one waits its turn (nothing refused, nothing lost)."""
    before = {r.run_id for r in runs.list_runs()}
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    pages = [c.new_page() for c in contexts]
    try:
        for p in pages:
            long_digits_run(p, app_url)
        for p in pages:
            p.get_by_role("button", name="Start training").click()
        for p in pages:
            wait_idle(p)
        statuses = lambda: sorted(progress_text(p).split(" ·")[0] for p in pages)  # noqa: E731
        assert wait_for(lambda: statuses() == ["queued", "running"], 60), [progress_text(p) for p in pages]
        queued = next(p for p in pages if progress_text(p).startswith("queued"))
        assert progress_text(queued).startswith("queued · position 1")
        running = next(p for p in pages if p is not queued)
        running.get_by_role("button", name="Stop").click()
        # its turn (a limit for a busy machine: the stopped job ends at its next step, then the page's next poll)
        assert wait_for(lambda: progress_text(queued).startswith("running"), 120), progress_text(queued)
        wait_idle(queued)  # the rerun for its new status has drawn its buttons
        queued.get_by_role("button", name="Stop").click()
        queued.wait_for_selector("text=Stopped by the user", timeout=120_000)
        saved = lambda: sorted(r.status for r in runs.list_runs() if r.run_id not in before)  # noqa: E731
        assert wait_for(lambda: saved() == ["stopped", "stopped"], 60), saved()
        for p in pages:
            p.reload()
            p.wait_for_selector("text=Runs", timeout=60_000)
            wait_idle(p)
            assert no_exception(p)
        screenshot(pages[0], "two-sessions")
    finally:
        for c in contexts:
            c.close()


def test_a_killed_app_resumes_its_run(browser, tmp_path):
    """Local mode: the app killed with SIGKILL while a run trains, then started again on the same folders. The run
    goes on by itself from its last saved epoch (the page says so), as the same run; its owner stops it there."""
    cache = tmp_path / "cache"  # its own: the queue of a runs folder belongs to one app process at a time
    process, url = start_app({"CNN_LAB_CACHE": str(cache)}, log="killed-before.log")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        long_digits_run(page, url, epochs=1000)
        page.get_by_role("button", name="Start training").click()
        metrics = lambda: list((cache / "runs").glob("*/metrics.json"))  # noqa: E731
        assert wait_for(lambda: metrics() and json.loads(metrics()[0].read_text()), 60)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        run_id = metrics()[0].parent.name
        saved = len(json.loads(metrics()[0].read_text()))
        process, url = start_app({"CNN_LAB_CACHE": str(cache)}, log="killed-after.log")
        page.goto(f"{url}/train")
        page.wait_for_selector("text=Resumed after a restart of the app", timeout=60_000)
        wait_idle(page)
        screenshot(page, "resumed")
        page.get_by_role("button", name="Stop").click()
        assert wait_for(lambda: json.loads((cache / "runs" / run_id / "status.json").read_text())["status"]
                        == "stopped", 60)
        epochs = [e["epoch"] for e in json.loads((cache / "runs" / run_id / "metrics.json").read_text())]
        assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= saved >= 1
        # nothing left to resume (the queue is written once the job's thread has saved its run)
        assert wait_for(lambda: json.loads((cache / "runs" / "queue.json").read_text()) == [], 30)
    finally:
        page.close()
        process.kill()


def test_transfer_probe_then_upload_a_photo(boats9_archive, page, app_url, boats9_folder, tmp_path):
    """A folder of boat photos typed in, a linear probe trained, a photo uploaded: its top-5 and Grad-CAM. The
    folder is a slice of boats9 (10 photos a class), so that the browser test does not wait for 1,095 photos'
    features (the probe on all of boats9 is tests/test_page_transfer.py's, and the bench's)."""
    import shutil

    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        for folder in sorted((boats9_folder / split).iterdir()):
            (tmp_path / split / folder.name).mkdir(parents=True)
            for photo in sorted(folder.glob("*.jpg"))[:count]:
                shutil.copy(photo, tmp_path / split / folder.name / photo.name)
    page.goto(f"{app_url}/transfer")
    page.wait_for_selector("text=9 classes", timeout=120_000)
    wait_idle(page)
    page.get_by_text("A folder on this machine", exact=True).click()
    wait_idle(page)
    field = page.get_by_label("Folder (ImageFolder layout", exact=False)
    field.fill(str(tmp_path))
    field.press("Enter")
    page.wait_for_selector("text=9 classes; train: 54, val: 18, test: 18", timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="Start the linear probe").click()
    page.wait_for_selector("text=Test accuracy", timeout=400_000)
    wait_idle(page)
    # the classify section opens on the best run here; other tests' runs share this cache: choose this one
    mine = next(r.run_id for r in runs.list_runs(kind="transfer") if r.config["data"] == str(tmp_path))
    choose(page, "Run", mine)
    wait_idle(page)
    photo = next((boats9_folder / "test" / "Kayaks").glob("*.jpg"))
    page.locator('[data-testid="stFileUploader"] input[type="file"]').last.set_input_files(str(photo))
    page.wait_for_selector("text=Top-5", timeout=180_000)  # Grad-CAM and TTA on a CPU: long when the cores are busy
    page.wait_for_selector("text=Grad-CAM", timeout=60_000)
    wait_idle(page)
    assert no_exception(page)
    screenshot(page, "transfer-classified")
