"""The Ray executor: the same jobs, run on any machine of a Ray cluster, each in a detached actor that outlives the
app which started it.

A job becomes one actor (`JobActor`) that asks Ray for what it needs (a fraction of a GPU for a small run, a whole
one for the speedrun and fine-tuning, else CPUs); Ray decides where and when it starts. The actor is named after
its run and detached: when the app process dies (a crash, an update, SIGKILL), the job goes on training, and the
app that starts next finds it by name (`still_running`) and follows it again. Ray's Jobs API would also outlive
the app, but it runs a shell command: the app could not talk to it except through files. The actor answers calls.

The app follows a job by calling `collect` about twice a second, with the pause / resume / stop its owner wants.
The actor answers with its updates: new steps, and each new epoch together with that epoch's weights and
resumable state. It keeps every update until the app confirms it (by the number it sends on its next call), so an
app killed between receiving and writing gets them again: the run folder has no gap, and only the app writes it
(the workers need no shared file system). A finished job waits for an app to take its result, then ends.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import ray
import torch

from cnn_lab.metrics import Control, EpochRecord, MetricLog, Progress, StoppedBeforeTraining
from cnn_lab.train import Checkpoint, Saving, TrainingError, TrainResult

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "cnn-lab"  # the actors' names are unique within it: one per run id
POST_SECONDS = 0.5  # how often the app collects: the curves stream about once a second
HOLD_MINUTES = 60  # a finished job whose app does not come back for its result within this ends anyway


class WorkerLost(TrainingError):
    """The worker process (or its machine) died mid-run."""


@dataclass
class Update:
    """What a job sends the app at one collect: numbered, so that the app applies each once."""
    number: int
    steps: list[tuple[int, float, float]]
    progress: Progress
    epochs: list[EpochRecord] = field(default_factory=list)  # new epochs, each saved with the weights below
    saved: tuple[dict, Checkpoint] | None = None  # the newest epoch's weights and resumable state


@dataclass
class Collected:
    updates: list[Update]  # every update the app has not confirmed yet, oldest first
    done: bool  # the job has ended: its outcome waits


@ray.remote(num_cpus=0, max_concurrency=4)  # threaded: the app's calls are answered while the job trains
class JobActor:
    """One job on the cluster. It trains in a thread of its own; `collect` hands its updates to the app."""

    def __init__(self, kind: str, config_json: str, threads: int, resume_from: Checkpoint | None):
        from cnn_lab.jobs.kinds import KINDS

        torch.set_num_threads(max(1, threads))
        self.log, self.control, self.lock = MetricLog(), Control(), threading.Lock()
        self.updates: list[Update] = []
        self.numbered = self.steps_sent = self.epochs_sent = 0
        self.saved: tuple[dict, Checkpoint, list[EpochRecord]] | None = None
        self.outcome: TrainResult | BaseException | None = None
        self.done = threading.Event()
        self.log.set_progress(node=f"{os.uname().nodename} ({ray.get_runtime_context().get_node_id()[:8]})",
                              worker_pid=os.getpid())
        job = KINDS[kind]
        threading.Thread(target=self._train, args=(job, job.config_from_json(config_json), resume_from),
                         daemon=True).start()

    def _train(self, job, config, resume_from: Checkpoint | None) -> None:
        try:
            self.outcome = job.run(config, self.log, self.control, Saving(self._on_epoch, resume_from))
            self.outcome.model.cpu()
        except BaseException as error:  # noqa: BLE001 - the app reports the job's own error (bad data, NaN...)
            self.outcome = error
        self.done.set()
        threading.Timer(HOLD_MINUTES * 60, ray.kill, [ray.get_runtime_context().current_actor]).start()

    def _on_epoch(self, model, epochs: list[EpochRecord], checkpoint: Checkpoint) -> None:
        """An epoch travels with its weights and state: the app never writes an epoch it could not resume after."""
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        with self.lock:
            self.saved = (state, checkpoint, list(epochs))

    def collect(self, confirmed: int, command: str) -> Collected:
        """Apply the app's command ("run", "pause" or "stop"), forget the updates it confirmed, and answer the
        rest with a new one."""
        {"stop": self.control.stop, "pause": self.control.pause, "run": self.control.resume}[command]()
        with self.lock:
            done = self.done.is_set()  # first: what the job did before it ended is in this update
            self.updates = [update for update in self.updates if update.number > confirmed]
            seen = self.log.snapshot()
            steps = [s for s in seen.steps if s[0] > self.steps_sent]
            self.steps_sent = steps[-1][0] if steps else self.steps_sent
            self.numbered += 1
            update = Update(self.numbered, steps, seen.progress)
            if self.saved is not None:
                state, checkpoint, epochs = self.saved
                update.epochs, update.saved, self.saved = epochs[self.epochs_sent:], (state, checkpoint), None
                self.epochs_sent = len(epochs)
            self.updates.append(update)
            return Collected(list(self.updates), done)

    def result(self) -> TrainResult:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _Weights:
    """What `on_epoch` saves: anything with a state_dict()."""

    def __init__(self, state: dict):
        self.state = state

    def state_dict(self) -> dict:
        return self.state


# What a worker needs to run a job as the app would: where data and cache are, and the limits a job checks. Not the
# admin password, the admins' e-mails or anything else of the app's: a runtime_env is readable by every job.
WORKER_SETTINGS = ("CNN_LAB_DATA", "CNN_LAB_CACHE", "CNN_LAB_SHARED", "CNN_LAB_DECODE_BUDGET_GB",
                   "CNN_LAB_DISK_BUDGET_GB", "CNN_LAB_UPLOAD_MAX_IMAGES", "CNN_LAB_UPLOAD_MAX_PIXELS_PER_BYTE",
                   "CNN_LAB_ARCHIVE_MAX_RATIO", "CNN_LAB_ARCHIVE_MAX_FILES", "CNN_LAB_ONNX_MAX_MB")


def worker_env() -> dict[str, str]:
    """The variables a job's actor gets: this checkout on its path, and the app's WORKER_SETTINGS."""
    return {"PYTHONPATH": str(ROOT)} | {k: v for k, v in os.environ.items() if k in WORKER_SETTINGS}


def cluster_env() -> dict[str, str]:
    """The environment of a cluster this app starts: the app's, less its other CNN_LAB_ settings (the workers it
    forks inherit it)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CNN_LAB_")} | worker_env()


