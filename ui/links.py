"""Shareable links: a page's settings live in the URL (st.query_params), so that opening a copied link restores
exactly that view. Each linked widget checks the URL's value against its own options or range before it is
drawn; a value that does not fit is dropped (the widget keeps its default) and the page says so in one sentence.

A page draws its widgets with these functions instead of st's, then calls `keep()` at its end: the URL then holds
every linked setting that differs from its default, and "Copy a link to this view" shows it."""
from __future__ import annotations

import json
from typing import Any, Callable

import streamlit as st

KEEP = ("who",)  # the person's key in shared mode: kept in the address bar, left out of a copied link
_DRAWN = "_links_drawn"  # {url name: JSON value} of this run's linked widgets that differ from their defaults
_BAD = "_links_bad"
LINK_BOX = "links_box_open"  # whether "Copy a link to this view" is open (its code box is drawn only then)
_SEEN = "_links_seen"  # the URL names of every linked widget drawn in this session, at its default or not


def _number_fits(value: Any, low: float, high: float, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return low <= value <= high and (not whole or float(value).is_integer())


def _restore(key: str, name: str, fits: Callable[[Any], bool], convert: Callable[[Any], Any] = lambda v: v) -> None:
    """Before a widget is drawn: its value from the URL, unless the widget already has one in this session."""
    if key in st.session_state or name not in st.query_params:
        return
    try:
        ok = fits(value := decode(st.query_params[name]))
    except (TypeError, ValueError):
        ok = False
    if ok:
        st.session_state[key] = convert(value)
    else:
        st.session_state.setdefault(_BAD, []).append(name)


def _remember(name: str, value: Any, default: Any) -> Any:
    st.session_state.setdefault(_SEEN, set()).add(name)
    if value != default:
        st.session_state.setdefault(_DRAWN, {})[name] = encode(list(value) if isinstance(value, tuple) else value)
    return value


def encode(value: Any) -> str:
    """A value as the URL shows it: JSON, except that a plain word stays a plain word (stride=2, mode=reflect)."""
    if isinstance(value, str):
        try:
            json.loads(value)  # "2" or "true" as text must stay text: quote it
        except ValueError:
            return value
    return json.dumps(value, separators=(",", ":"))


def decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def slider(where, label: str, low, high, value, *, key: str, name: str | None = None, **kwargs):
    """st.slider, one value or a (low, high) range; whole numbers when its bounds and value are."""
    name = _name(key, name)
    whole = all(isinstance(v, int) for v in (low, high, *(value if isinstance(value, tuple) else (value,))))
    one = lambda v: _number_fits(v, low, high, whole)  # noqa: E731
    if isinstance(value, tuple):
        _restore(key, name, lambda v: isinstance(v, list) and len(v) == 2 and all(map(one, v)) and v[0] <= v[1],
                 lambda v: tuple(type(value[0])(x) for x in v))
    else:
        _restore(key, name, one, type(value))
    return _remember(name, where.slider(label, low, high, value, key=key, **kwargs), value)


def number_input(where, label: str, low, high, value, *, key: str, name: str | None = None, **kwargs):
    name = _name(key, name)
    whole = isinstance(value, int)
    _restore(key, name, lambda v: _number_fits(v, low, high, whole), type(value))
    return _remember(name, where.number_input(label, low, high, value, key=key, **kwargs), value)


def _choice(widget, label: str, options: list, index: int, key: str, name: str | None, **kwargs):
    """A selectbox or radio; the URL holds the option itself, not its index."""
    name = _name(key, name)
    _restore(key, name, lambda v: v in options)
    return _remember(name, widget(label, options, index=index, key=key, **kwargs), options[index])


def selectbox(where, label: str, options: list, index: int = 0, *, key: str, name: str | None = None, **kwargs):
    return _choice(where.selectbox, label, options, index, key, name, **kwargs)


def radio(where, label: str, options: list, index: int = 0, *, key: str, name: str | None = None, **kwargs):
    return _choice(where.radio, label, options, index, key, name, **kwargs)


def multiselect(where, label: str, options: list, default: list, *, key: str, name: str | None = None, **kwargs):
    name = _name(key, name)
    most = kwargs.get("max_selections") or len(options)
    _restore(key, name, lambda v: isinstance(v, list) and len(v) <= most and all(x in options for x in v)
             and len(set(map(json.dumps, v))) == len(v))
    return _remember(name, where.multiselect(label, options, default, key=key, **kwargs), list(default))


def toggle(where, label: str, value: bool = False, *, key: str, name: str | None = None, **kwargs) -> bool:
    name = _name(key, name)
    _restore(key, name, lambda v: isinstance(v, bool))
    return _remember(name, where.toggle(label, value, key=key, **kwargs), value)


def text_input(where, label: str, value: str, *, key: str, name: str | None = None, **kwargs) -> str:
    """st.text_input; a list in the URL (a config's "model.widths=[16,32]") becomes its text "16, 32"."""
    name = _name(key, name)
    _restore(key, name, lambda v: isinstance(v, (str, list)) and len(str(v)) < 200,
             lambda v: ", ".join(map(str, v)) if isinstance(v, list) else v)
    return _remember(name, where.text_input(label, value, key=key, **kwargs), value)


def unshown(apply: Callable[[str, str], None], skip: tuple[str, ...] = (), closed: bool = False) -> None:
    """The URL's settings that no widget of this run drew (a config's fields the page has no control for):
    `apply(name, text)` each, in the link's order; one that raises ValueError is dropped with the others that
    did not fit. Call it after the page's widgets.

    A setting whose widget was drawn earlier in the session, and is not now, is dropped (another model's setting),
    unless the page's settings are `closed` this run: then it holds as the widget left it."""
    drawn = st.session_state.setdefault(_DRAWN, {})
    seen = () if closed else st.session_state.get(_SEEN, ())
    for name, text in st.query_params.to_dict().items():
        if name in drawn or name in KEEP or name in skip or name in seen:
            continue
        try:
            apply(name, text)
            drawn[name] = text
        except ValueError:
            st.session_state.setdefault(_BAD, []).append(name)


def from_link(name: str, fits: Callable[[str], bool]) -> str | None:
    """A setting that is not one widget (an augmentation pipeline, a kernel grid): the URL's text, the first time
    a page asks in this session and only when `fits` accepts it; else None. Pair it with `remember`."""
    if st.session_state.get(f"_links_read_{name}"):
        return None
    st.session_state[f"_links_read_{name}"] = True  # later runs: the page's own state rules (the URL follows it)
    if name not in st.query_params:
        return None
    if fits(st.query_params[name]):
        return st.query_params[name]
    st.session_state.setdefault(_BAD, []).append(name)
    return None


def remember(name: str, value: str, default: str) -> str:
    """Put a setting that is not one widget into the link (when it is not at its default)."""
    if value != default:
        st.session_state.setdefault(_DRAWN, {})[name] = value
    return value


def _name(key: str, name: str | None) -> str:
    """The widget's name in the URL: its key, unless the page gives another (the train page: config fields)."""
    return name or key


def begin() -> None:
    """At the start of a page: nothing is remembered yet for its link (a page that stopped early left its own)."""
    st.session_state.pop(_DRAWN, None)


def forget() -> None:
    """Drop the settings from the URL (a callback for a control that replaces them all, such as a preset)."""
    st.query_params.from_dict({k: st.query_params[k] for k in KEEP if k in st.query_params})


def keep() -> None:
    """At the end of a page: the URL holds this run's linked settings (those not at their default), the page says
    in one sentence if the link it was opened with had values that did not fit, and offers the link to copy."""
    drawn = st.session_state.pop(_DRAWN, {})
    bad = st.session_state.pop(_BAD, [])
    if bad:
        st.toast(f"This link's {', '.join(bad)} {'was' if len(bad) == 1 else 'were'} not valid for this page, so "
                 f"{'that setting is' if len(bad) == 1 else 'those settings are'} at the default.", icon="⚠️")
    params = {k: st.query_params[k] for k in KEEP if k in st.query_params} | drawn
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    # Drawn only when opened: a code box costs the browser about 0.4 s on every visit (its highlighter loads).
    box = st.expander("Copy a link to this view", key=LINK_BOX, on_change="rerun")
    if box.open:
        base = (st.context.url or "").split("?")[0]
        query = "&".join(f"{k}={_quote(v)}" for k, v in drawn.items())
        box.code(f"{base}?{query}" if query else base, language=None)
        box.caption("Opening it restores these settings (the copy button is at the code's right). Uploaded images "
                    "are not in the link.")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="[],:")
