"""Nothing lost when the app is killed: a class server with two learners' jobs running and a third learner's job
waiting is killed with SIGKILL (no chance to save anything more), then started again on the same folders. All
three jobs finish; each run's epochs are 1..N, none twice and none missing; the owners stay; and the owners' pages
say their job was resumed. Screenshot: test-artifacts/restart-resumed.png."""
import json
import signal
from pathlib import Path

from tests.e2e.helpers import chosen, digits_preset_with_epochs, screenshot
from tests.e2e.test_shared_server import _join
from tests.helpers import wait_for
from tests.launch import start_app

# Everyone joins and sets up first, then the three start within seconds, so the server is killed a few seconds into
# Ada's and Ben's jobs: they need few epochs to be still running then, and the test's wait after the restart is short.
EPOCHS = {"Ada": 80, "Ben": 80, "Cy": 30}  # Cy's waits in the queue until the restart


def _statuses(cache: Path) -> dict[str, dict]:
    """Each run's status.json, by run id."""
    found = {}
    for status in (cache / "runs").glob("*/status.json"):
        try:
            found[status.parent.name] = json.loads(status.read_text())
        except ValueError:
            continue  # being replaced this instant
    return found


def _owners_in_queue(cache: Path) -> list[str]:
    try:
        return [entry["owner"] for entry in json.loads((cache / "runs" / "queue.json").read_text())]
    except (OSError, ValueError):
        return []  # not written yet, or being replaced this instant


def _epochs(cache: Path, run_id: str) -> list[int]:
    return [e["epoch"] for e in json.loads((cache / "runs" / run_id / "metrics.json").read_text())]


def test_a_killed_class_server_resumes_every_job(browser, tmp_path):
    cache = tmp_path / "cache"
    env = {"CNN_LAB_SHARED": "1", "CNN_LAB_CACHE": str(cache), "CNN_LAB_MAX_JOBS": "2"}
    process, url = start_app(env, log="restart-before.log")
    keys, contexts = {}, []
    try:
        pages = {}
        for name, epochs in EPOCHS.items():
            context, pages[name] = _join(browser, url, name)
            contexts.append(context)
            digits_preset_with_epochs(pages[name], epochs)
            keys[name] = pages[name].url.split("who=")[1].split("&")[0]  # the person's key, as their address bar holds
        for name, page in pages.items():
            page.get_by_role("button", name="Start training").click()
            assert wait_for(lambda: name in _owners_in_queue(cache), 60), name  # queued in this order

        def two_running_one_waiting() -> bool:
            try:
                queue = json.loads((cache / "runs" / "queue.json").read_text())
                running = [e for e in queue if e["status"] == "running"]
                return len(running) == 2 and len(queue) == 3 and all(len(_epochs(cache, e["run_id"])) >= 2
                                                                     for e in running)
            except (OSError, ValueError):
                return False  # a file not written yet, or being replaced this instant

        assert wait_for(two_running_one_waiting, 120), (cache / "runs" / "queue.json").read_text()  # a job that
        # ended before the kill would show here as finished
    finally:
        for context in contexts:
            context.close()
        process.send_signal(signal.SIGKILL)  # no goodbye: what is on disk is all there is
        process.wait(timeout=30)
    before = _statuses(cache)
    assert sorted(s["owner"] for s in before.values()) == ["Ada", "Ben"]  # the third never started
    assert all(s["status"] == "running" for s in before.values())

    process, url = start_app(env, log="restart-after.log")
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts = [context]
        page = context.new_page()
        page.goto(f"{url}/train?who={keys['Ada']}", timeout=90_000)
        page.wait_for_selector("text=Resumed after a restart of the app", timeout=90_000)
        # Her page shows the run's own settings, not the default preset's, and a line that names them.
        assert page.get_by_text("This run:").inner_text() == "This run: Digits (seconds, built in), changed: epochs=80."
        assert chosen(page, "Preset") == "Digits (seconds, built in)"
        # Her step curve goes on from its first step (read back from the run's TensorBoard files), though the
        # resumed job trains from its third epoch at least (a digits epoch is 20 steps).
        chart = page.locator(".cnn-lab-live-chart").first
        assert wait_for(lambda: chart.evaluate("el => (el.data && el.data[0].x.length) || 0") > 0, 60)
        assert chart.evaluate("el => el.data[0].x[0]") <= 20
        screenshot(page, "restart-resumed")
        assert wait_for(lambda: len(_statuses(cache)) == 3 and all(s["status"] == "finished"
                                                                   for s in _statuses(cache).values()), 400)
        after = _statuses(cache)
        assert sorted(s["owner"] for s in after.values()) == ["Ada", "Ben", "Cy"]
        for run_id, status in after.items():
            assert _epochs(cache, run_id) == list(range(1, EPOCHS[status["owner"]] + 1)), run_id
            assert status["created"] == before.get(run_id, status)["created"]  # the same run, not a copy
    finally:
        for context in contexts:
            context.close()
        process.terminate()
        process.wait(timeout=30)
