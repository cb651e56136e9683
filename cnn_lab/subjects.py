"""A model ready to use, whatever it came from: a run trained here, an imported checkpoint or ONNX file, the
pretrained EfficientNet-Lite0, or a torchvision network with its ImageNet weights. Each is a Subject: the model in
eval mode, its classes, its input shape and normalisation, and the one way from a photo to what it reads.

Every page asks `subject_of(choice)`, one string for any of them, and gets it from one cache of the last few built,
shared by the whole server: a model is rebuilt when its weights change (a resumed run), not on every rerun."""
from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from cnn_lab import architectures, images, runs
from cnn_lab.backbones import WeightsUnavailable, efficientnet_lite0_imagenet
from cnn_lab.models import ModelSpec, build_model
from cnn_lab.normalise import imagenet_stats, normalise

PRETRAINED = "pretrained"  # the choice that names EfficientNet-Lite0 with its ImageNet head
ARCHITECTURE = "torchvision:"  # a choice that names a torchvision network: "torchvision:resnet18"
CACHED = 8  # models kept built, for every page and person (the three page caches it replaced held up to 10)


@dataclass
class Subject:
    """A model ready to use, with what it needs: its classes, input shape and normalisation."""
    title: str
    model: nn.Module
    classes: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: torch.Tensor  # (1, C, 1, 1)
    std: torch.Tensor

    def input_of(self, photo: Image.Image) -> torch.Tensor:
        """A photo as the uint8 (C, H, W) image this model reads: its channels, resized to its input size."""
        return images.to_model_input(photo, self.input_shape)

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """A uint8 (C, H, W) image at the input shape -> the normalised (1, C, H, W) batch the model expects."""
        return normalise(image[None], self.mean, self.std)


def pretrained_subject() -> Subject:
    """EfficientNet-Lite0 with its ImageNet head and 1,000 classes: its weights ship in a package, so this
    works on a fresh machine, before anything is trained."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return Subject("EfficientNet-Lite0, pretrained on ImageNet (1,000 classes)", efficientnet_lite0_imagenet().eval(),
                   list(_IMAGENET_CATEGORIES), (3, 224, 224), *imagenet_stats())


def run_subject(record: runs.RunRecord) -> Subject:
    """A saved run rebuilt from its config and weights (weights_only loading), or from the ONNX file it was imported
    from; a ValueError with a few words when its weights file is missing, not a checkpoint, or not this model's."""
    title = f"Run {record.run_id} ({record.kind}, test accuracy {record.test_acc or 0:.1%})"
    try:
        if record.kind == "transfer":
            from cnn_lab import transfer

            size = transfer.TransferConfig.from_json(record.config).image_size
            return Subject(title, transfer.load_run_model(record), record.classes, (3, size, size),
                           *imagenet_stats())
        shape = tuple(record.input_shape)
        if record.kind == "onnx":  # a model from elsewhere: converted again from the file it came as
            from cnn_lab.onnx_models import read_onnx

            title = f"Run {record.run_id} (imported from {record.config.get('source', 'an ONNX file')})"
            model = read_onnx((record.path / runs.ONNX_FILE).read_bytes()).model
        else:
            model = build_model(ModelSpec.from_dict(record.config["model"]), shape, len(record.classes))
            model.load_state_dict(runs.load_weights(record.run_id))
    except (OSError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"its weights file is missing or not a checkpoint: {type(error).__name__}") from None
    except RuntimeError as error:
        if isinstance(error, WeightsUnavailable):
            raise
        raise ValueError("its weights do not fit the model its config describes") from None
    channels = shape[0]
    mean = torch.tensor(record.mean or [0.0] * channels).view(1, channels, 1, 1)
    std = torch.tensor(record.std or [1.0] * channels).view(1, channels, 1, 1)
    return Subject(title, model.eval(), record.classes, shape, mean, std)


def architecture_subject(name: str) -> Subject:
    """The network with its ImageNet weights, ready to look inside; WeightsUnavailable with one sentence when its
    weights are not on this machine."""
    import torchvision.models as tvm

    title, path = architectures.ARCHITECTURES[name].title, architectures.weights_file(name)
    if path is None:
        file = Path(architectures.weights_of(name).url).name
        raise WeightsUnavailable(f"{title}'s ImageNet weights ({architectures.weights_mb(name):.0f} MB) are not on "
                                 f"this machine: download them, or put {file} in CNN_LAB_DATA.")
    model = tvm.get_model(name)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # noqa: BLE001 - a damaged or foreign file fails in many ways; each is this sentence
        raise WeightsUnavailable(f"{title}'s weights file {path} cannot be read ({type(error).__name__}): delete "
                                 "it and download it again.") from None
    size = architectures.weights_of(name).transforms().crop_size[0]
    return Subject(f"{title} (torchvision), pretrained on ImageNet (1,000 classes)", model.eval(),
                   list(architectures.weights_of(name).meta["categories"]), (3, size, size), *imagenet_stats())


def first_filters(record: runs.RunRecord) -> torch.Tensor:
    """The run's first convolution's kernels (out, in, k, k): from its saved weights, or from the converted model of
    an imported ONNX file (whose weights are not a state_dict); a ValueError when it has no convolution."""
    if record.kind == "onnx":
        convs = [m.weight for m in subject_of(record.run_id).model.modules() if isinstance(m, nn.Conv2d)]
    else:
        convs = [v for v in runs.load_weights(record.run_id).values() if v.ndim == 4]
    if not convs:
        raise ValueError("it has no convolution")
    return convs[0].detach()


_built: OrderedDict[tuple, Subject] = OrderedDict()
_lock = threading.Lock()


def subject_of(choice: str) -> Subject:
    """The model a choice names (PRETRAINED, ARCHITECTURE + a name, or a run id), built once and kept among the
    last CACHED: every page and every session share them. A run's weights file is part of the key, so a run that
    trained on (resumed) is built again. Raises as the builders do: ValueError, WeightsUnavailable."""
    key = (choice, _weights_stamp(choice))
    with _lock:
        if key in _built:
            _built.move_to_end(key)
            return _built[key]
    subject = _build(choice)  # outside the lock: one slow model does not hold up the others
    with _lock:
        _built[key] = subject
        while len(_built) > CACHED:
            _built.popitem(last=False)
    return subject


def forget(choice: str) -> None:
    """Drop what is built for this choice (a deleted run): its memory goes now, not when newer models push it out."""
    with _lock:
        for key in [key for key in _built if key[0] == choice]:
            del _built[key]


def _build(choice: str) -> Subject:
    if choice == PRETRAINED:
        return pretrained_subject()
    if choice.startswith(ARCHITECTURE):
        return architecture_subject(choice.removeprefix(ARCHITECTURE))
    return run_subject(runs.load_run(choice))


def _weights_stamp(choice: str) -> float | None:
    if choice == PRETRAINED or choice.startswith(ARCHITECTURE):
        return None
    files = [runs.runs_root() / choice / name for name in (runs.WEIGHTS_FILE, runs.ONNX_FILE)]
    return max((f.stat().st_mtime for f in files if f.exists()), default=None)
