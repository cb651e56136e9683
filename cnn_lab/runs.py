"""Run folders on disk: config, per-epoch metrics, status and weights, so that finished and interrupted
runs survive a refresh, a second tab and a restart of the app."""
from __future__ import annotations

import csv
import io
import json
import secrets
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_lab.metrics import EpochRecord
from cnn_lab.paths import cache_root, written_whole

if TYPE_CHECKING:  # torch is imported where weights are read or written: listing runs needs none of it
    import torch
    from torch import nn


WEIGHTS_FILE = "model.pt"  # a run's state_dict
ONNX_FILE = "model.onnx"  # an imported ONNX model, as it came
CHECKPOINT_FILE = "resume.pt"  # a run's state after its last epoch, to resume from (cnn_lab.train.resume)


def runs_root() -> Path:
    root = cache_root() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class RunRecord:
    run_id: str
    kind: str  # "train", "transfer", or "onnx" (a model imported from an ONNX file)
    config: dict
    status: str  # running | finished | stopped | failed | interrupted
    message: str
    epochs: list[EpochRecord]
    test_acc: float | None
    created: float
    classes: list[str]  # empty until the run has finished
    mean: list[float] | None = None  # the per-channel normalisation the model expects (None: not saved)
    std: list[float] | None = None
    owner: str = "you"
    input_shape: list[int] | None = None  # (C, H, W) the model was trained on (None: saved before it was kept)
    imported: bool = False  # brought in from a file (a checkpoint or ONNX), not trained on this server

    @property
    def path(self) -> Path:
        return runs_root() / self.run_id

    @property
    def usable(self) -> bool:
        """Finished, or stopped by its owner, with its weights, classes and input shape on disk: a run to classify
        with, look inside, export and show the learned filters of."""
        return self.status in ("finished", "stopped") and bool(self.classes) and (self.path / self.model_file).exists() \
            and (self.kind == "transfer" or bool(self.input_shape))

    @property
    def label(self) -> str:
        """What it learned from and with: "digits · cnn", "boats9 · efficientnet_lite0", "imported · cnn" (a
        checkpoint), "imported from net.onnx"."""
        if self.kind == "onnx":
            return f"imported from {self.config.get('source', 'an ONNX file')}"
        data = "imported" if self.imported else self.config.get("dataset") or self.config.get("data") or "?"
        return f"{data} · {self.config.get('model', {}).get('name') or self.config.get('backbone') or '?'}"

    @property
    def model_file(self) -> str:
        """Its weights' file in its folder: a state_dict, or the ONNX file it was imported from."""
        return ONNX_FILE if self.kind == "onnx" else WEIGHTS_FILE

    @property
    def resumable(self) -> bool:
        """Interrupted (the app stopped), or stopped by its owner or a time limit, before its last epoch, with the
        state its last epoch kept: it can go on from there (jobs.MANAGER.resume_run)."""
        return self.status in ("interrupted", "stopped") and len(self.epochs) < self.config.get("epochs", 0) \
            and (self.path / CHECKPOINT_FILE).exists()

    @property
    def best_val_acc(self) -> float | None:
        values = [e.val_acc for e in self.epochs if e.val_acc is not None]
        return max(values) if values else None


def write_json(path: Path, value) -> None:
    """`value` as JSON at `path`, atomically."""
    with written_whole(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2))


