"""Transfer learning: a pretrained backbone with a new head, trained as a linear probe on cached features,
by fine-tuning its last N blocks, or in full. Every mode runs through the same trainer and job manager as
the train page.

Why cached features are fast: the frozen backbone is the expensive part, and its output for an image never
changes, so it runs once per image (batched, channels_last, inference mode) and the head then trains on
(N, D) vectors in seconds. Augmentation cannot apply there, since every epoch would need new features.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from cnn_lab import augment
from cnn_lab import data as datasets
from cnn_lab import runs
from cnn_lab.backbones import BACKBONES, Pretrained, inference_copy
from cnn_lab.normalise import imagenet_stats, normalise
from cnn_lab.models import ModelSpec
from cnn_lab.paths import cache_root
from cnn_lab.downloads import DownloadCancelled, Hooks, Progress, reachable
from cnn_lab.metrics import Control, MetricLog, StoppedBeforeTraining
from cnn_lab.train import TrainConfig, TrainingError, TrainResult, download_hooks, fit, resolve_device

MODES = ("probe", "partial", "full")


@dataclass
class TransferConfig:
    data: str = "boats9"  # "boats9" (from CNN_LAB_DATA), a folder path, or a .zip / .tar.gz path
    backbone: str = "efficientnet_lite0"
    mode: str = "probe"  # probe: cached features | partial: the last `unfreeze` blocks | full
    unfreeze: int = 2
    epochs: int = 30
    lr: float = 0.05
    backbone_lr_factor: float = 0.1  # full fine-tuning: the backbone learns this much slower than the head
    batch_size: int = 64
    weight_decay: float = 0.05  # strong: 1,280 features from 872 images overfit easily
    label_smoothing: float = 0.1
    augment_preset: str = ""  # fine-tuning only
    head_from_probe: bool = False  # fine-tuning: start from a linear probe's head (LP-FT), not a random one
    frozen_views: int = 0  # partial: 0 = the frozen blocks run at every step (GPU); N = once, on N views (CPU)
    tta: bool = False  # fine-tuning: test on the average of flipped and shifted views
    flip_features: bool = True  # probe: train on mirrored images' features too, average both at test time
    image_size: int = 160  # the probe is as accurate at 160 as at 224 on boats9 (92.4%), 1.5x sooner on a CPU
    seed: int = 0
    device: str = "auto"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | dict) -> "TransferConfig":
        return cls(**(json.loads(text) if isinstance(text, str) else text))


# Starting points for the page and the CLI; every field stays editable.
CPU_RECIPE = "Fine-tune on a CPU (minutes)"
PRESETS: dict[str, tuple[str, TransferConfig]] = {
    "Linear probe (seconds, even on a CPU)": (
        "The backbone runs once over the photos (at 160 pixels: as accurate here as 224, and faster), then only "
        "a linear head trains on the cached features: about 92% on boats9, under a minute on 2 CPU cores.",
        TransferConfig(),
    ),
    "Course: ResNet18 frozen (lesson 29)": (
        "The course's transfer practical: torchvision's ResNet18 pretrained on ImageNet, frozen, with a new "
        "512 -> classes linear head (a linear probe at 224 pixels). It needs ResNet18's weights (downloaded at "
        "Start, or already cached); offline, use EfficientNet-Lite0, which ships with the app.",
        TransferConfig(backbone="resnet18", image_size=224, flip_features=False),
    ),
    CPU_RECIPE: (
        "LP-FT for a CPU: the frozen blocks, most of the work, run once over 4 views of each photo (the photo, its "
        "mirror, two zoom crops with colour changes) at 288 pixels, with their batch norms folded into their "
        "convolutions; then only the last two blocks (the last MBConv block and the 1x1 head convolution) and the "
        "linear head train, on those cached outputs, 2 epochs over every view; tested on each photo and its mirror. "
        "On boats9: about 95.5% in 4.4 minutes on 2 cores of a slow virtual machine (BENCHMARKS.md has the 3-seed "
        "means).",
        TransferConfig(mode="partial", unfreeze=2, frozen_views=4, epochs=2, lr=0.02, weight_decay=5e-4,
                       batch_size=32, image_size=288, augment_preset="photos: zoom crop and colour",
                       head_from_probe=True),
    ),
    "Fine-tune (best on boats9, for a GPU)": (
        "LP-FT: a linear probe first, then its head and the last blocks fine-tune together on zoom crops, "
        "flips and colour changes, at 288 pixels; tested on the average of flipped and shifted views.",
        TransferConfig(mode="partial", unfreeze=4, epochs=20, lr=0.02, weight_decay=5e-4, batch_size=32,
                       image_size=288, augment_preset="photos: zoom crop and colour", head_from_probe=True, tta=True),
    ),
}


def preset(name: str) -> TransferConfig:
    """A fresh copy of a preset's config."""
    return replace(PRESETS[name][1])


