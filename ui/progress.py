"""Work done once for the whole server, with a progress bar while it runs: a synthesised image, a dataset decoded
at a new size. (st.cache_resource would also share it, but shows only a spinner, and an element drawn inside a
cached function is replayed on every later hit.)"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st

T = TypeVar("T")
Show = Callable[[float, str], None]  # show(fraction done, text)


@st.cache_resource
def _stores() -> dict[str, OrderedDict]:
    return {}


def once_with_progress(family: str, key: Hashable, compute: Callable[[Show], T], first_text: str,
                       limit: int = 16) -> T:
    """compute(show) once per (family, key) for the whole server, keeping the newest `limit` of a family; while it
    runs, a progress bar that starts at `first_text` and that `show` moves."""
    store = _stores().setdefault(family, OrderedDict())
    if key not in store:
        bar = st.progress(0.0, text=first_text)
        try:
            store[key] = compute(lambda fraction, text: bar.progress(min(1.0, max(0.0, fraction)), text=text))
        finally:
            bar.empty()  # a failure's sentence is the page's to show, without a bar stuck half way
        while len(store) > limit:
            store.popitem(last=False)  # the oldest goes first
    return store[key]


def ready(family: str, key: Hashable) -> bool:
    """Whether once_with_progress already holds this (family, key): using it costs nothing."""
    return key in _stores().get(family, {})
