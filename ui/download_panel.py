"""A download that a page starts (the Kaggle boat types): a button, then live progress and Cancel."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn_lab import downloads
from cnn_lab.identity import Person


def download_panel(name: str, label: str, button: str, work, ready: bool, offline: str,
                   person: Person | None) -> Path:
    """A download the page starts: a button, then live progress (bytes, speed, ETA) and Cancel, in a thread the
    process owns, so a refresh or a second tab finds it. Returns what `work` made once it is done; until then the
    page stops here. When `ready` is False (its server cannot be reached) it says `offline` and offers no button.
    On a class server the download serves everyone: a signed-in `person` starts it, and only they or an admin
    cancel it."""
    task = downloads.BACKGROUND.get(name)
    if task is not None and task.status == "done":
        return task.result
    if task is None or not task.alive:
        if task is not None and task.message:
            (st.info if task.status == "cancelled" else st.error)(task.message)
        if not ready:
            st.warning(offline)
        elif person is None:
            st.info("Sign in on the train page to start this download.")
        elif st.button(button, type="primary"):
            downloads.BACKGROUND.start(name, label, work, started_by=person.name)
            st.rerun()
        st.stop()
    may_cancel = person is not None and (person.admin or person.name == task.started_by)

    @st.fragment(run_every=1.0)
    def progress() -> None:
        if not task.alive:
            st.rerun(scope="app")
        shown = task.progress
        st.progress(shown.fraction if shown else 0.0, text=shown.text() if shown else f"downloading {label}: connecting")
        if st.button("Cancel the download", disabled=not may_cancel,
                     help=None if may_cancel else f"{task.started_by} started it for everyone; they or a teacher can "
                     "cancel it."):
            task.cancel.set()

    progress()
    st.stop()