class TransferModel(nn.Module):
    """backbone features -> (standardise) -> linear head. Blocks that do not train stay in eval mode, so their
    batch-norm statistics stay the pretrained ones."""

    def __init__(self, pretrained: Pretrained, classes: int, trainable_blocks: int | None = 0):
        super().__init__()
        self.backbone = pretrained.features
        self.head = nn.Linear(pretrained.dim, classes)
        self.register_buffer("feature_mean", torch.zeros(pretrained.dim))
        self.register_buffer("feature_std", torch.ones(pretrained.dim))
        blocks = pretrained.blocks
        count = len(blocks) if trainable_blocks is None else min(trainable_blocks, len(blocks))
        self.frozen = blocks[: len(blocks) - count]
        self.cam_layer = pretrained.cam_layer
        if count < len(blocks):
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            for block in blocks[len(blocks) - count :]:
                for p in block.parameters():
                    p.requires_grad_(True)

    def train(self, mode: bool = True) -> "TransferModel":
        super().train(mode)
        for block in self.frozen:
            block.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.backbone(x) - self.feature_mean) / self.feature_std)

    def cut(self) -> nn.Module:
        """The last frozen block (its output is what the blocks that train start from); of a block kept as a list
        of layers (a stem), its last layer."""
        block = self.frozen[-1]
        return block[-1] if isinstance(block, nn.ModuleList) else block


class FromFrozenOutput(nn.Module):
    """A TransferModel fed with its frozen blocks' output (computed once per image and cached) instead of an image.
    A forward hook on the last frozen module replaces that module's output with the given one, so the blocks after
    it run as usual; the frozen blocks only see a tiny blank stand-in image (about 1% of their work at 288 px)."""

    def __init__(self, model: TransferModel):
        super().__init__()
        self.model = model

    def forward(self, frozen_output: torch.Tensor) -> torch.Tensor:
        stand_in = frozen_output.new_zeros(len(frozen_output), 3, 32, 32)
        handle = self.model.cut().register_forward_hook(lambda module, inputs, output: frozen_output)
        try:
            return self.model(stand_in)
        finally:
            handle.remove()


def build_transfer_model(backbone: str, classes: int, trainable_blocks: int | None = 0) -> TransferModel:
    return TransferModel(BACKBONES[backbone].load(Hooks()), classes, trainable_blocks)


# ---------------------------------------------------------------- data and features

KAGGLE_BOATS = "clorichel/boat-types-recognition"
KAGGLE_SERVER = "https://www.kaggle.com/"


def _kaggle_marker() -> Path:
    return cache_root() / "kaggle" / "boat-types.txt"  # holds the folder kagglehub gave, once it is whole


def kaggle_boats_folder() -> Path | None:
    """The Kaggle boat types, when they were downloaded before."""
    marker = _kaggle_marker()
    folder = Path(marker.read_text().strip()) if marker.exists() else None
    return folder if folder is not None and folder.is_dir() else None


