"""The Ray executor: the same jobs, run in Ray actors on any machine of a Ray cluster.

A job becomes one actor (`Worker`) that asks Ray for what it needs (a fraction of a GPU for a small run, a
whole one for the speedrun and fine-tuning, else a CPU); Ray decides where and when it runs. The actor is
threaded, so `poll()` answers while `run()` trains: the app polls about twice a second, copies the new steps,
epochs and progress into the job's own MetricLog (the pages read that, whichever executor runs the job),
saves each new epoch's weights into the run folder, and passes pause / resume / stop on. The app writes the
run folders, so the workers need no shared file system. A worker that dies ends the job as failed, with the
epochs already received kept.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import ray
import torch

from cnn_lab.metrics import Control, MetricLog, StoppedBeforeTraining
from cnn_lab.train import TrainingError, TrainResult

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.5


class WorkerLost(TrainingError):
    """The actor (or its machine) died mid-run."""


@ray.remote(max_concurrency=2)  # a threaded actor: poll() runs while run() trains
class Worker:
    def __init__(self, threads: int):
        torch.set_num_threads(max(1, threads))
        self.log, self.control = MetricLog(), Control()
        self.weights: dict | None = None  # the newest epoch's state_dict, until the app has taken it
        self.epochs_seen = 0

    def where(self) -> tuple[str, int]:
        """The node this actor runs on and its process id (answers once Ray has placed it)."""
        return f"{os.uname().nodename} ({ray.get_runtime_context().get_node_id()[:8]})", os.getpid()

    def run(self, kind: str, config_json: str) -> TrainResult:
        from cnn_lab.jobs.kinds import KINDS

        def on_epoch(model, epochs) -> None:
            self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

        result = KINDS[kind].run(KINDS[kind].config_from_json(config_json), self.log, self.control, on_epoch)
        result.model.cpu()
        return result

    def poll(self, steps_after: int, epochs_after: int) -> tuple[list, list, dict, dict | None]:
        """Steps after step `steps_after`, epochs after the first `epochs_after`, the progress, and the newest
        epoch's weights if an epoch ended since the last poll."""
        steps, epochs, progress = self.log.snapshot()
        weights, self.weights = self.weights, None
        return [s for s in steps if s[0] > steps_after], epochs[epochs_after:], progress, weights

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def stop(self) -> None:
        self.control.stop()


class _Weights:
    """What `on_epoch` saves: anything with a state_dict()."""

    def __init__(self, state: dict):
        self.state = state

    def state_dict(self) -> dict:
        return self.state


def connect(address: str) -> None:
    """Join the cluster at `address` ("auto": one started with `ray start`, or host:port). "local" joins the
    cluster of this machine, starting one (`ray start --head`, in its own processes, so that it also works from
    inside a web server) when none runs; `ray stop` ends it. Workers import cnn_lab from this checkout and read
    the same data and cache folders."""
    if ray.is_initialized():
        return
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


def resources(kind: str, config) -> dict:
    """What a job asks Ray for: GPUs when the cluster has them (a quarter for a small CIFAR run, so four share
    one; a whole one for the speedrun and fine-tuning), else one CPU."""
    if ray.cluster_resources().get("GPU", 0) >= 1:
        heavy = kind == "transfer" or getattr(getattr(config, "model", None), "name", "") == "speedrun"
        return {"num_gpus": 1 if heavy else 0.25, "num_cpus": 1}
    return {"num_cpus": 1}


def remote_work(kind: str, config) -> Callable[[MetricLog, Control, Callable], TrainResult]:
    """A job's work, run in a Ray actor and mirrored into the app's log, control and run folder."""

    def work(log: MetricLog, control: Control, on_epoch: Callable) -> TrainResult:
        asks = resources(kind, config)
        worker = Worker.options(**asks).remote(int(asks["num_cpus"]))
        log.set_progress(stage=f"waiting for a Ray worker ({', '.join(f'{v:g} {k[4:].upper()}' for k, v in asks.items())})")
        placed = worker.where.remote()
        while not ray.wait([placed], timeout=POLL_SECONDS)[0]:  # Ray queues it until its resources are free
            if control.stop_requested.is_set():
                ray.kill(worker, no_restart=True)
                raise StoppedBeforeTraining("Stopped before a Ray worker took it; nothing was run.")
        node, pid = ray.get(placed)
        log.set_progress(stage=f"running on Ray node {node}", node=node, worker_pid=pid)
        running = worker.run.remote(kind, config.to_json())
        paused = False
        try:
            while True:
                done = ray.wait([running], timeout=POLL_SECONDS)[0]
                _mirror(worker, log, on_epoch)
                if done:
                    return ray.get(running)
                if control.stop_requested.is_set():
                    worker.stop.remote()
                elif paused != (not control.running.is_set()):
                    paused = not paused
                    (worker.pause if paused else worker.resume).remote()
        except ray.exceptions.RayActorError:
            raise WorkerLost("The worker running it was lost (its process or machine stopped); the epochs "
                             "received before are kept.") from None
        finally:
            ray.kill(worker, no_restart=True)

    return work


def _mirror(worker, log: MetricLog, on_epoch: Callable) -> None:
    steps, epochs, progress, weights = ray.get(worker.poll.remote(_last_step(log), len(log.epochs)))
    log.add_steps(steps)
    for epoch in epochs:
        log.add_epoch(epoch)
    log.set_progress(**progress)
    if weights is not None:
        on_epoch(_Weights(weights), log.snapshot()[1])


def _last_step(log: MetricLog) -> int:
    steps = log.snapshot()[0]
    return steps[-1][0] if steps else 0
