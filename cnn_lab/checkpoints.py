"""A trained run leaves the app and comes back. One checkpoint file holds everything a model needs outside CNN
Lab (config, weights, class names, input shape and normalisation) and loads with torch.load(weights_only=True);
an ONNX file has the normalisation built in and the class names in its metadata. A checkpoint uploaded back, or
any ONNX image classifier (cnn_lab.onnx_models), becomes a run of its uploader, to classify with, to show the
learned filters of and to open on "Inside the network"."""
from __future__ import annotations

import io
import json
import pickle
import time
import zipfile

import torch
from torch import nn

from cnn_lab import runs
from cnn_lab.subjects import Subject, run_subject
from cnn_lab.jobs.kinds import KINDS
from cnn_lab.limits import MAX_IMAGE_SIDE, LimitError, check_person_disk, check_training_memory
from cnn_lab.models import ModelError, model_cost
from cnn_lab.normalise import IMAGENET_MEAN, IMAGENET_STD
from cnn_lab.onnx_models import OnnxError, read_onnx
from cnn_lab.settings import load_settings
from cnn_lab.train import TrainConfig, TrainingError

FORMAT = "cnn-lab-checkpoint/1"
NOT_A_CHECKPOINT = ("This file is not a PyTorch checkpoint: import the .pt file that a run's \"Checkpoint (.pt)\" "
                    "download gives.")
CODE = ("This file holds Python objects besides weights (a pickle that could run code), so it was not opened: import "
        "a checkpoint that CNN Lab exported.")


class CheckpointError(ValueError):
    """A file that cannot be imported; the message is one sentence."""


# ---------------------------------------------------------------- out of the app


def checkpoint_bytes(record: runs.RunRecord) -> bytes:
    """The run as one file: {"format", "kind", "config" (JSON text), "state_dict", "classes", "input_shape",
    "mean", "std", "test_acc"}; only tensors, strings, numbers and lists, so weights_only loading reads it."""
    subject = run_subject(record)
    state = {name: value.detach().cpu() for name, value in subject.model.state_dict().items()}  # as loaded
    bundle = {"format": FORMAT, "kind": record.kind, "config": json.dumps(record.config),
              "state_dict": state, "classes": subject.classes,
              "input_shape": list(subject.input_shape), "mean": subject.mean.flatten().tolist(),
              "std": subject.std.flatten().tolist(), "test_acc": record.test_acc}
    buffer = io.BytesIO()
    torch.save(bundle, buffer)
    return buffer.getvalue()


class WithNormalisation(nn.Module):
    """The model with its input normalisation in front: it takes pixels in [0, 1], as any image library gives."""

    def __init__(self, subject: Subject):
        super().__init__()
        self.model = subject.model
        self.register_buffer("mean", subject.mean.float())
        self.register_buffer("std", subject.std.float())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


def onnx_bytes(record: runs.RunRecord) -> bytes:
    """The run as ONNX (torch.onnx.export): input "pixels" (N, C, H, W) float32 in [0, 1] (RGB, or one grey
    channel), any batch size; output "logits" (N, classes); metadata "classes" (a JSON list) and "input"."""
    subject = run_subject(record)
    model = WithNormalisation(subject).eval()
    example = torch.rand(2, *subject.input_shape)
    program = torch.onnx.export(model, (example,), input_names=["pixels"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    proto = program.model_proto
    c, h, w = subject.input_shape
    for key, value in {"classes": json.dumps(subject.classes), "cnn_lab_run": record.run_id,
                       "input": f"pixels: float32 (N, {c}, {h}, {w}) in [0, 1], {'RGB' if c == 3 else 'grayscale'}; "
                                "the normalisation is inside the model"}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


# ---------------------------------------------------------------- back in


def _check_records(data: bytes) -> None:
    """Before torch.load reads anything: every record of the checkpoint's zip is stored as torch.save writes it,
    uncompressed, and all of them together fit the import limit. A deflated record of zeros unpacks to 1,000 times
    its bytes, so a 25 MB upload could ask for 24 GB."""
    try:
        records = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError):
        raise CheckpointError(NOT_A_CHECKPOINT) from None
    if any(record.compress_type != zipfile.ZIP_STORED for record in records):
        raise CheckpointError("This checkpoint's records are compressed, which torch.save never does (a compressed "
                              "record can unpack to far more than the file), so it was not opened.")
    limit = load_settings().onnx_max_mb
    unpacked = sum(record.file_size for record in records)
    if unpacked > limit * 2**20:
        raise CheckpointError(f"This checkpoint holds {unpacked / 2**20:,.0f} MB, more than the {limit:g} MB an "
                              "imported model may take here.")


def _read(data: bytes) -> dict:
    """The checkpoint's dictionary, read with weights_only=True: no object in the file can run code."""
    if data[:1] == b"\x80":  # a bare pickle (torch.save writes a zip)
        raise CheckpointError(CODE)
    if not data.startswith(b"PK"):
        raise CheckpointError(NOT_A_CHECKPOINT)
    _check_records(data)
    try:
        bundle = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # objects other than tensors, numbers, strings, lists and dicts
        raise CheckpointError(CODE) from None
    except Exception:  # noqa: BLE001 - torch raises many kinds for a damaged zip
        raise CheckpointError(NOT_A_CHECKPOINT) from None
    if isinstance(bundle, dict) and bundle.get("format") == FORMAT:
        return bundle
    if isinstance(bundle, dict) and bundle and all(isinstance(v, torch.Tensor) for v in bundle.values()):
        raise CheckpointError("This is a bare state_dict (weights only): import the checkpoint file instead, which "
                              "also holds the config, the class names and the normalisation.")
    raise CheckpointError("This is a PyTorch file but not a CNN Lab checkpoint (it has no \"format\" entry).")


def import_checkpoint(data: bytes, owner: str = "you") -> runs.RunRecord:
    """A checkpoint file (from `checkpoint_bytes`) as a new finished run of `owner`; CheckpointError with one
    sentence when it is not one, or when its weights do not fit the model its config describes."""
    bundle = _read(data)
    try:
        kind = KINDS[bundle["kind"]]
        config = kind.config_from_json(bundle["config"])
        classes = [str(c) for c in bundle["classes"]]
        shape = [int(v) for v in bundle["input_shape"]]
        mean, std = [float(v) for v in bundle["mean"]], [float(v) for v in bundle["std"]]
        state = bundle["state_dict"]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"This checkpoint is incomplete or malformed ({type(error).__name__}: {error}).") from None
    if getattr(config, kind.data_field) not in kind.registered:  # a path in a stranger's file: never read here
        setattr(config, kind.data_field, "")
    _check_size(kind, config, shape, len(classes))
    run_id = runs.new_run_id()
    runs.create_run(run_id, bundle["kind"], config.to_json(), owner=owner)
    torch.save(state, runs.runs_root() / run_id / runs.WEIGHTS_FILE)
    runs.finish_run(run_id, "finished", f"Imported from a checkpoint on {time.strftime('%Y-%m-%d %H:%M')}.",
                    bundle.get("test_acc"), classes=classes, input_shape=shape, mean=mean, std=std, imported=True)
    record = runs.load_run(run_id)
    try:
        run_subject(record)  # the weights must load into the model the config builds
    except Exception as error:  # noqa: BLE001 - any failure to rebuild means the file is not usable
        runs.delete_run(run_id)
        reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}"
        raise CheckpointError(f"This checkpoint cannot be rebuilt: {reason}.") from None
    return record


