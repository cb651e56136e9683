"""A job on the train and transfer pages: Start / Pause / Resume / Stop, the queue of everyone's jobs, and the
live panel (progress, the step curve, the epoch curves, each layer's norms)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from cnn_lab import charts, jobs, overrides
from cnn_lab.identity import Person
from cnn_lab.jobs import live
from cnn_lab.settings import load_settings
from ui.live import live_chart


def job_controls(kind: str, start_label: str, make_job, person: Person, can_start: bool = True) -> jobs.Job | None:
    """Start / Pause / Resume / Stop for this tab's job of `kind` (else your newest); `make_job()` submits one.
    Start queues when the device is busy; only the owner or an admin sees the other buttons enabled."""
    job = jobs.MANAGER.get(st.session_state.get(f"job_{kind}", "")) or jobs.MANAGER.latest(kind, person)
    start, pause, resume, stop = st.columns(4)
    if start.button(start_label, type="primary", disabled=not can_start):
        try:
            job = make_job()
            st.session_state[f"job_{kind}"] = job.run_id
        except jobs.QueueFull as error:
            st.warning(str(error))
    if job and job.alive:
        allowed = jobs.MANAGER.can_control(job, person)
        # Callbacks, not `if st.button(...)`: a callback runs as the click's rerun starts. The page reruns by itself
        # at each new epoch or status (seconds apart for a fast job), and such a rerun could stop the click's one
        # before it reached the button: the click was lost (Stop did nothing) on a busy machine.
        pause.button("Pause", disabled=job.status != "running" or not allowed, on_click=jobs.MANAGER.pause,
                     args=(job, person))
        resume.button("Resume", disabled=job.status != "paused" or not allowed, on_click=jobs.MANAGER.resume,
                      args=(job, person))
        stop.button("Stop" if job.status != "queued" else "Leave the queue", disabled=not allowed,
                    on_click=jobs.MANAGER.stop, args=(job, person))
    return job


def resumable_runs(person: Person, kind: str) -> None:
    """Each of your runs that stopped before its last epoch (the app restarted, you or a time limit stopped it),
    with a button that resumes it from its last epoch: the same run, its curves going on."""
    for record in [r for r in jobs.MANAGER.runs_of(person, kind) if r.resumable][:5]:
        why = "the app stopped while it ran" if record.status == "interrupted" else "it was stopped"
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.warning(f"Run {record.run_id} has {len(record.epochs)} of its {record.config['epochs']} epochs: {why}. "
                     "Its epochs and weights are kept, and it can go on from there.")
        if button.button("Resume", key=f"resume_{record.run_id}", help="Continue this run from its last epoch"):
            try:
                job = jobs.MANAGER.resume_run(record.run_id, person)
                st.session_state[f"job_{kind}"] = job.run_id
                st.rerun()
            except (jobs.NotAllowed, jobs.QueueFull, *jobs.EXPECTED_ERRORS) as error:
                st.warning(str(error))


def queue_table(person: Person) -> None:
    """Every job that waits or runs, everyone's: whose, what, where, its place in the queue, how far along.
    An admin can stop any of them."""
    alive = [job for job in jobs.MANAGER.jobs() if job.alive]
    if not alive:
        st.caption("The device is free: no job is running or waiting.")
        return
    rows = []
    for job in alive:
        progress = job.log.snapshot().progress
        done = progress.step / max(1, progress.total_steps)
        position = jobs.MANAGER.position(job)
        rows.append({"who": job.owner, "what": job.kind, "status": job.status,
                     "where": (progress.node or "this machine") if job.status != "queued" else "",
                     "queue": f"#{position} · {live.wait_words(job)}" if position else "",
                     "progress": f"{done:.0%}" if job.status != "queued" else ""})
    st.dataframe(rows, hide_index=True)
    if person.admin and load_settings().shared:
        a, b = st.columns([3, 1])
        names = {job.run_id: f"{job.owner} · {job.kind} · {job.status}" for job in alive}
        target = a.selectbox("Admin: a job", list(names), format_func=names.get)
        if b.button("Stop this job"):
            jobs.MANAGER.stop(jobs.MANAGER.get(target), person)


def recipe_words(presets: dict[str, Any], config: Any, leave_out: tuple[str, ...] = ()) -> str:
    """A job's recipe in words: the preset it is nearest to, and what differs, as `--set` and links spell it."""
    name, changed = overrides.nearest(presets, config)
    changes = overrides.assignments({field: v for field, v in changed.items() if field not in leave_out})
    return f"**{name}**" + (f", changed: {', '.join(changes)}" if changes else "")


