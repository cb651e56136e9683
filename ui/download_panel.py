"""A download that a page starts (the Kaggle boat types): a button, then live progress and Cancel."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn_lab import downloads


def download_panel(name: str, label: str, button: str, work, ready: bool, offline: str) -> Path:
    """A download the page starts: a button, then live progress (bytes, speed, ETA) and Cancel, in a thread the
    process owns, so a refresh or a second tab finds it. Returns what `work` made once it is done; until then the
    page stops here. When `ready` is False (its server cannot be reached) it says `offline` and offers no button."""
    task = downloads.BACKGROUND.get(name)
    if task is not None and task.status == "done":
        return task.result
    if task is None or not task.alive:
        if task is not None and task.message:
            (st.info if task.status == "cancelled" else st.error)(task.message)
        if not ready:
            st.warning(offline)
        elif st.button(button, type="primary"):
            downloads.BACKGROUND.start(name, label, work)
            st.rerun()
        st.stop()

    @st.fragment(run_every=1.0)
    def progress() -> None:
        if not task.alive:
            st.rerun(scope="app")
        shown = task.progress
        st.progress(shown.fraction if shown else 0.0, text=shown.text() if shown else f"downloading {label}: connecting")
        if st.button("Cancel the download"):
            task.cancel.set()

    progress()
    st.stop()