@contextlib.contextmanager
def _kaggle_progress(hooks: Hooks):
    """kagglehub draws its progress with tqdm: for this download, a tqdm that reports to the hooks and stops when
    they cancel. kagglehub resumes a partial file on the next try and checks its checksum, so a cancelled download
    does not break the next one."""
    import kagglehub.clients
    from tqdm import tqdm

    start = time.perf_counter()

    class Reporting(tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            hooks.check()
            shown = super().update(n)
            if hooks.report:
                total = int(self.total) if self.total else None
                hooks.report(Progress("the Kaggle boat types", int(self.n), total, time.perf_counter() - start))
            return shown

    original = kagglehub.clients.tqdm
    kagglehub.clients.tqdm = Reporting
    try:
        yield
    finally:
        kagglehub.clients.tqdm = original


def download_kaggle_boats(hooks: Hooks | None = None) -> Path:
    """The Kaggle boat-types dataset through kagglehub, when the network and Kaggle allow."""
    hooks = hooks or Hooks()
    if kaggle_boats_folder():
        return kaggle_boats_folder()
    if not reachable(KAGGLE_SERVER):
        raise datasets.DatasetUnavailable(
            f"The Kaggle dataset {KAGGLE_BOATS} cannot be downloaded now: this machine cannot reach kaggle.com. "
            "Use boats9 or your own photos instead."
        )
    try:
        import kagglehub

        with _kaggle_progress(hooks):
            folder = datasets.dataset_root(Path(kagglehub.dataset_download(KAGGLE_BOATS)))
    except DownloadCancelled:
        raise
    except Exception as error:  # noqa: BLE001 - kagglehub raises many kinds of network and credential errors
        raise datasets.DatasetUnavailable(
            f"The Kaggle dataset {KAGGLE_BOATS} could not be downloaded ({type(error).__name__}): the network is "
            "unreachable or Kaggle credentials are missing; use boats9 or a folder on this machine instead."
        ) from None
    _kaggle_marker().parent.mkdir(parents=True, exist_ok=True)
    _kaggle_marker().write_text(str(folder))
    return folder


@dataclass(frozen=True)
class DataSource:
    title: str
    about: str  # in plain words: what it is and where it comes from
    todo: str  # what to do to use it
    ready: Callable[[], bool]  # usable now, with no action from the user


SOURCES: dict[str, DataSource] = {
    "boats9": DataSource(
        "boats9", "1,095 photos of boats in 9 classes (carriers, cruise ships, destroyers, fishing boats, kayaks, "
        "sailboats, security boats, submarines, tugs), already split into train, validation and test sets; it comes "
        "as one file, boats9.tar.gz (10 MB), from the course's materials.",
        "Put boats9.tar.gz in a folder and start the app with CNN_LAB_DATA set to that folder.",
        lambda: datasets.local_archive("boats9") is not None),
    "kaggle": DataSource(
        "Kaggle boat types", "The course's Kaggle dataset of boat photos (about 1,500 photos in 9 classes), "
        "downloaded once through kagglehub.",
        "Connect this machine to the internet (if Kaggle asks, put your API token in ~/.kaggle/kaggle.json), "
        "choose it below and press Download.",
        lambda: kaggle_boats_folder() is not None),
    "upload": DataSource(
        "Upload a zip", "Your own photos, zipped with one folder per class (<class>/<photo>), at least 3 per class.",
        "Zip your class folders and upload the zip below.", lambda: False),
    "folder": DataSource(
        "A folder on this machine", "Your own photos in class folders: <root>/<class>/, or already split as "
        "<root>/{train,val,test}/<class>/.", "Type the folder's path below.", lambda: False),
}


def first_ready_source() -> str | None:
    return next((name for name, source in SOURCES.items() if source.ready()), None)


def load_images(config: TransferConfig) -> datasets.ImageDataset:
    """The dataset at the backbone's input size: boats9 from CNN_LAB_DATA, a folder, or an archive."""
    if config.data == "boats9":
        return datasets.load_local("boats9", size=config.image_size)
    path = Path(config.data)
    if path.is_file():
        path = datasets.dataset_root(datasets.extract_archive(path))
    return datasets.load_folder(path, size=config.image_size, seed=config.seed)


def extract_features(pretrained: Pretrained, images: torch.Tensor, device: torch.device, batch_size: int = 32,
                     flip: bool = False) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (N, D) features. Fast on a CPU because it is batched, in inference mode (no
    autograd records) and channels_last (what the CPU's convolution kernels prefer)."""
    # Move the weights outside inference mode, so they stay ordinary tensors that fine-tuning can train later.
    model = pretrained.features.to(device).eval().to(memory_format=torch.channels_last)
    model = inference_copy(model, _example(images, device))
    with torch.inference_mode():
        return _extract(model, images, device, batch_size, flip)


def _example(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One blank image of the images' size, channels_last: what backbones.inference_copy traces the network with."""
    return torch.zeros(1, *images.shape[1:], device=device).contiguous(memory_format=torch.channels_last)


def _extract(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int, flip: bool) -> torch.Tensor:
    mean, std = imagenet_stats(device)
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        count = len(batch)
        if device.type == "cuda" and count < batch_size:
            # Keep one input shape: every new shape makes cuDNN plan all its convolutions again.
            batch = torch.cat([batch, batch.new_zeros(batch_size - count, *batch.shape[1:])])
        x = normalise(batch, mean, std)
        x = (x.flip(-1) if flip else x).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(model(x).float()[:count].cpu())
    return torch.cat(out)


def cached_features(backbone: str, pretrained: Pretrained, dataset: datasets.ImageDataset, split: str,
                    device: torch.device, flip: bool = False) -> torch.Tensor:
    """Features of one split, computed once per (backbone, exact dataset, split, flip) and kept on disk."""
    folder = cache_root() / "features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{backbone}-{dataset.source_id or dataset.name}-{split}{'-flip' if flip else ''}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    features = extract_features(pretrained, dataset.splits[split].images, device, flip=flip)
    torch.save(features, path)
    return features


def features_cached(backbone: str, dataset: datasets.ImageDataset) -> bool:
    """Whether a probe on this dataset (as loaded, before the validation split is made) needs no extraction."""
    return (cache_root() / "features" / f"{backbone}-{_with_val_id(dataset)}-train.pt").exists()


def _with_val_id(dataset: datasets.ImageDataset) -> str:
    return dataset.source_id if "val" in dataset.splits else dataset.source_id + "-val"


def load_run_model(record: "runs.RunRecord") -> TransferModel:
    """A finished transfer run's model from its folder (weights_only loading)."""
    config = TransferConfig.from_json(record.config)
    model = build_transfer_model(config.backbone, len(record.classes), None)
    model.load_state_dict(runs.load_weights(record.run_id))
    return model.eval()


def _with_val(dataset: datasets.ImageDataset, seed: int) -> datasets.ImageDataset:
    """Make sure there is a validation split (15% of train, stratified) for early stopping and curves."""
    if "val" in dataset.splits:
        return dataset
    parts = datasets.stratified_split(dataset.splits["train"].labels, {"train": 0.85, "val": 0.15}, seed)
    train_split = dataset.splits["train"]
    splits = {**dataset.splits, "train": datasets.split_of(train_split, parts["train"]),
              "val": datasets.split_of(train_split, parts["val"])}
    return datasets.ImageDataset(dataset.name, dataset.classes, splits, dataset.skipped, _with_val_id(dataset))


# ---------------------------------------------------------------- the run


def _common(config: TransferConfig) -> dict:
    """The trainer's settings that a transfer config gives as they are."""
    return dict(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, weight_decay=config.weight_decay,
                label_smoothing=config.label_smoothing, seed=config.seed, device=config.device, val_fraction=0.0)


def _fit_head(model: TransferModel, images: datasets.ImageDataset, feats: dict[str, list[torch.Tensor]], common: dict,
              log: MetricLog, control: Control, on_epoch=None) -> TrainResult:
    """Train the model's linear head on cached features, one list of views per split: on every view of the training
    images; validated and tested on the mean of the views (test-time augmentation)."""
    splits = {
        "train": datasets.Split(torch.cat(feats["train"])[..., None, None],
                                images.splits["train"].labels.repeat(len(feats["train"]))),
        **{s: datasets.Split(torch.stack(feats[s]).mean(0)[..., None, None], images.splits[s].labels)
           for s in ("val", "test")},
    }
    head_data = datasets.ImageDataset(images.name, images.classes, splits)
    head_config = TrainConfig(dataset=images.name, model=ModelSpec("linear"), optimizer="sgd", schedule="cosine",
                              patience=0, **common)
    result = fit(head_config, dataset=head_data, log=log, control=control, on_epoch=on_epoch)
    model.head.load_state_dict({"weight": result.model[1].weight, "bias": result.model[1].bias})
    # the trainer standardised (features / 255 - mean) / std: fold that into the model's buffers
    model.feature_mean.copy_(result.mean.flatten() * 255)
    model.feature_std.copy_(result.std.flatten() * 255)
    return result


def _probe_head(config: TransferConfig, model: TransferModel, log: MetricLog, control: Control) -> None:
    """LP-FT (Kumar et al. 2022): a random head sends large, random gradients into the pretrained blocks in the first
    steps and distorts their features; a linear probe's head starts close to right instead."""
    log.set_progress(stage="training a linear probe for the starting head")
    probe = run_transfer(replace(TransferConfig(), data=config.data, backbone=config.backbone,
                                 image_size=config.image_size, seed=config.seed, device=config.device), control=control)
    model.head.load_state_dict(probe.model.head.state_dict())
    model.feature_mean.copy_(probe.model.feature_mean)
    model.feature_std.copy_(probe.model.feature_std)


def frozen_outputs(model: TransferModel, images: torch.Tensor, views: int, augmenter: Callable | None,
                   device: torch.device, control: Control | None = None, done: Callable[[int], None] | None = None,
                   batch_size: int = 32) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run the frozen blocks over `views` views of (N, 3, H, W) uint8 images: the image, its mirror, then draws of
    `augmenter`. Per view: the frozen blocks' outputs (N, C, h, w) and the whole backbone's features (N, D).
    The control's Stop ends it between batches; `done` hears how many images went through after each batch."""
    captured: list[torch.Tensor] = []
    backbone = model.backbone.to(device).eval().to(memory_format=torch.channels_last)
    cut = next(name for name, module in backbone.named_modules() if module is model.cut())
    backbone = inference_copy(backbone, _example(images, device))
    # a copy: the activation after it may clip its output in place
    handle = backbone.get_submodule(cut).register_forward_hook(lambda module, inputs, output:
                                                               captured.append(output.clone()))
    mean, std = imagenet_stats(device)
    outputs, features = [[] for _ in range(views)], [[] for _ in range(views)]
    try:
        with torch.no_grad():  # not inference_mode: the outputs become training inputs
            for start in range(0, len(images), batch_size):
                if control is not None and control.stop_requested.is_set():
                    raise StoppedBeforeTraining("Stopped while the frozen blocks ran over the photos; nothing was "
                                                "trained.")
                batch = images[start : start + batch_size].to(device).float() / 255
                for view in range(views):
                    x = batch if view == 0 else batch.flip(-1) if view == 1 else augmenter(batch)
                    captured.clear()
                    features[view].append(backbone(((x - mean) / std).contiguous(memory_format=torch.channels_last))
                                          .float().cpu())
                    outputs[view].append(captured[0].float().contiguous().cpu())
                if done is not None:
                    done(len(batch) * views)
    finally:
        handle.remove()
    return [torch.cat(o) for o in outputs], [torch.cat(f) for f in features]


CPU_IMAGES_PER_S = 30  # EfficientNet-Lite0's folded forward pass at 224 px on 2 slow CPU cores (BENCHMARKS.md)


def views_per_photo(config: TransferConfig, split: str) -> int:
    """How many views of each photo of a split the frozen blocks run over: the config's for training; each
    validation and test photo and its mirror."""
    return config.frozen_views if split == "train" else 2


def frozen_pass_minutes(config: TransferConfig, sizes: dict[str, int]) -> tuple[int, float]:
    """The frozen pass's photos and views (given each split's size) and about how many minutes it takes on 2 CPU
    cores at the config's image size."""
    passes = sum(size * views_per_photo(config, split) for split, size in sizes.items())
    return passes, passes / CPU_IMAGES_PER_S * (config.image_size / 224) ** 2 / 60


def _fine_tune_on_frozen_outputs(config: TransferConfig, model: TransferModel, images: datasets.ImageDataset,
                                 device: torch.device, common: dict, log: MetricLog, control: Control,
                                 on_epoch=None) -> tuple[TrainResult, torch.Tensor, float]:
    """Fine-tuning for a CPU: the frozen blocks, most of the work, run once on `frozen_views` views of each training
    image (the image, its mirror, augmented draws) and once on each validation and test image and its mirror; only
    the blocks that train run at every step, on those cached outputs. Each epoch sees every view. Tested on the mean
    of the image and its mirror. Returns the result, the test probabilities and the seconds the frozen blocks took."""
    if not model.frozen:
        raise TrainingError("Caching the frozen blocks' outputs needs frozen blocks: unfreeze fewer blocks.")
    stage = f"the frozen blocks run once over {config.frozen_views} views of each photo"
    total, _ = frozen_pass_minutes(config, {split: len(data) for split, data in images.splits.items()})
    passed = 0

    def done(count: int) -> None:
        nonlocal passed
        passed += count
        log.set_progress(stage=f"{stage} ({passed:,} of {total:,})", stage_fraction=passed / total)

    log.set_progress(stage=stage, stage_fraction=0.0)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    augmenter = (augment.batch_augmenter(augment.load_preset(config.augment_preset), (config.image_size,) * 2, group=4)
                 if config.augment_preset else None)
    outputs, feats = {}, {}
    for split, data in images.splits.items():
        outputs[split], feats[split] = frozen_outputs(model, data.images, views_per_photo(config, split), augmenter,
                                                      device, control, done)
    frozen_seconds = time.perf_counter() - start
    if config.head_from_probe:
        log.set_progress(stage="training a linear probe for the starting head")
        _fit_head(model, images, feats, _common(TransferConfig(seed=config.seed, device=config.device)), MetricLog(),
                  control)
    labels = {split: images.splits[split].labels for split in images.splits}
    trunk_data = datasets.ImageDataset(images.name, images.classes, {
        "train": datasets.Split(torch.cat(outputs["train"]), labels["train"].repeat(config.frozen_views)),
        **{split: datasets.Split(outputs[split][0], labels[split]) for split in ("val", "test")}})
    fine_config = TrainConfig(dataset=images.name, optimizer="sgd", schedule="onecycle", normalisation="none",
                              channels_last=True, amp=True, **common)
    tail = FromFrozenOutput(model)
    save = (lambda _, epochs: on_epoch(model, epochs)) if on_epoch else None  # the run folder keeps the model itself
    result = fit(fine_config, dataset=trunk_data, log=log, control=control, on_epoch=save, model=tail)
    tail.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        probs = torch.stack([torch.cat([torch.softmax(tail(chunk.to(device)).float(), 1).cpu()
                                        for chunk in view.split(64)]) for view in outputs["test"]]).mean(0)
    return result, probs, frozen_seconds


def run_transfer(config: TransferConfig, log: MetricLog | None = None, control: Control | None = None,
                 on_epoch=None) -> TrainResult:
    """Train as the config says; the result's model is a TransferModel that takes ImageNet-normalised images."""
    if config.mode not in MODES:
        raise TrainingError(f"Unknown mode {config.mode!r}; choose one of {', '.join(MODES)}.")
    if config.mode == "partial" and config.frozen_views > 2 and not config.augment_preset:
        raise TrainingError("More than 2 views of each photo need an augmentation preset to draw them from: "
                            "choose one, or use 2 views (each photo and its mirror).")
    log, control = log or MetricLog(), control or Control()
    start = time.perf_counter()
    device = resolve_device(TrainConfig(device=config.device))
    log.set_progress(stage="loading images")
    images = _with_val(load_images(config), config.seed)
    loaded = time.perf_counter()
    pretrained = BACKBONES[config.backbone].load(download_hooks(log, control))
    timings = {"load_seconds": loaded - start, "backbone_seconds": time.perf_counter() - loaded}
    common = _common(config)
    if config.mode == "probe":
        log.set_progress(stage="extracting features (once per dataset and backbone)")
        extract_start = time.perf_counter()
        flips = (False, True) if config.flip_features else (False,)
        feats = {split: [cached_features(config.backbone, pretrained, images, split, device, flip) for flip in flips]
                 for split in images.splits}
        timings["feature_seconds"] = time.perf_counter() - extract_start
        model = TransferModel(pretrained, len(images.classes))
        result = _fit_head(model, images, feats, common, log, control, on_epoch)
        probs = result.test_probs
    else:
        trainable = None if config.mode == "full" else config.unfreeze
        model = TransferModel(pretrained, len(images.classes), trainable)
        if config.mode == "partial" and config.frozen_views:
            result, probs, timings["frozen_seconds"] = _fine_tune_on_frozen_outputs(config, model, images, device,
                                                                                    common, log, control, on_epoch)
        else:
            if config.head_from_probe:
                _probe_head(config, model, log, control)
            fine_config = TrainConfig(dataset=images.name, optimizer="sgd", schedule="onecycle", augment=["flip"],
                                      augment_preset=config.augment_preset, normalisation="imagenet",
                                      channels_last=True, amp=True, tta=config.tta,
                                      backbone_lr_factor=config.backbone_lr_factor if config.mode == "full" else 1.0,
                                      **common)
            result = fit(fine_config, dataset=images, log=log, control=control, on_epoch=on_epoch, model=model)
            probs = result.test_probs
    model = model.cpu().eval()
    test = images.splits["test"]
    acc = (probs.argmax(1) == test.labels).float().mean().item()
    return TrainResult(
        model, images.classes, *imagenet_stats(),
        test.images, test.labels, probs, result.test_loss, acc, result.best_epoch, result.stopped_early,
        result.stopped_by_user, time.perf_counter() - start, result.parameters, extras={
            **timings, "head_seconds": result.seconds})