def connect(address: str) -> None:
    """Join the cluster at `address` ("auto": one started with `ray start`, or host:port). "local" joins the
    cluster of this machine, starting one (`ray start --head`, in its own processes, so that it also works from
    inside a web server and goes on when the app stops) when none runs; `ray stop` ends it. Workers import cnn_lab
    from this checkout and read the same data and cache folders. (Each job's actor is a process of its own, which
    imports torch as it starts: a few seconds that a warmed-up pool of workers would not save.)"""
    if ray.is_initialized():
        return
    options = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": worker_env()},
                   namespace=NAMESPACE)
    if address != "local":
        ray.init(address=address, **options)
    else:
        try:
            ray.init(address="auto", **options)
        except ConnectionError:  # no cluster on this machine yet
            subprocess.run([sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start", "--head",
                            "--include-dashboard=false", "--disable-usage-stats"],
                           env=cluster_env(), check=True, capture_output=True, timeout=120)
            ray.init(address="auto", **options)


CPUS_PER_JOB = 2  # without GPUs, what a job asks for: as many torch threads as the app's own thread would use


def resources(kind: str, config) -> dict:
    """What a job asks Ray for: GPUs when the cluster has them (a quarter for a small CIFAR run, so four share
    one; a whole one for the speedrun and fine-tuning); else two CPUs (no more than the largest machine has)."""
    if ray.cluster_resources().get("GPU", 0) >= 1:
        heavy = kind == "transfer" or getattr(getattr(config, "model", None), "name", "") == "speedrun"
        return {"num_gpus": 1 if heavy else 0.25, "num_cpus": 1}
    largest = max((node["Resources"].get("CPU", 1) for node in ray.nodes() if node["Alive"]), default=1)
    return {"num_cpus": min(CPUS_PER_JOB, int(largest))}


