"""The kinds of job, by name: how a config comes back from JSON and what runs it. Any executor can start a job
from (kind, config JSON), including a Ray worker on another machine."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from cnn_lab.data import DATASETS
from cnn_lab.metrics import Control, MetricLog
from cnn_lab.train import Saving, TrainConfig, TrainResult, fit
from cnn_lab.transfer import TransferConfig, check_transfer, run_transfer


@dataclass(frozen=True)
class Kind:
    config_from_json: Callable[[str], Any]
    run: Callable[[Any, MetricLog, Control, Saving | None], TrainResult]  # (config, log, control, saving)
    check: Callable[[Any], None]  # one sentence (TrainingError, ModelError) for a config that cannot run
    data_field: str  # the config's field that names its data: a registry name, or a folder's path
    registered: tuple[str, ...]  # the data names that are no path: what an imported config may keep


KINDS: dict[str, Kind] = {
    "train": Kind(TrainConfig.from_json,
                  lambda config, log, control, saving: fit(config, log=log, control=control, saving=saving),
                  TrainConfig.validate, "dataset", tuple(DATASETS)),
    "transfer": Kind(TransferConfig.from_json, run_transfer, check_transfer, "data", ("boats9",)),
}
