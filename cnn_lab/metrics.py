"""The channel between a training worker and the pages: per-step and per-epoch metrics, progress, and the
pause / resume / stop control. Thread-safe, and bounded: a run of any length keeps at most `max_steps` step
points (older ones thinned to every other), so memory stays flat however long a job runs."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace


class StoppedBeforeTraining(RuntimeError):
    """A job stopped before its first step (a cancelled download, a Ray job stopped while it waited)."""


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    seconds: float
    images_per_s: float


@dataclass(frozen=True)
class Progress:
    """Where a job stands, as the worker last published it. Before training starts only `stage` (and
    `stage_fraction`) say anything: loading, downloading, extracting features, waiting for a Ray worker."""

    stage: str = ""  # what the job does before (or instead of) training steps, in a few words
    stage_fraction: float = 0.0  # how far along that stage is, 0 to 1
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0  # set when training starts
    parameters: int = 0
    device: str = ""
    mean: list[float] | None = None  # the per-channel normalisation the model is trained with
    std: list[float] | None = None
    elapsed: float = 0.0
    images_per_s: float = 0.0
    eta: float | None = None  # seconds left, at the recent pace
    layer_norms: dict | None = None  # NormTrace.as_dict()
    node: str = ""  # the Ray node that runs the job ("" for this machine)
    worker_pid: int | None = None  # the Ray worker's process

    @property
    def training(self) -> bool:
        """Whether training has started: the trainer sets the step count before its first step."""
        return self.total_steps > 0


@dataclass(frozen=True)
class Snapshot:
    """A copy of a log at one moment, safe to read while the worker goes on."""

    steps: list[tuple[int, float, float]] = field(default_factory=list)  # (step, train loss, lr)
    epochs: list[EpochRecord] = field(default_factory=list)
    progress: Progress = Progress()


class MetricLog:
    """The worker appends, readers copy. Step points are kept at a stride that doubles whenever the buffer
    fills (every point, then every 2nd, 4th, ...), so the whole curve stays drawn at a bounded cost."""

    def __init__(self, max_steps: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.max_steps = max_steps
        self.stride = 1
        self.steps: list[tuple[int, float, float]] = []  # (step, train loss, lr)
        self.epochs: list[EpochRecord] = []
        self.progress = Progress()

    def add_steps(self, rows: list[tuple[int, float, float]]) -> None:
        with self._lock:
            self.steps.extend(row for row in rows if row[0] % self.stride == 0)
            while len(self.steps) > self.max_steps:
                self.stride *= 2
                self.steps = [row for row in self.steps if row[0] % self.stride == 0]

    def add_epoch(self, record: EpochRecord) -> None:
        with self._lock:
            self.epochs.append(record)

    def set_epochs(self, records: list[EpochRecord]) -> None:
        """The epochs a resumed run had done (its checkpoint's): its curves go on from them."""
        with self._lock:
            self.epochs = list(records)

    def set_progress(self, **values) -> None:
        """Change some of the progress's fields (a name that is not a field of Progress is a TypeError)."""
        with self._lock:
            self.progress = replace(self.progress, **values)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(list(self.steps), list(self.epochs), self.progress)


class NormTrace:
    """Each weight layer's weight norm and gradient norm over the steps (sampled when the trainer publishes,
    about twice a second; thinned to every other sample past `max_samples`): vanishing and exploding gradients,
    layer by layer, in the numbers."""

    def __init__(self, layers: list[str], max_samples: int = 300) -> None:
        self.layers, self.max_samples = layers, max_samples
        self.steps: list[int] = []
        self.weight: list[list[float]] = []  # one row per sample, one value per layer
        self.grad: list[list[float]] = []

    def add(self, step: int, weight: list[float], grad: list[float]) -> None:
        self.steps.append(step)
        self.weight.append(weight)
        self.grad.append(grad)
        if len(self.steps) > self.max_samples:
            self.steps, self.weight, self.grad = self.steps[::2], self.weight[::2], self.grad[::2]

    def as_dict(self) -> dict:
        return {"layers": self.layers, "steps": list(self.steps), "weight": list(self.weight), "grad": list(self.grad)}


class Pace:
    """Steps per second over the recent past (smoothed), so that an ETA is not skewed for long by a slow first
    step, a pause or an evaluation pass."""

    def __init__(self, smoothing: float = 0.7) -> None:
        self.smoothing = smoothing
        self.rate: float | None = None
        self.last: tuple[int, float] | None = None

    def update(self, step: int, now: float) -> None:
        if self.last is not None and step > self.last[0] and now > self.last[1]:
            recent = (step - self.last[0]) / (now - self.last[1])
            self.rate = recent if self.rate is None else self.smoothing * self.rate + (1 - self.smoothing) * recent
        self.last = (step, now)

    def restart(self, step: int, now: float) -> None:
        """The steps stopped for a while (an evaluation pass, a pause): the next rate counts from here, so that it
        stays the rate of the steps themselves."""
        self.last = (step, now)

    def images_per_s(self, batch_size: int, step: int, elapsed: float) -> float:
        """Training images per second at the recent pace (the average pace until there is a recent one)."""
        return (self.rate or step / max(elapsed, 1e-9)) * batch_size

    def eta(self, step: int, total: int, elapsed: float) -> float:
        """Seconds left: at the recent pace, or at the average pace until there is a recent one."""
        rate = self.rate or step / max(elapsed, 1e-9)
        return (total - step) / max(rate, 1e-9)


class Control:
    """Pause, resume and stop, checked by the worker once per step."""

    def __init__(self) -> None:
        self.stop_requested = threading.Event()
        self.running = threading.Event()
        self.running.set()

    def pause(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.stop_requested.set()
        self.running.set()

    def wait_if_paused(self) -> None:
        self.running.wait()
