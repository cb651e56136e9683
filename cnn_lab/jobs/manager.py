"""The job manager: jobs belong to a person, wait in a fair queue, and run in background threads owned by the
process, not by a browser tab. The worker never touches Streamlit; pages poll the job's log.

A job's life: queued -> running (<-> paused) -> finished | stopped | failed. Only its owner or an admin may pause,
resume or stop it. A supervisor thread enforces the time limit and gives the device back from a job paused too
long; a job that ends frees its slot and the next one in the queue starts.
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from filelock import FileLock, Timeout

from cnn_lab import runs
from cnn_lab.augment import AugmentError
from cnn_lab.backbones import WeightsUnavailable
from cnn_lab.data import DatasetError, DatasetUnavailable
from cnn_lab.identity import LOCAL, Person
from cnn_lab.jobs.kinds import KINDS
from cnn_lab.jobs.local import ThreadExecutor
from cnn_lab.jobs.queue import FairQueue, QueueFull, Ticket, start_times
from cnn_lab.limits import LimitError, check_person_disk
from cnn_lab.metrics import Control, MetricLog, StoppedBeforeTraining
from cnn_lab.models import ModelError
from cnn_lab.settings import Settings, load_settings
from cnn_lab.tensorboard_events import RunEvents, read_steps
from cnn_lab.train import Checkpoint, Saving, TrainingError, TrainResult

QUEUE_FILE = "queue.json"  # in the runs folder: the app's running and waiting jobs, for its next start
QUEUE_LOCK = ".queue.lock"  # held by the one app process that keeps that queue
MAX_RESTARTS = 2  # a job interrupted by more restarts of the app than this fails instead of resuming again
EXPECTED_ERRORS = (TrainingError, DatasetUnavailable, DatasetError, ModelError, AugmentError, WeightsUnavailable)


def _check_disk_share(person: Person) -> None:
    try:
        check_person_disk(person.name)
    except LimitError as error:
        raise QueueFull(str(error)) from None


class NotAllowed(PermissionError):
    """Someone who is neither the job's owner nor an admin tried to control it; the message is one sentence."""


class JobConfig(Protocol):
    def to_json(self) -> str: ...


# work(log, control, saving) -> TrainResult
Work = Callable[[MetricLog, Control, Saving], TrainResult]


@dataclass
class Job:
    run_id: str
    kind: str
    config: Any
    owner: str = LOCAL.name
    work: Work | None = None
    log: MetricLog = field(default_factory=MetricLog)
    control: Control = field(default_factory=Control)
    status: str = "queued"  # queued | running | paused | finished | stopped | failed
    message: str = ""
    result: TrainResult | None = None
    thread: threading.Thread | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    paused_since: float | None = None
    stop_reason: str = ""  # why the manager stopped it (time limit, paused too long), for its message
    resuming: bool = False  # it goes on from its run folder's checkpoint (a resumed run: same id, same folder)
    restarts: int = 0  # how many restarts of the app it was resumed after
    note: str = ""  # what its owner's page says of it besides its progress ("resumed after a restart")
    stop_after: int | None = None  # stop once it has this many epochs in all (the CLI's --stop-after)
    # Whoever holds this may watch the job's progress from the browser (jobs.live): only its owner's pages get it.
    watch_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def alive(self) -> bool:
        """Waiting or running: not ended yet."""
        return self.status == "queued" or (self.thread is not None and self.thread.is_alive())


