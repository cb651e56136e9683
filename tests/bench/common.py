"""What the benchmarks share: a row of the table, medians, and one training run timed in this process (with, on
request, a thread that reads the run's log the way the server does for a page watching it)."""
from __future__ import annotations

import threading
from typing import NamedTuple

import torch

from cnn_lab import data as datasets
from cnn_lab.metrics import EpochRecord, MetricLog
from cnn_lab.train import TrainConfig, fit


class Row(NamedTuple):
    """One line of a BENCHMARKS.md table (a plain (what, figure, note) tuple reads as one with no utilisation)."""
    what: str
    figure: str
    note: str
    utilisation: str = ""  # a training run's FLOP/s against the machine's peak (tests/bench/utilisation.py)
    target: str = ""  # what it must reach, for BENCHMARKS.md's current table (a row that people wrote keeps theirs)


CPU_PRESETS = ["CPU: 70% in a minute", "CPU: 80% in five minutes", "CPU: 90% in ten minutes",
               "CPU: 89% in ten minutes", "Fast CNN (70%+ in 3 min on CPU)"]
ONE_SEED = CPU_PRESETS[-2:]  # recipes no target names: one run each in the bench


def sync_device() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median(values: list[float]) -> float:
    """The middle value (the upper one of an even count)."""
    return sorted(values)[len(values) // 2]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def run_config(config: TrainConfig, cifar: datasets.ImageDataset,
               subscriber: bool = False) -> tuple[float, float, float, list[EpochRecord]]:
    """(test accuracy, seconds, images/s, epochs) of one run; with `subscriber`, a thread polls the log like a
    page."""
    log = MetricLog()
    stop = threading.Event()

    def poll() -> None:
        """What the server does for a train page that watches a job: the live chart's JSON every second (the step
        curve, as jobs.live serves it), and the epoch curves once an epoch, validated and serialised as
        st.plotly_chart does."""
        import json

        import plotly.io
        import plotly.tools

        from cnn_lab import charts

        drawn = 0
        while not stop.wait(1.0):
            seen = log.snapshot()
            steps, epochs = seen.steps, seen.epochs
            json.dumps({"series": charts.step_loss_series(steps)})
            if len(epochs) != drawn:
                drawn = len(epochs)
                figure = plotly.tools.return_figure_from_figure_or_data(charts.epoch_figure({"run": epochs}), True)
                plotly.io.to_json(figure, validate=False)

    poller = threading.Thread(target=poll, daemon=True) if subscriber else None
    if poller:
        poller.start()
    result = fit(config, dataset=cifar, log=log)
    stop.set()
    images_per_s = sum(e.images_per_s * e.seconds for e in log.epochs) / sum(e.seconds for e in log.epochs)
    return result.test_acc, result.seconds, images_per_s, log.epochs