def _actor_name(run_id: str) -> str:
    return f"job-{run_id}"


def _find(run_id: str):
    try:
        return ray.get_actor(_actor_name(run_id), namespace=NAMESPACE)
    except ValueError:  # no actor of that name: the job ended, or the cluster was restarted
        return None


def still_running(run_id: str) -> bool:
    """Whether the cluster still has this run's job (an app that starts again follows it instead of resuming)."""
    return _find(run_id) is not None


def remote_work(kind: str, config, run_id: str) -> Callable[[MetricLog, Control, Saving], TrainResult]:
    """A job's work: its actor on the cluster (started now, or found still running after a restart of the app),
    followed into the app's log, control and run folder."""

    def work(log: MetricLog, control: Control, saving: Saving) -> TrainResult:
        actor = _find(run_id)
        if actor is None:
            asks = resources(kind, config)
            actor = JobActor.options(name=_actor_name(run_id), namespace=NAMESPACE, lifetime="detached",
                                     **asks).remote(kind, config.to_json(), int(asks["num_cpus"]), saving.resume_from)
            log.set_progress(stage="waiting for a Ray worker "
                                   f"({', '.join(f'{v:g} {k[4:].upper()}' for k, v in asks.items())})")
        try:
            return _follow(actor, log, control, saving)
        except ray.exceptions.RayTaskError as error:  # the job's own error (bad data, NaN...): the manager
            raise error.cause from None  # reports it as it does for the thread executor
        except ray.exceptions.RayError:
            raise WorkerLost("The worker running it was lost (its process or machine stopped); the epochs "
                             "received before are kept.") from None

    return work


def _follow(actor, log: MetricLog, control: Control, saving: Saving) -> TrainResult:
    """Collect the actor's updates until its job ends, passing on what the owner wants; then take its result and
    end the actor."""
    confirmed, started = 0, False
    while True:
        wanted = "stop" if control.stop_requested.is_set() else "run" if control.running.is_set() else "pause"
        asked = actor.collect.remote(confirmed, wanted)
        while not ray.wait([asked], timeout=POST_SECONDS)[0]:  # not started yet (waiting for resources), or busy
            if not started and control.stop_requested.is_set():
                ray.kill(actor)
                raise StoppedBeforeTraining("Stopped before a Ray worker took it; nothing was run.")
        collected = ray.get(asked)
        for update in collected.updates:
            if update.number > confirmed:
                _apply(update, log, saving, started)
                confirmed, started = update.number, True
        if collected.done:
            try:
                return ray.get(actor.result.remote())
            finally:
                ray.kill(actor)
        time.sleep(POST_SECONDS)


def _apply(update: Update, log: MetricLog, saving: Saving, started: bool) -> None:
    """One update into the app's log and run folder. After a restart of the app, the first updates may hold what
    the last app had already written: what the log already has is skipped."""
    seen = log.snapshot()
    last_step = seen.steps[-1][0] if seen.steps else 0
    log.add_steps([s for s in update.steps if s[0] > last_step])
    new_epochs = [e for e in update.epochs if e.epoch > (seen.epochs[-1].epoch if seen.epochs else 0)]
    for epoch in new_epochs:
        log.add_epoch(epoch)
    progress = update.progress
    if not started:
        progress = replace(progress, stage=f"running on Ray node {progress.node}")
    log.set_progress(**vars(progress))
    if update.saved is not None and new_epochs:
        saving.on_epoch(_Weights(update.saved[0]), log.snapshot().epochs, update.saved[1])