MAX_CLASSES = 10_000


def _check_size(kind, config, shape: list[int], classes: int) -> None:
    """Before anything is built: the config's own checks (a model sized on the meta device among them), and an
    input that a page can feed it (a file can claim 60000x60000 pixels and a million classes)."""
    if len(shape) != 3 or shape[0] not in (1, 3) or not all(1 <= side <= MAX_IMAGE_SIDE for side in shape[1:]):
        raise CheckpointError(f"This checkpoint's input shape {shape} is not an image this server can give it (1 or 3 "
                              f"channels, at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels).")
    if not 2 <= classes <= MAX_CLASSES:
        raise CheckpointError(f"This checkpoint has {classes:,} classes; a classifier here has 2 to {MAX_CLASSES:,}.")
    try:
        kind.check(config)
        if isinstance(config, TrainConfig):  # at the checkpoint's own input size, for one image at a time
            cost = model_cost(config.model, tuple(shape), classes)
            check_training_memory(cost.parameters, cost.activations_per_image, 1)
    except (TrainingError, ModelError, LimitError, RuntimeError) as error:
        raise CheckpointError(f"This checkpoint cannot be used here: {error}") from None


# What an ONNX model expects as input when its file does not say: the page and the CLI offer these.
ONNX_INPUTS = {
    "pixels": "pixels in [0, 1] (no normalisation, or the model does its own)",
    "imagenet": "ImageNet's mean and std (most pretrained models)",
}


def import_onnx(data: bytes, name: str, owner: str = "you", normalisation: str = "pixels") -> runs.RunRecord:
    """An ONNX image classifier as a new finished run of `owner` (kind "onnx": its folder keeps the file as it came);
    its normalisation from the file's metadata when it states one, else `normalisation` (a key of ONNX_INPUTS).
    OnnxError with one sentence when it is not one, or cannot be converted."""
    classifier = read_onnx(data)
    channels = classifier.input_shape[0]
    if classifier.mean is not None and classifier.std is not None:
        mean, std, said = classifier.mean, classifier.std, "as its file states"
    elif normalisation == "imagenet" and channels == 3:
        mean, std, said = list(IMAGENET_MEAN), list(IMAGENET_STD), "ImageNet's, as chosen on import"
    else:
        mean, std, said = [0.0] * channels, [1.0] * channels, "pixels in [0, 1], as chosen on import"
    run_id = runs.new_run_id()
    config = {"source": name, "opset": classifier.opset, "input_shape": list(classifier.input_shape),
              "normalisation": said}
    runs.create_run(run_id, "onnx", json.dumps(config), owner=owner)
    (runs.runs_root() / run_id / runs.ONNX_FILE).write_bytes(data)
    runs.finish_run(run_id, "finished", f"Imported from {name} (ONNX opset {classifier.opset}) on "
                    f"{time.strftime('%Y-%m-%d %H:%M')}; its input normalisation: {said}.", None,
                    classes=classifier.classes, input_shape=list(classifier.input_shape), mean=mean, std=std,
                    imported=True)
    return runs.load_run(run_id)


def import_model(data: bytes, name: str, owner: str = "you", normalisation: str = "pixels") -> runs.RunRecord:
    """A checkpoint (.pt) or an ONNX file (.onnx), by its name: the page's and the CLI's one way in. On a shared
    server it must fit the person's share of the disk first."""
    try:
        check_person_disk(owner, len(data))
    except LimitError as error:
        raise CheckpointError(str(error)) from None
    if name.lower().endswith(".onnx"):
        return import_onnx(data, name, owner, normalisation)
    return import_checkpoint(data, owner)


__all__ = ["CheckpointError", "ONNX_INPUTS", "OnnxError", "checkpoint_bytes", "import_checkpoint", "import_model",
           "import_onnx", "onnx_bytes"]