class JobManager:
    def __init__(self, settings: Settings | None = None, max_running: int | None = None):
        self.settings = settings or load_settings()
        # On a Ray cluster, Ray decides where and when each job runs (by the resources it asks for).
        self.max_running = max_running or (10_000 if self.settings.ray_address else self.settings.max_running)
        self._jobs: dict[str, Job] = {}
        self._queue = FairQueue(self.settings.queued_per_person if self.settings.shared else 10_000)
        self._lock = threading.RLock()
        self._executor = ThreadExecutor()
        self._supervisor: threading.Thread | None = None
        self._seconds_per_epoch: dict[tuple, float] = {}  # (kind, dataset, model) -> seconds, from finished jobs
        self._queue_file = None  # where the queue is kept across restarts: the app's manager only
        self._queue_lock: FileLock | None = None

    # ------------------------------------------------------------ submitting

    def submit(self, config: JobConfig, work: Work | None = None, kind: str = "train", owner: Person = LOCAL) -> Job:
        """Queue a job for `owner`; it starts at once when a slot is free. Raises QueueFull past the per-person cap,
        or when the person's runs and uploads already fill their share of the disk (shared mode)."""
        _check_disk_share(owner)
        self.forget_results()
        with self._lock:
            job = self._queued(Job(runs.new_run_id(), kind, config, owner.name, work=work))
        self._ensure_supervisor()
        return job

    def resume_run(self, run_id: str, person: Person = LOCAL) -> Job:
        """Queue a saved run to go on from its last epoch: the same run (its id, folder, owner and curves), not a
        copy. Only its owner or an admin may; a run that cannot be resumed gets one sentence (TrainingError)."""
        record = runs.load_run(run_id, self.live_ids())
        if not (person.admin or record.owner == person.name):
            raise NotAllowed(f"Only {record.owner} or an admin can resume this run.")
        if not record.resumable:
            raise TrainingError(f"Run {run_id} cannot be resumed: only a run that was interrupted or stopped "
                                "before its last epoch, and kept its state, can.")
        config = KINDS[record.kind].config_from_json(json.dumps(record.config))
        _check_disk_share(Person(record.owner))
        with self._lock:
            job = self._queued(Job(run_id, record.kind, config, record.owner, resuming=True))
            job.log.epochs.extend(record.epochs)  # its curves go on from there
        self._ensure_supervisor()
        return job

    def _queued(self, job: Job, restoring: bool = False) -> Job:
        """Put a job in the queue (the caller holds the lock); it starts at once when a slot is free. `restoring`:
        a job that waited before a restart goes back whatever its owner's count."""
        job.work = job.work or self._work(job.kind, job.config, job.run_id)
        (self._queue.restore if restoring else self._queue.push)(Ticket(job.run_id, job.owner))
        self._jobs[job.run_id] = job
        self._dispatch()
        return job

    def start(self, config: JobConfig, work: Work | None = None, kind: str = "train") -> Job:
        """Submit a job as the local user (local mode, the CLI and tests)."""
        return self.submit(config, work, kind)

    def _work(self, kind: str, config: JobConfig, run_id: str) -> Work:
        """What runs a job of this kind: in a thread here, or in a Ray actor when the settings name a cluster."""
        if self.settings.ray_address:
            from cnn_lab.jobs import ray_executor  # Ray is imported only by those who ask for it

            ray_executor.connect(self.settings.ray_address)
            return ray_executor.remote_work(kind, config, run_id)
        return lambda log, control, saving: KINDS[kind].run(config, log, control, saving)

    def _dispatch(self) -> None:
        """Start waiting jobs while slots are free, and keep the queue on disk (the caller holds the lock)."""
        while True:
            running = [job for job in self._jobs.values() if job.status in ("running", "paused")]
            if len(running) >= self.max_running:
                break
            busy = {job.owner for job in running} if self.settings.shared else set()
            ticket = self._queue.pop_next(busy)
            if ticket is None:
                break
            job = self._jobs[ticket.job_id]
            try:
                if job.resuming or runs.exists(job.run_id):  # resumed, or started before a restart: its own folder
                    runs.reopen_run(job.run_id, job.note)
                else:
                    runs.create_run(job.run_id, job.kind, job.config.to_json(), owner=job.owner)
            except OSError as error:  # a full disk: the job ends with its sentence, never "queued" for good
                job.status = "failed"
                job.message = (f"This job could not start: the server could not write its run folder "
                               f"({error.strerror or type(error).__name__}); ask the teacher to free some disk.")
                continue
            # The thread first waits for this lock (see _run), so a job is never seen "running" without its thread.
            job.thread = self._executor.launch(f"cnn-lab-{job.run_id}", lambda job=job: self._run(job))
            job.status, job.started = "running", time.time()
        self._save_queue()

    # ------------------------------------------------------------ running

    def _run(self, job: Job) -> None:
        folder = runs.runs_root() / job.run_id
        events = RunEvents(folder, epochs_written=len(job.log.epochs))

        def on_epoch(model, epochs, checkpoint: Checkpoint) -> None:
            checkpoint.save(folder)  # first: the weights below are never ahead of what a resumed run starts from
            runs.save_epochs(job.run_id, epochs, model, normalisation=_normalisation(job.log))
            events.update(job.log)
            if job.stop_after and len(epochs) >= job.stop_after:
                job.stop_reason = f"Stopped after epoch {len(epochs)}, as asked"
                job.control.stop()

        with self._lock:  # _dispatch holds it until it has marked this job running
            pass
        try:
            start = Checkpoint.load(folder) if job.resuming else None
            if start is not None:  # its epochs are its checkpoint's: the folder's list may be one behind or ahead
                job.log.set_epochs(start.records())
                job.log.add_steps(read_steps(folder, until=start.step))  # and its step curve goes on from there
                events.epochs_written, events.last_step = start.epoch, start.step
            result = job.work(job.log, job.control, Saving(on_epoch, start))
            result.model.cpu()
            runs.save_weights(job.run_id, result.model)
            self._remember_speed(job, result.seconds)
            job.status = "stopped" if result.stopped_by_user else "finished"
            job.message = (
                f"{job.stop_reason or 'Stopped by the user'}; test accuracy of the model so far: {result.test_acc:.1%}."
                if result.stopped_by_user
                else f"Test accuracy {result.test_acc:.1%} after {len(job.log.epochs)} epochs in {result.seconds:.0f} s"
                + (" (early stopping restored the best epoch's weights)." if result.stopped_early else ".")
            )
            job.result = result
            runs.save_epochs(job.run_id, job.log.snapshot().epochs, normalisation=(result.mean.flatten().tolist(),
                                                                               result.std.flatten().tolist()))
            runs.finish_run(job.run_id, job.status, job.message, result.test_acc, seconds=result.seconds,
                            parameters=result.parameters, classes=result.classes,
                            input_shape=list(result.test_images.shape[1:]), **result.extras)
            events.update(job.log)
            events.finish(json.loads(job.config.to_json()), result.test_acc)
        except StoppedBeforeTraining as error:
            job.status, job.message = "stopped", str(error)
            self._end_before_training(job)
        except EXPECTED_ERRORS as error:
            job.status, job.message = "failed", str(error)
            self._end_before_training(job)
        except Exception as error:  # noqa: BLE001 - the worker must report, never die silently
            job.status = "failed"
            job.message = f"The run failed unexpectedly: {type(error).__name__}: {error}"
            runs.finish_run(job.run_id, "failed", job.message, traceback=traceback.format_exc())
        finally:
            events.finish({}, None)  # closes the file if the run ended another way (a second finish does nothing)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            with self._lock:
                self._dispatch()  # the slot is free: the next job in the queue starts

    @staticmethod
    def _end_before_training(job: Job) -> None:
        """A run that never reached its first step (no data, no weights, a cancelled download) leaves no run folder
        to clutter the history; the job keeps its sentence for the page. One that did train is kept as failed,
        and so is a resumed one (its earlier epochs are its own)."""
        if job.log.snapshot().progress.training or job.resuming or job.log.epochs:
            runs.finish_run(job.run_id, job.status, job.message)
        else:
            runs.delete_run(job.run_id)

    # ------------------------------------------------------------ surviving a restart of the app

    def keep_across_restarts(self) -> None:
        """The app's manager, once, at its start: the jobs a killed or restarted app left running or waiting are
        queued again in their order (running first, each resuming from its last epoch), and from now on the queue
        is written to disk whenever it changes. The command line's managers keep none."""
        with self._lock:
            if self._queue_file is not None:
                return
            # One app process per runs folder keeps its queue: a second one started on the same folder (by mistake,
            # or by the tests) must not resume jobs that the first is running. The OS frees the lock of a killed one.
            self._queue_lock = FileLock(runs.runs_root() / QUEUE_LOCK)
            try:
                self._queue_lock.acquire(timeout=0)
            except Timeout:
                logging.getLogger("cnn_lab").warning("Another app process keeps the job queue of %s; this one's jobs "
                                                     "will not be resumed after a restart.", runs.runs_root())
                return
            self._queue_file = runs.runs_root() / QUEUE_FILE
            try:
                left = json.loads(self._queue_file.read_text())
            except (OSError, ValueError):
                left = []  # none yet, or unreadable: nothing to requeue
            for entry in sorted(left, key=lambda e: e.get("status") == "queued"):  # running first, in order
                self._requeue(entry)
            self._save_queue()
        self._ensure_supervisor()

    def hand_over_queue(self) -> None:
        """Stop keeping the queue, leaving its file as it is, so that another process may take it over (what the
        OS does when this process dies)."""
        with self._lock:
            if self._queue_lock is not None:
                self._queue_lock.release()
            self._queue_file = self._queue_lock = None

    def _requeue(self, entry: dict) -> None:
        """One job of the last app process, queued again (the caller holds the lock)."""
        try:
            run_id, kind, owner = entry["run_id"], entry["kind"], entry["owner"]
            config = KINDS[kind].config_from_json(entry["config"])
        except (KeyError, TypeError, ValueError):
            return  # an entry this version cannot read: its run folder, if any, shows it as interrupted
        job = Job(run_id, kind, config, owner, restarts=entry.get("restarts", 0))
        if entry.get("status") != "queued" and runs.exists(run_id):  # it ran when the app stopped
            record = runs.load_run(run_id)
            if record.status != "interrupted":
                return  # it ended just before the app stopped, before the queue was written again
            job.resuming = (record.path / runs.CHECKPOINT_FILE).exists()
            if self._still_on_cluster(run_id):  # a Ray job went on without the app: follow it again
                job.note = "Still running on the Ray cluster: it went on training while the app restarted."
            else:
                job.restarts += 1
                if job.restarts > MAX_RESTARTS:
                    runs.finish_run(run_id, "failed", f"The app stopped {job.restarts} times while this run ran, so "
                                    "it was not resumed again; resume it yourself from its row if you wish.")
                    return
                job.note = (f"Resumed after a restart of the app, from epoch {len(record.epochs)}." if job.resuming
                            else "Started again after a restart of the app (it had not finished an epoch).")
            job.log.epochs.extend(record.epochs if job.resuming else [])
        self._queued(job, restoring=True)

    def _still_on_cluster(self, run_id: str) -> bool:
        if not self.settings.ray_address:
            return False
        from cnn_lab.jobs import ray_executor

        try:
            ray_executor.connect(self.settings.ray_address)
        except ConnectionError:  # the cluster is gone: its jobs with it
            return False
        return ray_executor.still_running(run_id)

    def _save_queue(self) -> None:
        """The running and waiting jobs, with their owners and configs, running first (the caller holds the lock)."""
        if self._queue_file is None:
            return
        running = [job for job in self._jobs.values() if job.status in ("running", "paused")]
        entries = [{"run_id": job.run_id, "kind": job.kind, "owner": job.owner, "config": job.config.to_json(),
                    "status": "queued" if job.status == "queued" else "running", "restarts": job.restarts}
                   for job in running + self.waiting()]
        runs.write_json(self._queue_file, entries)

    # ------------------------------------------------------------ control: the owner or an admin

    def can_control(self, job: Job, person: Person) -> bool:
        return person.admin or job.owner == person.name

    def _check(self, job: Job, person: Person, verb: str) -> None:
        if not self.can_control(job, person):
            raise NotAllowed(f"Only {job.owner} or an admin can {verb} this job.")

    def pause(self, job: Job, person: Person = LOCAL) -> None:
        self._check(job, person, "pause")
        if job.status == "running":
            job.control.pause()
            job.status, job.paused_since = "paused", time.time()

    def resume(self, job: Job, person: Person = LOCAL) -> None:
        self._check(job, person, "resume")
        if job.status == "paused":
            job.control.resume()
            job.status, job.paused_since = "running", None

    def stop(self, job: Job, person: Person = LOCAL, reason: str = "") -> None:
        """Stop a running job (it keeps the model so far) or take a waiting one out of the queue."""
        self._check(job, person, "stop")
        with self._lock:
            if job.status == "queued" and self._queue.remove(job.run_id):
                job.status = "stopped"
                job.message = "Taken out of the queue before it started."
                self._save_queue()
                return
        job.stop_reason = reason or (f"Stopped by {person.name}" if person.name != job.owner else "")
        job.control.stop()
        if job.status == "paused":
            job.status = "running"

    # ------------------------------------------------------------ the supervisor: time limit, pause timeout

    def _ensure_supervisor(self) -> None:
        with self._lock:
            if self._supervisor is None or not self._supervisor.is_alive():
                self._supervisor = threading.Thread(target=self._supervise, name="cnn-lab-supervisor", daemon=True)
                self._supervisor.start()

    def _supervise(self) -> None:
        while any(job.alive for job in list(self._jobs.values())):
            self.enforce_limits()
            time.sleep(0.5)

    def enforce_limits(self, now: float | None = None) -> None:
        now = now or time.time()
        limit = self.settings.time_limit_minutes * 60
        pause_limit = self.settings.pause_timeout_minutes * 60
        for job in list(self._jobs.values()):
            if job.status == "paused" and pause_limit and now - job.paused_since > pause_limit:
                self.stop(job, LOCAL, f"Paused for over {self.settings.pause_timeout_minutes:g} minutes, so it gave "
                                      "the device back")
            elif job.status == "running" and limit and job.started and now - job.started > limit:
                if not job.control.stop_requested.is_set():
                    self.stop(job, LOCAL, f"Stopped at the time limit of {self.settings.time_limit_minutes:g} minutes")

    # ------------------------------------------------------------ what the pages read

    def jobs(self, kind: str | None = None) -> list[Job]:
        """Every job of this process, in the order they were submitted."""
        return [job for job in self._jobs.values() if kind is None or job.kind == kind]

    def get(self, run_id: str) -> Job | None:
        return self._jobs.get(run_id)

    def watched(self, token: str) -> Job | None:
        """The job whose watch token this is (None for an unknown or forgotten one)."""
        asked = token.encode()  # as bytes: compare_digest refuses a str with non-ASCII characters
        matches = (job for job in list(self._jobs.values()) if secrets.compare_digest(job.watch_token.encode(), asked))
        return next(matches, None)

    def latest(self, kind: str | None = None, owner: Person | None = None) -> Job | None:
        """The newest job (of `owner`, when given: in shared mode a page shows your jobs)."""
        jobs = [job for job in self.jobs(kind) if owner is None or job.owner == owner.name]
        return jobs[-1] if jobs else None

    def waiting(self) -> list[Job]:
        """The queue, in the order it will be served."""
        return [self._jobs[t.job_id] for t in self._queue.waiting()]

    def position(self, job: Job) -> int | None:
        waiting = self.waiting()
        return waiting.index(job) + 1 if job in waiting else None

    def estimated_wait(self, job: Job) -> float | None:
        """Seconds until a waiting job should start (None when a job ahead has no estimate yet)."""
        waiting = self.waiting()
        if job not in waiting:
            return None
        running = [j for j in self._jobs.values() if j.status in ("running", "paused")]
        left = [j.log.snapshot().progress.eta or self.expected_seconds(j) for j in running]
        durations = [self.expected_seconds(j) for j in waiting[: waiting.index(job) + 1]]
        if any(value is None for value in left + durations[:-1]):
            return None
        return start_times(left, durations[:-1] + [0.0], self.max_running)[-1]

    def expected_seconds(self, job: Job) -> float | None:
        """How long a job should take: its epochs times the seconds per epoch of the last like job here."""
        per_epoch = self._seconds_per_epoch.get(_signature(job))
        return per_epoch * getattr(job.config, "epochs", 1) if per_epoch else None

    def _remember_speed(self, job: Job, seconds: float) -> None:
        epochs = max(1, len(job.log.epochs))
        self._seconds_per_epoch[_signature(job)] = seconds / epochs

    def live_ids(self) -> set[str]:
        return {run_id for run_id, job in self._jobs.items() if job.alive}

    def delete_run(self, run_id: str, person: Person = LOCAL) -> None:
        """Delete a saved run's folder: its owner's or an admin's to do, and not while a job of it waits or runs."""
        record = runs.load_run(run_id, self.live_ids())
        if not (person.admin or record.owner == person.name):
            raise NotAllowed(f"Only {record.owner} or an admin can delete this run.")
        job = self._jobs.get(run_id)
        if job is not None and job.alive:
            raise TrainingError("This run is still waiting or training: stop it first, then delete it.")
        runs.delete_run(run_id)

    def runs_of(self, person: Person | None, kind: str | tuple[str, ...] | None = None,
                usable: bool = False) -> list[runs.RunRecord]:
        """The saved runs a person sees, newest first: every run in local mode; in shared mode their own, and none
        before they sign in (`person` None). With `usable`, only runs to classify with, look inside or export."""
        if person is None:
            return []
        owner = person.name if self.settings.shared else None
        records = runs.list_runs(live=self.live_ids(), kind=kind, owner=owner)
        return [r for r in records if r.usable] if usable else records

    def forget_results(self, keep: int = 2) -> None:
        """Drop models and device data of all but the newest `keep` finished jobs, to free memory."""
        finished = [job for job in self._jobs.values() if not job.alive]
        for job in finished[:-keep]:
            job.result = None


def _signature(job: Job) -> tuple:
    config = job.config
    model = getattr(getattr(config, "model", None), "name", getattr(config, "backbone", ""))
    return job.kind, getattr(config, "dataset", getattr(config, "data", "")), model, getattr(config, "mode", "")


def _normalisation(log: MetricLog) -> tuple[list[float], list[float]] | None:
    """The per-channel mean and std the model is trained with, as the trainer published them."""
    progress = log.snapshot().progress
    return (progress.mean, progress.std) if progress.mean is not None else None


# One manager per process: every session, tab and refresh shares it.
MANAGER = JobManager()
