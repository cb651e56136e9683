"""The Ray executor: the same jobs, run as Ray tasks on any machine of a Ray cluster.

A job becomes one task (`run_job`) that asks Ray for what it needs (a fraction of a GPU for a small run, a whole
one for the speedrun and fine-tuning, else a CPU); Ray decides where and when it runs. Tasks run in Ray's pooled
worker processes, which keep torch and cnn_lab imported from one job to the next (`connect` warms them up), so
a job starts in about a second. While it trains, the task posts its new steps, epochs, progress and the newest
epoch's weights and resumable state to the app's `Mailbox` actor twice a second and reads back pause / resume /
stop; the app collects the posts into the job's own MetricLog (the pages read that, whichever executor runs the
job) and writes the run folder itself, so the workers need no shared file system. A worker that dies ends the job
as failed, with the epochs already received kept; a resumed job's task starts from the checkpoint the app sends.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from dataclasses import replace
from typing import Callable

import ray
import torch

from cnn_lab.metrics import Control, MetricLog, StoppedBeforeTraining
from cnn_lab.train import Checkpoint, Saving, TrainingError, TrainResult

ROOT = Path(__file__).resolve().parents[2]
POST_SECONDS = 0.5  # how often a task posts and the app collects: the curves stream about once a second


class WorkerLost(TrainingError):
    """The worker process (or its machine) died mid-run."""


@ray.remote(num_cpus=0, max_concurrency=64)  # threaded: every job posts and the app collects at the same time
class Mailbox:
    """Between the app and its running tasks: each task posts updates under its run id and gets back the app's
    latest command ("run", "pause" or "stop"); the app collects the updates and sets the commands."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.updates: dict[str, list] = {}
        self.commands: dict[str, str] = {}

    def post(self, run_id: str, update: tuple) -> str:
        with self.lock:
            self.updates.setdefault(run_id, []).append(update)
            return self.commands.get(run_id, "run")

    def collect(self, run_id: str) -> list:
        with self.lock:
            return self.updates.pop(run_id, [])

    def command(self, run_id: str, command: str) -> None:
        with self.lock:
            self.commands[run_id] = command

    def forget(self, run_id: str) -> None:
        with self.lock:
            self.updates.pop(run_id, None)
            self.commands.pop(run_id, None)


class _Poster:
    """In the task: every POST_SECONDS, send what the log gained since the last post (and the newest epoch's
    weights and checkpoint) to the mailbox, and apply the command it answers to the run's Control."""

    def __init__(self, mailbox, run_id: str, log: MetricLog, control: Control):
        self.mailbox, self.run_id, self.log, self.control = mailbox, run_id, log, control
        self.steps_sent, self.epochs_sent, self.weights = 0, 0, None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.done.wait(POST_SECONDS):
            self.post()

    def post(self) -> None:
        with self.lock:
            seen = self.log.snapshot()
            new_steps = [s for s in seen.steps if s[0] > self.steps_sent]
            weights, self.weights = self.weights, None
            update = (new_steps, seen.epochs[self.epochs_sent:], seen.progress, weights)
            self.steps_sent = new_steps[-1][0] if new_steps else self.steps_sent
            self.epochs_sent = len(seen.epochs)
            command = ray.get(self.mailbox.post.remote(self.run_id, update))
        if command == "stop":
            self.control.stop()
        elif command == "pause":
            self.control.pause()
        else:
            self.control.resume()


