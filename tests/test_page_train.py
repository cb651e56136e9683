"""The train page through AppTest: a short real run on the built-in digits, then its results and history."""
import time

from streamlit.testing.v1 import AppTest

from cnn_lab import jobs
from tests.conftest import ROOT


def test_short_run_on_digits_shows_curves_and_results():
    at = AppTest.from_file(str(ROOT / "pages/5_train.py"), default_timeout=60).run()
    assert not at.exception
    at.selectbox[0].select("Digits (seconds, built in)").run()
    at.button[0].click().run()  # Start training
    assert not at.exception
    job = jobs.MANAGER.latest("train")
    assert job is not None and job.config.dataset == "digits"
    for _ in range(120):
        if not job.alive:
            break
        time.sleep(0.5)
    at.run()
    assert job.status == "finished", job.message
    assert not at.exception
    assert any("Test accuracy" in h.value for h in at.subheader)
    assert job.result.test_acc > 0.9
    charts = at.get("plotly_chart")
    assert len(charts) >= 4  # step loss, epoch curves, per-class, confusion matrix, filters
    assert any(job.run_id == row for row in at.dataframe[0].value["run"].tolist())


def test_second_start_while_busy_says_device_busy():
    earlier = jobs.MANAGER.latest("train")
    at = AppTest.from_file(str(ROOT / "pages/5_train.py"), default_timeout=60).run()
    at.selectbox[0].select("Digits (seconds, built in)").run()
    # A long job holds the device; the page must say so instead of starting a second one.
    from cnn_lab.presets import preset

    long = preset("Digits (seconds, built in)")
    long.epochs = 500
    busy = jobs.MANAGER.start(long)
    try:
        at.run()
        assert at.button[0].disabled  # Start is disabled while a job runs
        # A second tab (a fresh session) finds the same running job instead of starting another.
        at2 = AppTest.from_file(str(ROOT / "pages/5_train.py"), default_timeout=60).run()
        assert at2.button[0].disabled
        assert at2.get("progress")[0].proto.text.startswith("running")
    finally:
        busy.stop()
        for _ in range(100):
            if not busy.alive:
                break
            time.sleep(0.1)
    assert busy.status == "stopped" and earlier is not busy
