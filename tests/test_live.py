"""A job's live view (jobs.live): what the browser fetches every second while the job runs, found only by the job's
watch token."""
import math

import pytest

from cnn_lab import charts, jobs
from cnn_lab.jobs import live
from cnn_lab.metrics import StoppedBeforeTraining
from cnn_lab.presets import preset
from tests.helpers import wait_for


def _publishing_job(steps: list[tuple[int, float, float]], eta: float = 7.2) -> jobs.Job:
    """A job whose work publishes these steps and a progress line, then waits to be stopped."""
    def work(log, control, saving):
        log.add_steps(steps)
        log.set_progress(step=steps[-1][0], total_steps=40, epoch=1, epochs=2, images_per_s=1234.4, eta=eta,
                         parameters=5_000, device="cpu")
        control.stop_requested.wait(60)
        raise StoppedBeforeTraining("Stopped by the test.")

    return jobs.MANAGER.start(preset("Digits (seconds, built in)"), work=work)


def test_the_live_view_is_the_jobs_progress_and_step_curve_behind_its_token_only():
    steps = [(1, 2.0, 0.1), (2, 1.0, 0.1), (3, float("nan"), 0.05), (4, math.inf, 0.05)]
    job = _publishing_job(steps)
    try:
        assert wait_for(lambda: job.log.snapshot().steps)
        view = live.watched_view(job.watch_token, "0.5")
        assert view["status"] == "running" and view["alive"] and view["epochs"] == 0
        assert view["fraction"] == 4 / 40
        assert view["text"] == "running · epoch 1/2 · step 4/40 · 1,234 img/s · ETA 7 s · 5,000 parameters on cpu"
        assert view["series"]["x"] == [1, 2, 3, 4] and view["series"]["lr"] == [0.1, 0.1, 0.05, 0.05]
        # a diverging run's NaN and infinity become gaps (JSON has no NaN); the EMA is the chart's own
        assert view["series"]["loss"] == [2.0, 1.0, None, None]
        assert view["series"]["smooth"][:2] == charts.ema([2.0, 1.0], 0.5) == pytest.approx([2.0, 4 / 3])
        assert live.watched_view(job.watch_token, "not a number")["series"]["smooth"][:2] == charts.ema([2.0, 1.0], 0.9)
        # each token finds its own job; a made-up, empty, non-ASCII or cut one finds nothing
        other = _publishing_job([(1, 3.0, 0.1)])
        assert other.watch_token != job.watch_token and len(job.watch_token) >= 20
        assert live.watched_view(other.watch_token, None)["series"]["loss"] == []  # it waits in the queue
        assert live.watched_view(other.watch_token, None)["text"].startswith("queued · position 1")
        assert all(live.watched_view(token, None) is None for token in ("made-up", "", "é" * 22, job.watch_token[:-1]))
    finally:
        for each in jobs.MANAGER.jobs():
            jobs.MANAGER.stop(each)
        assert wait_for(lambda: not any(each.alive for each in jobs.MANAGER.jobs()), 30)
    ended = live.watched_view(job.watch_token, None)
    # an ended job has no speed or time left to show (its last ETA read as thousands of seconds)
    assert ended["status"] == "stopped" and ended["text"] == "stopped · epoch 1/2 · step 4/40 · 5,000 parameters on cpu"


def test_a_long_time_left_reads_in_hours_and_minutes_not_seconds():
    job = _publishing_job([(1, 2.0, 0.1)], eta=36_314)  # a long run on a busy machine: it read "ETA 36314 s"
    try:
        assert wait_for(lambda: job.log.snapshot().steps)
        assert " · ETA 10 h 05 min · " in live.progress_line(job)[1]
    finally:
        jobs.MANAGER.stop(job)
        assert wait_for(lambda: not job.alive, 30)


def test_the_command_line_s_progress_line_reads_the_time_left_in_the_same_words():
    from cnn_lab.__main__ import progress_line
    from cnn_lab.metrics import Progress

    line, fraction = progress_line(Progress(epoch=1, epochs=2, step=10, total_steps=40, images_per_s=80.0, eta=36_314))
    assert line == "epoch 1/2 · step 10 of 40 · 80 img/s · ETA 10 h 05 min" and fraction == 0.25


def test_the_epoch_curves_of_two_runs_overlay_on_two_valid_plotly_charts():
    import plotly.graph_objects as go

    from cnn_lab.metrics import EpochRecord

    with_val = [EpochRecord(e, 2.0 / e, 0.3 * e, 2.2 / e, 0.28 * e, 0.1, 1.0, 100.0) for e in (1, 2, 3)]
    no_val = [EpochRecord(1, 1.5, 0.4, None, None, 0.1, 1.0, 100.0)]
    fig = charts.epoch_figure({"a": with_val, "b": no_val}, log_y=True)
    go.Figure(fig.to_dict())  # Plotly's own checks pass on what was built unchecked
    assert [(t.name, t.xaxis, t.yaxis) for t in fig.data] == [
        ("a train", "x", "y"), ("a val", "x", "y"), ("a train", "x2", "y2"), ("a val", "x2", "y2"),
        ("b train", "x", "y"), ("b train", "x2", "y2")]  # b had no validation split
    assert list(fig.data[3].y) == pytest.approx([0.28, 0.56, 0.84]) and fig.layout.yaxis.type == "log"
    assert [t.showlegend for t in fig.data] == [True, True, False, False, True, False]  # one legend entry a curve
    assert [a.text for a in fig.layout.annotations] == ["Loss per epoch", "Accuracy per epoch"]