def live_panel(job: jobs.Job | None, empty_note: str, person: Person, about: str = "") -> None:
    """This tab's job (progress, the per-step curve, the per-epoch curves, each layer's norms on demand) and the
    queue, in one fragment on purpose: Streamlit's front end can crash ("'setIn' cannot be called on an
    ElementNode", a blank page) when one fragment's timer fires while another fragment's st.rerun(scope="app")
    rebuilds the page. While this tab's job waits or runs, its progress and step curve are redrawn every second
    by the browser itself (live_chart), and the fragment reruns when the job's status or epoch count changes (the
    live chart's trigger), every second while the layer norms are shown, every 5 s while the queue is open or
    others' jobs run, and not at all once every job has ended (each rerun costs the server and the browser, and so
    a laptop's training, some CPU). When the job's status changes (it starts, pauses, ends), or the last of the
    others' jobs ends, the whole page reruns once, so the buttons, results and polling follow. `about` names the
    job's recipe (recipe_words): the settings above may since have moved to another."""
    watching = job is not None and job.alive  # then the live chart tells the fragment when to rerun
    if watching and st.session_state.get(f"norms_{job.kind}", False):
        every = 1.0  # the layer norms are drawn by the fragment
    elif st.session_state.get("queue_open", load_settings().shared) and any(j.alive for j in jobs.MANAGER.jobs()):
        every = 5.0  # the queue, open
    elif watching:
        every = 60.0  # only in case the browser could not run the live chart
    else:
        every = 5.0 if any(j.alive for j in jobs.MANAGER.jobs()) else None  # others' jobs, until they end

    @st.fragment(run_every=every)
    def panel() -> None:
        if job is None:
            st.info(empty_note)
        else:
            if about:
                st.caption(f"This run: {about}.")
            job_progress(job)
        with st.expander("The queue: everyone's jobs", expanded=load_settings().shared, key="queue_open",
                         on_change="rerun") as queue:
            if queue.open:  # drawn only when open: a hidden table redrawn every second still costs the browser
                queue_table(person)
        if job is not None:
            seen, now = f"status_seen_{job.kind}", (job.status, job.alive)  # it started, ended, its thread is done
            if st.session_state.get(seen, now) != now:  # then the whole page follows, once
                st.session_state[seen] = now
                st.rerun(scope="app")
            st.session_state[seen] = now
        if every == 5.0 and not any(j.alive for j in jobs.MANAGER.jobs()):
            st.rerun(scope="app")  # the others' jobs have all ended: stop polling

    panel()


def job_progress(job: jobs.Job) -> None:
    if job.note:  # "resumed after a restart"
        st.info(job.note)
    seen = job.log.snapshot()
    steps, epochs = seen.steps, seen.epochs
    smoothing = st.session_state.get(f"ema_{job.kind}", 0.9)  # the controls are drawn under the chart
    log_y = st.session_state.get(f"log_y_{job.kind}", False)
    if job.alive:
        live_chart(job, smoothing, log_y)
    else:
        fraction, text = live.progress_line(job)
        st.progress(fraction, text=text)
        if steps:
            st.markdown("**Train loss per step**")
            st.plotly_chart(charts.step_loss_figure(steps, smoothing, log_y), key=f"steps_{job.kind}", theme=None,
                            alt=f"The training loss at each of {len(steps):,} steps, smoothed")
    a, b = st.columns(2)
    a.slider("Smoothing (EMA)", 0.0, 0.99, 0.9, key=f"ema_{job.kind}")
    b.toggle("Log-scale loss", key=f"log_y_{job.kind}")
    if job.status == "failed":
        st.error(job.message)
    elif job.status == "stopped" and job.result is None:  # stopped before training, e.g. a cancelled download
        st.info(job.message)
    elif not job.alive and job.message:
        st.success(job.message)
    if epochs:
        st.plotly_chart(charts.epoch_figure({job.run_id: epochs}, log_y), key=f"epochs_{job.kind}",
                        alt=charts.epochs_alt({job.run_id: epochs}))
    trace = seen.progress.layer_norms
    if trace and trace["steps"] and st.toggle("Each layer's gradient norm (vanishing or exploding gradients)",
                                              key=f"norms_{job.kind}"):
        which = st.radio("Norm of", ["grad", "weight"], horizontal=True, key=f"norms_which_{job.kind}",
                         format_func={"grad": "the gradients", "weight": "the weights"}.get)
        st.plotly_chart(charts.layer_norms_figure(trace, which), key=f"norms_chart_{job.kind}",
                        alt=f"The norm of each layer's {which} over the training steps, one line per layer")
        first, last = trace["grad"][-1][0], trace["grad"][-1][-1]
        st.caption(f"Now: the first layer's gradient norm is {first:.2g}, the last layer's {last:.2g} "
                   f"({last / max(first, 1e-30):.3g}x the first's).")
