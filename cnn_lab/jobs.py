"""Job manager: training runs in background threads owned by the process, not by a browser tab, so a
refresh or a second tab finds the same job. The worker never touches Streamlit; pages poll the job's log."""
from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from cnn_lab import runs
from cnn_lab.augment import AugmentError
from cnn_lab.backbones import WeightsUnavailable
from cnn_lab.data import DatasetError, DatasetUnavailable
from cnn_lab.downloads import DownloadCancelled
from cnn_lab.models import ModelError
from cnn_lab.train import Control, MetricLog, TrainingError, TrainResult, train

EXPECTED_ERRORS = (TrainingError, DatasetUnavailable, DatasetError, ModelError, AugmentError, WeightsUnavailable)


class DeviceBusy(RuntimeError):
    """Another job holds the device; the message says which."""


class JobConfig(Protocol):
    def to_json(self) -> str: ...


# work(log, control, on_epoch) -> TrainResult
Work = Callable[[MetricLog, Control, Callable], TrainResult]


@dataclass
class Job:
    run_id: str
    kind: str
    config: Any
    log: MetricLog = field(default_factory=MetricLog)
    control: Control = field(default_factory=Control)
    status: str = "running"  # running | paused | finished | stopped | failed
    message: str = ""
    result: TrainResult | None = None
    thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def pause(self) -> None:
        if self.status == "running":
            self.control.pause()
            self.status = "paused"

    def resume(self) -> None:
        if self.status == "paused":
            self.control.resume()
            self.status = "running"

    def stop(self) -> None:
        self.control.stop()


class JobManager:
    def __init__(self, max_running: int = 1):
        self.max_running = max_running
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, config: JobConfig, work: Work | None = None, kind: str = "train") -> Job:
        """Start a job in a background thread; raises DeviceBusy when `max_running` jobs already run."""
        self.forget_results()
        with self._lock:
            running = [job for job in self._jobs.values() if job.alive]
            if len(running) >= self.max_running:
                raise DeviceBusy(
                    f"The device is busy with run {running[0].run_id} ({running[0].kind}); "
                    "wait for it to finish or stop it first."
                )
            job = Job(runs.create_run(kind, config.to_json()), kind, config)
            work = work or (lambda log, control, on_epoch: train(config, log=log, control=control, on_epoch=on_epoch))
            job.thread = threading.Thread(target=self._run, args=(job, work), name=f"cnn-lab-{job.run_id}", daemon=True)
            self._jobs[job.run_id] = job
            job.thread.start()
            return job

    def _run(self, job: Job, work: Work) -> None:
        def on_epoch(model, epochs) -> None:
            runs.save_epochs(job.run_id, epochs, model, normalisation=_normalisation(job.log))

        try:
            result = work(job.log, job.control, on_epoch)
            result.model.cpu()
            runs.save_weights(job.run_id, result.model)
            job.status = "stopped" if result.stopped_by_user else "finished"
            job.message = (
                f"Stopped by the user; test accuracy of the model so far: {result.test_acc:.1%}."
                if result.stopped_by_user
                else f"Test accuracy {result.test_acc:.1%} after {len(job.log.epochs)} epochs in {result.seconds:.0f} s"
                + (" (early stopping restored the best epoch's weights)." if result.stopped_early else ".")
            )
            job.result = result
            runs.save_epochs(job.run_id, job.log.snapshot()[1], normalisation=(result.mean.flatten().tolist(),
                                                                           result.std.flatten().tolist()))
            runs.finish_run(job.run_id, job.status, job.message, result.test_acc, seconds=result.seconds,
                            parameters=result.parameters, classes=result.classes, **result.extras)
        except DownloadCancelled as error:
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
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    @staticmethod
    def _end_before_training(job: Job) -> None:
        """A run that never reached its first step (no data, no weights, a cancelled download) leaves no run folder
        to clutter the history; the job keeps its sentence for the page. One that did train is kept as failed."""
        if "total_steps" in job.log.snapshot()[2]:
            runs.finish_run(job.run_id, job.status, job.message)
        else:
            runs.delete_run(job.run_id)

    def latest(self, kind: str | None = None) -> Job | None:
        jobs = [job for job in self._jobs.values() if kind is None or job.kind == kind]
        return jobs[-1] if jobs else None

    def live_ids(self) -> set[str]:
        return {run_id for run_id, job in self._jobs.items() if job.alive}

    def forget_results(self, keep: int = 2) -> None:
        """Drop models and device data of all but the newest `keep` finished jobs, to free memory."""
        finished = [job for job in self._jobs.values() if not job.alive]
        for job in finished[:-keep]:
            job.result = None


def _normalisation(log: MetricLog) -> tuple[list[float], list[float]] | None:
    """The per-channel mean and std the model is trained with, as the trainer published them."""
    progress = log.snapshot()[2]
    return (progress["mean"], progress["std"]) if "mean" in progress else None


# One manager per process: every session, tab and refresh shares it.
MANAGER = JobManager(max_running=int(os.environ.get("CNN_LAB_MAX_JOBS", "1")))