def new_run_id() -> str:
    """A run's name: when it was made, to the second, and a random part so that two at once never clash."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.randbelow(10**6):06d}"


def create_run(run_id: str, kind: str, config_json: str, owner: str = "you") -> str:
    folder = runs_root() / run_id
    folder.mkdir()
    (folder / "config.json").write_text(config_json)
    write_json(folder / "status.json", {"kind": kind, "status": "running", "message": "", "created": time.time(),
                                         "owner": owner})
    write_json(folder / "metrics.json", [])
    return run_id


def exists(run_id: str) -> bool:
    return (runs_root() / run_id / "status.json").exists()


def reopen_run(run_id: str, note: str = "") -> None:
    """A resumed run runs again in its own folder: its id, owner, creation time, epochs and weights stay."""
    _update_status(run_id, status="running", message=note, test_acc=None, finished=None)


def save_epochs(run_id: str, epochs: list[EpochRecord], model: nn.Module | None = None,
                normalisation: tuple[list[float], list[float]] | None = None) -> None:
    """Per-epoch metrics; with the model, its weights; with the normalisation, the mean and std it expects."""
    folder = runs_root() / run_id
    write_json(folder / "metrics.json", [asdict(e) for e in epochs])
    if model is not None:
        save_weights(run_id, model)
    if normalisation is not None:
        _update_status(run_id, mean=normalisation[0], std=normalisation[1])


def delete_run(run_id: str) -> None:
    shutil.rmtree(runs_root() / run_id, ignore_errors=True)


def save_weights(run_id: str, model: nn.Module) -> None:
    import torch

    path = runs_root() / run_id / WEIGHTS_FILE
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with written_whole(path) as tmp:
        torch.save(state, tmp)


def _update_status(run_id: str, **values) -> None:
    path = runs_root() / run_id / "status.json"
    write_json(path, json.loads(path.read_text()) | values)


def finish_run(run_id: str, status: str, message: str = "", test_acc: float | None = None, **extra) -> None:
    _update_status(run_id, status=status, message=message, test_acc=test_acc, finished=time.time(), **extra)


def load_run(run_id: str, live: set[str] = frozenset()) -> RunRecord:
    folder = runs_root() / run_id
    status = json.loads((folder / "status.json").read_text())
    state = status["status"]
    if state in ("running", "paused") and run_id not in live:
        state = "interrupted"  # the process that ran it is gone
    epochs = [EpochRecord(**e) for e in json.loads((folder / "metrics.json").read_text())]
    return RunRecord(run_id, status["kind"], json.loads((folder / "config.json").read_text()), state,
                     status.get("message", ""), epochs, status.get("test_acc"), status["created"],
                     status.get("classes", []), status.get("mean"), status.get("std"), status.get("owner", "you"),
                     status.get("input_shape"), bool(status.get("imported")))


def list_runs(live: set[str] = frozenset(), kind: str | tuple[str, ...] | None = None,
              owner: str | None = None) -> list[RunRecord]:
    """All runs (of `owner`, of a kind or kinds, when given), newest first; `live` names the runs a job in this
    process still runs."""
    kinds = (kind,) if isinstance(kind, str) else kind
    records = []
    for folder in sorted(runs_root().iterdir(), reverse=True):
        if folder.name.startswith("."):
            continue
        try:
            record = load_run(folder.name, live)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a folder that is not a complete run
        if (kinds is None or record.kind in kinds) and (owner is None or record.owner == owner):
            records.append(record)
    return records


def load_weights(run_id: str) -> dict[str, torch.Tensor]:
    """The saved state_dict; weights_only=True, so a malicious pickle cannot run code."""
    import torch

    return torch.load(runs_root() / run_id / WEIGHTS_FILE, map_location="cpu", weights_only=True)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def spreadsheet_safe(row: dict) -> dict:
    """A CSV row whose text cells a spreadsheet will not run: one that starts like a formula gets a leading quote
    (OWASP's advice against CSV injection), so an imported run's dataset `=cmd|...` reaches the teacher as text.
    Numbers stay numbers."""
    return {key: f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
            for key, value in row.items()}


def metrics_csv(records: list[RunRecord]) -> str:
    out = io.StringIO()
    fields = ["run_id", *EpochRecord.__dataclass_fields__]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for record in records:
        for epoch in record.epochs:
            writer.writerow(spreadsheet_safe({"run_id": record.run_id, **asdict(epoch)}))
    return out.getvalue()
