"""What a page shows of a job while it waits or runs, as plain data: its progress line and its step curve.

The page draws it once; then the browser asks for it again every second by itself (`GET /cnn-lab/live/<watch
token>`, served beside the app: see app.py and ui.live_chart), with no Streamlit rerun. On a 2-core laptop each
rerun (the server running the page's fragment, the browser rebuilding its elements and mounting a new chart) was
taken from training (issue 18); one small JSON a second and one Plotly redraw in place cost a fraction of that.
"""
from __future__ import annotations

from cnn_lab.charts import step_loss_series
from cnn_lab.jobs.manager import MANAGER, Job


def duration(seconds: float) -> str:
    """40 s, 12 min, 3 h 05 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def wait_words(job: Job) -> str:
    seconds = MANAGER.estimated_wait(job)
    return "estimated wait not known yet" if seconds is None else f"estimated wait {duration(seconds)}"


def progress_line(job: Job) -> tuple[float, str]:
    """How far along the job is (0 to 1) and the line written on its progress bar."""
    progress = job.log.snapshot().progress
    if job.status == "queued":
        return 0.0, f"queued · position {MANAGER.position(job)} · {wait_words(job)}"
    if not progress.training:  # not training yet: loading, downloading, or it failed before the start
        stage = (progress.stage or "loading the data") if job.alive else ""
        return progress.stage_fraction, job.status + (f" · {stage}" if stage else "")
    total = progress.total_steps
    pace = f" · {progress.images_per_s:,.0f} img/s · ETA {duration(progress.eta or 0)}" if job.alive else ""
    return (min(1.0, progress.step / total),
            f"{job.status} · epoch {progress.epoch}/{progress.epochs} · step {progress.step}/{total}{pace} · "
            f"{progress.parameters:,} parameters on {progress.device}")


def live_view(job: Job, smoothing: float) -> dict:
    """The job as the live chart draws it. `status`, `alive` and `epochs` tell the page when to rerun (a new
    status, the job's end, a new epoch's curves); the rest is redrawn in place."""
    seen = job.log.snapshot()
    fraction, text = progress_line(job)
    return {"status": job.status, "alive": job.alive, "epochs": len(seen.epochs), "fraction": fraction, "text": text,
            "series": step_loss_series(seen.steps, smoothing)}


def watched_view(token: str, smoothing: str | None) -> dict | None:
    """live_view for the job with this watch token, or None; `smoothing` as the URL carries it (0 to 0.99)."""
    job = MANAGER.watched(token)
    if job is None:
        return None
    try:
        value = min(0.99, max(0.0, float(smoothing or 0.9)))
    except ValueError:
        value = 0.9
    return live_view(job, value)
