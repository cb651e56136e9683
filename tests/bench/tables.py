"""BENCHMARKS.md as results: one current table per kind of machine, which the bench keeps. Each row is a benchmark's
latest figure beside its target, with the date and the command that measures it again; a new run replaces the
figure, date and command of its rows in this machine's table (the target stays, as people wrote it) and adds the
rows the table lacks. The whole of every run, notes and utilisation included, goes to docs/benchmarks-log.md."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from cnn_lab.device import cpu_bf16
from tests.bench.common import Row

COLUMNS = "| benchmark | target | figure | date | command |"
RULE = "| --- | --- | --- | --- | --- |"
LOG = Path("docs/benchmarks-log.md")
LOG_INTRO = ("# Benchmarks: the log\n\nEvery run of `python -m tests.bench`, newest first, as it printed its table, "
             "with what was learned from it. BENCHMARKS.md holds the current figures.\n\n")


def machine_table() -> tuple[str, str]:
    """This machine's table heading, and the words its rows' dates carry ("AMD EPYC, bf16": the CPUs without AMX
    differ in their bf16 instructions, and share a table)."""
    if torch.cuda.is_available():
        return f"## One GPU: {torch.cuda.get_device_name()}", ""
    cores = os.cpu_count() or 1
    kind = cpu_bf16()
    if kind == "AMX":
        return f"## A {cores}-core CPU with AMX", cpu_name()
    return f"## A {cores}-core CPU without AMX", f"{cpu_name()}, {'bf16' if kind else 'no bf16'}"


def cpu_name() -> str:
    """The CPU's maker and family in two words ("Intel Xeon", "AMD EPYC"), from /proc/cpuinfo."""
    try:
        model = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        return "CPU"
    for family in ("Intel Xeon", "AMD EPYC", "AMD Ryzen", "Intel Core", "Apple"):
        if all(word in model for word in family.split()):
            return family
    return model.split(":", 1)[1].strip()


def cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def row_line(row: Row, target: str, date: str, command: str) -> str:
    return f"| {cell(row.what)} | {target} | {cell(row.figure)} | {date} | `{command}` |"


def update(text: str, heading: str, rows: list[tuple[Row, str]], date: str) -> str:
    """`text` (BENCHMARKS.md) with `heading`'s table holding these rows (each with the command that measured it):
    a benchmark already in the table keeps its target and gets the new figure, date and command; a new one is
    added at the table's end, with the target its bench gives, if any. A heading not there yet starts a table above
    the test suite's."""
    lines = text.split("\n")
    if heading not in lines:
        at = next((i for i, line in enumerate(lines) if line.startswith("## The test suite")), len(lines))
        lines[at:at] = [heading, "", COLUMNS, RULE, ""]
    start = lines.index(heading)
    first = next(i for i in range(start, len(lines)) if lines[i] == RULE) + 1
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("| ")), len(lines))
    table = lines[first:end]
    for row, command in rows:
        named = [i for i, line in enumerate(table) if line.split(" | ")[0] == f"| {cell(row.what)}"]
        if named:
            written = table[named[0]].split(" | ")[1]
            table[named[0]] = row_line(row, row.target if written == "-" and row.target else written, date, command)
        else:
            table.append(row_line(row, row.target or "-", date, command))
    lines[first:end] = table
    return "\n".join(lines)


def log(section: str, path: Path = LOG) -> None:
    """The run's whole table at the top of the log, below its introduction."""
    text = path.read_text() if path.exists() else LOG_INTRO
    cut = text.find("\n### ") + 1 or len(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:cut] + section + "\n" + text[cut:])


def dated(date: str, words: str) -> str:
    return f"{date} · {words}" if words else date
