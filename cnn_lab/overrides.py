"""`--set field=value` for any field of a config dataclass, nested fields with dots (`model.widths=[16,32]`).
A value is read as JSON (numbers, true/false, lists) and else as text; it must fit the field's type, or one
sentence says what is wrong."""
from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from typing import Any


class OverrideError(ValueError):
    """An unknown field or a value of the wrong kind; the message is one sentence."""


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # plain text: a dataset name, an optimizer...


# A field's type in the words of the sentence that refuses a value ("epochs takes a whole number").
_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list", dict: "a mapping"}


def _fit(value: Any, current: Any, name: str) -> Any:
    """`value` as the type of the field's current value, or an OverrideError."""
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(current, str):
        ok, value = True, value if isinstance(value, str) else json.dumps(value)
    elif isinstance(current, list) and isinstance(value, str):  # "16, 32", as the page's text box spells a list
        try:
            value = json.loads(f"[{value}]")
        except ValueError:
            pass
        ok = isinstance(value, list)
    elif isinstance(current, (list, dict)):
        ok = isinstance(value, type(current))
    else:
        ok = True
    if not ok:
        kind = _KINDS.get(type(current), f"a {type(current).__name__}")
        raise OverrideError(f"{name} takes {kind} (it is {json.dumps(current)} now), not {json.dumps(value)}.")
    return value


def apply(config: Any, assignments: list[str]) -> Any:
    """Set each `field=value` (dotted for nested dataclasses) on `config`, in order; returns it."""
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep or not path.strip():
            raise OverrideError(f"--set takes field=value, e.g. --set lr=0.01; got {assignment!r}.")
        target, names = config, path.strip().split(".")
        for depth, name in enumerate(names):
            if isinstance(target, dict) and depth == len(names) - 1:  # an entry of a dict field: its key is free
                target[name] = _fit(_parse(text), target.get(name), path.strip())  # (activation_params.alpha)
                break
            known = [f.name for f in fields(target)] if is_dataclass(target) else []
            if name not in known:
                where = ".".join(names[:depth]) or type(config).__name__
                raise OverrideError(f"{where} has no field {name!r}; its fields are: {', '.join(known)}." if known
                                    else f"{where} has no fields inside it.")
            if depth < len(names) - 1:
                target = getattr(target, name)
            else:
                setattr(target, name, _fit(_parse(text), getattr(target, name), path.strip()))
    return config


def differences(base: Any, config: Any, prefix: str = "") -> dict[str, Any]:
    """The fields where `config` differs from `base`, by dotted name (dataclasses and dicts inside flattened):
    what `--set` (or a shareable link) needs to turn `base` into `config`."""
    changed: dict[str, Any] = {}
    for f in fields(config):
        mine, theirs = getattr(config, f.name), getattr(base, f.name, None)
        if is_dataclass(mine) and is_dataclass(theirs):
            changed |= differences(theirs, mine, f"{prefix}{f.name}.")
        elif isinstance(mine, dict) and mine != theirs:
            changed |= {f"{prefix}{f.name}.{key}": value for key, value in mine.items()}
        elif mine != theirs:
            changed[f"{prefix}{f.name}"] = mine
    return changed


def assignments(changed: dict[str, Any]) -> list[str]:
    """Differences as `field=value` texts, which `apply` reads back: ["lr=0.1", "model.widths=[16,32]"]."""
    def text(value: Any) -> str:
        if isinstance(value, str) and _parse(value) == value:
            return value  # a plain word stays plain (dataset=digits); "2" as text is quoted below
        return json.dumps(value, separators=(",", ":"))

    return [f"{name}={text(value)}" for name, value in changed.items()]


def nearest(named: dict[str, Any], config: Any) -> tuple[str, dict[str, Any]]:
    """The name of the config in `named` from which `config` differs in the fewest fields (the first on a tie), and
    those differences: how a page names the recipe a running job was started from."""
    name = min(named, key=lambda n: len(differences(named[n], config)))
    return name, differences(named[name], config)
