"""The fair queue: who waits for the device, in order. Pure Python (no torch), so its rules are easy to test.

Rules: first come, first served; in shared mode one running job per person (a person's next job waits, and the
jobs behind it may go first); a person may have only `per_person` jobs waiting.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass


class QueueFull(RuntimeError):
    """A person already has as many jobs waiting as allowed; the message is one sentence."""


@dataclass(frozen=True)
class Ticket:
    job_id: str
    owner: str


class FairQueue:
    def __init__(self, per_person: int):
        self.per_person = per_person
        self._waiting: list[Ticket] = []

    def push(self, ticket: Ticket) -> None:
        mine = sum(t.owner == ticket.owner for t in self._waiting)
        if mine >= self.per_person:
            raise QueueFull(f"You already have {mine} job(s) waiting, the most allowed here: wait for one to start, "
                            "or stop one.")
        self._waiting.append(ticket)

    def restore(self, ticket: Ticket) -> None:
        """Back at the end of the queue, whatever the person's count (a job that was waiting before a restart)."""
        self._waiting.append(ticket)

    def remove(self, job_id: str) -> bool:
        before = len(self._waiting)
        self._waiting = [t for t in self._waiting if t.job_id != job_id]
        return len(self._waiting) < before

    def pop_next(self, busy: set[str]) -> Ticket | None:
        """The first waiting ticket whose owner is not in `busy` (owners who may not start another job now)."""
        for ticket in self._waiting:
            if ticket.owner not in busy:
                self._waiting.remove(ticket)
                return ticket
        return None

    def waiting(self) -> list[Ticket]:
        return list(self._waiting)

    def __len__(self) -> int:
        return len(self._waiting)


def start_times(running_left: list[float], waiting_durations: list[float], slots: int) -> list[float]:
    """When each waiting job should start, in seconds from now: the slots free as the running jobs end (their
    remaining seconds), and each waiting job, in order, takes the first free slot for its expected duration."""
    free = sorted(running_left)[:slots] + [0.0] * max(0, slots - len(running_left))
    heapq.heapify(free)
    starts = []
    for duration in waiting_durations:
        start = heapq.heappop(free)
        starts.append(start)
        heapq.heappush(free, start + duration)
    return starts
