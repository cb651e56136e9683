"""A teacher's view of the class: everyone's runs in one table, and who may be stuck (issue 34).

On a class server an admin sees every person's runs; a learner sees their own (the page asks `runs_for`). In
local mode the one person is "you", who sees their runs the same way. Who is flagged: a person whose last run
failed, or who has had no run for a while (a learner who stopped trying, or never started one)."""
from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, fields

from cnn_lab import runs
from cnn_lab.identity import Person

IDLE_MINUTES = 20  # no run for this long: flagged, so that the teacher can ask how it goes


@dataclass(frozen=True)
class RunRow:
    """One run as the class table shows it."""
    person: str
    run: str
    kind: str
    dataset: str
    model: str
    status: str
    epochs: int
    best_val_acc: float | None
    test_acc: float | None
    started: str  # local time, e.g. "2026-12-03 09:41"
    minutes: float | None  # training time, once it has ended

    @classmethod
    def of(cls, record: runs.RunRecord) -> RunRow:
        data, _, model = record.label.partition(" · ")
        seconds = sum(e.seconds for e in record.epochs) if record.epochs else None
        return cls(record.owner, record.run_id, record.kind, data if model else "-", model or data, record.status,
                   len(record.epochs), record.best_val_acc, record.test_acc,
                   time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created)),
                   round(seconds / 60, 2) if seconds is not None else None)


@dataclass(frozen=True)
class Flag:
    person: str
    reason: str  # one sentence


def runs_for(person: Person, shared: bool, live: set[str] = frozenset()) -> list[runs.RunRecord]:
    """What `person` may see here: everyone's runs for an admin on a shared server, else their own."""
    owner = None if (person.admin or not shared) else person.name
    return runs.list_runs(live=live, owner=owner)


def flags(records: list[runs.RunRecord], now: float | None = None, idle_minutes: float = IDLE_MINUTES,
          people: list[str] | None = None) -> list[Flag]:
    """Who may be stuck: a person whose newest run failed, or whose newest run started over `idle_minutes` ago;
    `people` who have no run at all are flagged too."""
    now = time.time() if now is None else now
    newest: dict[str, runs.RunRecord] = {}
    for record in records:
        if record.owner not in newest or record.created > newest[record.owner].created:
            newest[record.owner] = record
    found = []
    for person in sorted(set(newest) | set(people or [])):
        record = newest.get(person)
        if record is None:
            found.append(Flag(person, f"{person} has not started a run yet."))
        elif record.status == "failed":
            found.append(Flag(person, f"{person}'s last run ({record.run_id}) failed: {record.message}"))
        elif record.status not in ("running", "queued") and now - record.created > idle_minutes * 60:
            found.append(Flag(person, f"{person} has started no run for {(now - record.created) / 60:.0f} minutes."))
    return found


def table_csv(rows: list[RunRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(RunRow)])
    writer.writeheader()
    writer.writerows(runs.spreadsheet_safe(asdict(row)) for row in rows)
    return out.getvalue()