@ray.remote(max_retries=0)  # a lost worker fails the job (its epochs so far are kept), never runs it twice
def run_job(kind: str, config_json: str, run_id: str, mailbox, threads: int,
            resume_from: Checkpoint | None = None) -> TrainResult:
    from cnn_lab.jobs.kinds import KINDS

    torch.set_num_threads(max(1, threads))
    log, control = MetricLog(), Control()
    log.set_progress(node=f"{os.uname().nodename} ({ray.get_runtime_context().get_node_id()[:8]})",
                     worker_pid=os.getpid())
    poster = _Poster(mailbox, run_id, log, control)

    def on_epoch(model, epochs, checkpoint: Checkpoint) -> None:
        poster.weights = ({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, checkpoint)

    poster.post()  # at once: the app learns where it runs
    poster.thread.start()
    try:
        result = KINDS[kind].run(KINDS[kind].config_from_json(config_json), log, control,
                                 Saving(on_epoch, resume_from))
        result.model.cpu()
        return result
    finally:
        poster.done.set()
        poster.thread.join()
        poster.post()  # the last steps and epochs


@ray.remote(num_cpus=1)
def _warm_up() -> int:
    """Import what a job needs, so that this pooled worker starts its next job at once."""
    importlib.import_module("cnn_lab.jobs.kinds")  # torch, the trainer, the data and model registries
    return os.getpid()


class _Weights:
    """What `on_epoch` saves: anything with a state_dict()."""

    def __init__(self, state: dict):
        self.state = state

    def state_dict(self) -> dict:
        return self.state


_mailbox = None
_mailbox_job = ""  # the Ray job (this process's connection) the mailbox belongs to


def connect(address: str) -> None:
    """Join the cluster at `address` ("auto": one started with `ray start`, or host:port). "local" joins the
    cluster of this machine, starting one (`ray start --head`, in its own processes, so that it also works from
    inside a web server) when none runs; `ray stop` ends it. Workers import cnn_lab from this checkout and read
    the same data and cache folders. Then the app's mailbox starts and the workers are warmed up."""
    global _mailbox, _mailbox_job
    if ray.is_initialized() and _mailbox is not None and _mailbox_job == ray.get_runtime_context().get_job_id():
        return
    if not ray.is_initialized():
        _init(address)
    _mailbox, _mailbox_job = Mailbox.remote(), ray.get_runtime_context().get_job_id()
    ray.get([_warm_up.remote() for _ in range(max(1, int(ray.cluster_resources().get("CPU", 1))))])


def _init(address: str) -> None:
    env = {"PYTHONPATH": str(ROOT)} | {k: v for k, v in os.environ.items() if k.startswith("CNN_LAB_")}
    options = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    if address != "local":
        ray.init(address=address, **options)
        return
    try:
        ray.init(address="auto", **options)
    except ConnectionError:  # no cluster on this machine yet
        subprocess.run([sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start", "--head",
                        "--include-dashboard=false", "--disable-usage-stats"],
                       env=os.environ | env, check=True, capture_output=True, timeout=120)
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


def remote_work(kind: str, config, run_id: str) -> Callable[[MetricLog, Control, Saving], TrainResult]:
    """A job's work, run as a Ray task and mirrored into the app's log, control and run folder."""

    def work(log: MetricLog, control: Control, saving: Saving) -> TrainResult:
        asks = resources(kind, config)
        running = run_job.options(**asks).remote(kind, config.to_json(), run_id, _mailbox, int(asks["num_cpus"]),
                                                 saving.resume_from)
        log.set_progress(stage=f"waiting for a Ray worker ({', '.join(f'{v:g} {k[4:].upper()}' for k, v in asks.items())})")
        command = "run"
        try:
            while True:
                done = ray.wait([running], timeout=POST_SECONDS)[0]
                _collect(_mailbox, run_id, log, saving)
                if done:
                    return ray.get(running)
                if not log.snapshot().progress.node and control.stop_requested.is_set():
                    ray.cancel(running)  # still waiting for resources
                    raise StoppedBeforeTraining("Stopped before a Ray worker took it; nothing was run.")
                wanted = "stop" if control.stop_requested.is_set() else "run" if control.running.is_set() else "pause"
                if wanted != command:
                    command = wanted
                    ray.get(_mailbox.command.remote(run_id, command))
        except ray.exceptions.RayTaskError as error:  # the job's own error (bad data, NaN...): the manager
            raise error.cause from None  # reports it as it does for the thread executor
        except ray.exceptions.RayError:
            raise WorkerLost("The worker running it was lost (its process or machine stopped); the epochs "
                             "received before are kept.") from None
        finally:
            _mailbox.forget.remote(run_id)

    return work


def _collect(mailbox, run_id: str, log: MetricLog, saving: Saving) -> None:
    for steps, epochs, progress, saved in ray.get(mailbox.collect.remote(run_id)):
        log.add_steps(steps)
        for epoch in epochs:
            log.add_epoch(epoch)
        if progress.node and not log.snapshot().progress.node:
            progress = replace(progress, stage=f"running on Ray node {progress.node}")
        log.set_progress(**vars(progress))
        if saved is not None:  # (the model's weights, the run's checkpoint)
            saving.on_epoch(_Weights(saved[0]), log.snapshot().epochs, saved[1])
