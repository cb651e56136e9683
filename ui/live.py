"""The live chart: a small browser component that fetches a job's live view once a second and redraws the progress
bar and the step curve in place, and the two HTTP routes app.py serves for it beside Streamlit's."""
from __future__ import annotations

import json
from pathlib import Path

import plotly
import streamlit as st

from cnn_lab import charts, jobs
from cnn_lab.jobs import live


def live_base() -> str:
    """Where the live charts' routes are served (under server.baseUrlPath when the app is behind one)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/cnn-lab" if base else "/cnn-lab"


def live_routes() -> list:
    """The routes app.py serves beside Streamlit's: a job's live view by its watch token (jobs.live; an unknown
    token gets 404), and Plotly's own script for the live chart."""
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    async def view(request):
        found = live.watched_view(request.path_params["token"], request.query_params.get("smoothing"))
        if found is None:
            return Response(status_code=404)
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    async def plotly_js(request):
        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                            headers={"Cache-Control": "max-age=86400"})

    return [Route(f"{live_base()}/live/{{token}}", view), Route(f"{live_base()}/plotly.min.js", plotly_js)]


LIVE_COMPONENT = st.components.v2.component(
    "cnn_lab_live_chart", js=(Path(live.__file__).parent / "live_chart.js").read_text(), isolate_styles=False, css="""
    .cnn-lab-live-text { font-size: 14px; margin: 0 0 6px; }
    .cnn-lab-live-track { height: 8px; border-radius: 4px; background: var(--st-secondary-background-color, #f0f2f6); }
    .cnn-lab-live-track div { height: 100%; border-radius: 4px; background: var(--st-primary-color, #ff4b4b); }
    .cnn-lab-live-title { margin: 16px 0 0; }
    .cnn-lab-live-title span { font-size: 14px; margin-left: 12px; }
    .cnn-lab-live-chart { height: 250px; }""")


def live_chart(job: jobs.Job, smoothing: float, log_y: bool) -> None:
    """The job's progress bar and train loss per step, drawn by the browser and redrawn there every second from
    the job's live view (jobs.live); a new status or epoch reruns the fragment around it."""
    figure = charts.live_step_loss_figure(smoothing, log_y)
    LIVE_COMPONENT(key=f"live_{job.kind}", on_changed_change=lambda: None, data={
        "url": f"{live_base()}/live/{job.watch_token}?smoothing={smoothing}", "plotly": f"{live_base()}/plotly.min.js",
        "figure": json.loads(figure.to_json()), "config": charts.LIVE_CHART, "view": live.live_view(job, smoothing)})
