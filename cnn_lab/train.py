"""TrainConfig and the training loop. The data lives on the device as one uint8 tensor and is batched by
indexing; augmentation is batched too, so the loop does no per-image Python work."""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab import augment
from cnn_lab import data as datasets
from cnn_lab.augment import TTA_VIEWS
from cnn_lab.device import pick_device
from cnn_lab.downloads import Hooks
from cnn_lab.metrics import Control, EpochRecord, MetricLog, NormTrace, Pace
from cnn_lab.models import ModelSpec, build_model, count_parameters
from cnn_lab.normalise import imagenet_stats, normalise


class TrainingError(RuntimeError):
    """A run that cannot go on (NaN loss, out of memory, impossible settings); the message is one sentence."""


@dataclass
class TrainConfig:
    dataset: str = "cifar10"
    model: ModelSpec = field(default_factory=ModelSpec)
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 256
    epochs: int = 5
    schedule: str = "onecycle"  # constant | step | cosine | onecycle
    label_smoothing: float = 0.0
    augment: list[str] = field(default_factory=list)  # from AUGMENTS: "flip", "crop"
    augment_preset: str = ""  # a pipeline saved on the augmentation page, applied batched on the device
    crop_padding: int = 4  # the "crop" augmentation's reflect padding: shifts of up to this many pixels
    patience: int = 0  # early stopping on the validation loss, in epochs; 0 = off
    val_fraction: float = 0.1  # carved from train when the dataset has no validation split
    max_train: int = 0  # use only this many training images (0 = all), for quick runs
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = False
    amp: bool = False  # bf16 autocast on the GPU (slower on CPU, so ignored there)
    whiten: bool = False  # initialise the first conv as a patch-whitening filter bank (speedrun)
    whiten_bias_epochs: int | None = None  # its bias trains this many epochs, then freezes (airbench: 3); None = all
    tta: bool = False  # evaluate the test set with flipped and shifted views too
    normalisation: str = "dataset"  # from NORMALISATIONS: dataset | course (0.5, 0.5) | imagenet
    backbone_lr_factor: float = 1.0  # discriminative learning rates: the backbone's lr is lr times this
    bias_lr_factor: float = 1.0  # biases and batch-norm shifts learn this many times faster (airbench's scaled biases)
    lookahead: bool = False  # every 5 steps, pull the weights to their running average (airbench's lookahead)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | dict) -> "TrainConfig":
        values = json.loads(text) if isinstance(text, str) else dict(text)
        values["model"] = ModelSpec.from_dict(values.get("model", {}))
        return cls(**values)

    def validate(self) -> None:
        if self.epochs < 1:
            raise TrainingError("Set at least 1 epoch: with 0 epochs there is nothing to train.")
        if self.batch_size < 1:
            raise TrainingError("The batch size must be at least 1.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError("The learning rate must be a positive number.")
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"Unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"Unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}.")
        if self.whiten_bias_epochs is not None and not (isinstance(self.whiten_bias_epochs, int)
                                                        and self.whiten_bias_epochs >= 0):
            raise TrainingError("whiten_bias_epochs takes a whole number of epochs (0 or more), or null for all of "
                                f"them, not {self.whiten_bias_epochs!r}.")
        if self.normalisation not in NORMALISATIONS:
            raise TrainingError(f"Unknown normalisation {self.normalisation!r}; choose one of "
                                f"{', '.join(NORMALISATIONS)}.")


# ---------------------------------------------------------------- data on the device


@dataclass
class DeviceData:
    """Every split as uint8 on the device, plus the per-channel mean and std of the training images."""

    train: datasets.Split
    val: datasets.Split | None
    test: datasets.Split
    mean: torch.Tensor  # (1, C, 1, 1) float
    std: torch.Tensor
    classes: list[str]

    def normalise(self, images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 images -> standardised floats (per-channel mean 0, std 1 over the training set)."""
        x = normalise(images, self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _own_mean_std(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each channel's mean and std; of uint8 images from each channel's histogram of its 256 values (exact, with
    no float copy of the whole set: 0.2 s instead of 1.4 s for CIFAR-10 on a CPU)."""
    if images.dtype == torch.uint8:
        counts = torch.stack([torch.bincount(c.flatten(), minlength=256) for c in images.transpose(0, 1)]).double()
        values = torch.arange(256, dtype=torch.float64, device=images.device) / 255
        n = counts.sum(1)
        mean = counts @ values / n
        std = ((counts @ values**2 / n - mean**2).clamp_min(0) * n / (n - 1)).sqrt()
    else:  # a frozen backbone's features, scaled like pixels
        floats = images.float() / 255
        mean, std = floats.mean(dim=(0, 2, 3)), floats.std(dim=(0, 2, 3))
    return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1).clamp_min(1e-3)


@dataclass(frozen=True)
class Normalisation:
    title: str
    mean_std: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # uint8 train images -> (1, C, 1, 1) each


NORMALISATIONS: dict[str, Normalisation] = {
    "dataset": Normalisation("the dataset's own mean and std per channel", _own_mean_std),
    "course": Normalisation("the course's Normalize(0.5, 0.5): pixels to [-1, 1]",
                            lambda images: (torch.full((1, images.shape[1], 1, 1), 0.5),) * 2),
    "imagenet": Normalisation("ImageNet's mean and std (what pretrained backbones expect)",
                              lambda images: imagenet_stats()),
    # the trainer divides by 255 first, so a std of 1/255 gives the inputs back as they are
    "none": Normalisation("none: the inputs are features already (a frozen backbone's cached outputs)",
                          lambda images: (torch.zeros(1, images.shape[1], 1, 1),
                                          torch.full((1, images.shape[1], 1, 1), 1 / 255))),
}


def to_device(dataset: datasets.ImageDataset, config: TrainConfig, device: torch.device) -> DeviceData:
    train = dataset.splits["train"]
    if config.max_train and config.max_train < len(train):
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))[: config.max_train]
        train = datasets.split_of(train, keep)
    val = dataset.splits.get("val")
    if val is None and config.val_fraction > 0:
        parts = datasets.stratified_split(
            train.labels, {"train": 1 - config.val_fraction, "val": config.val_fraction}, config.seed
        )
        train, val = datasets.split_of(train, parts["train"]), datasets.split_of(train, parts["val"])
    mean, std = NORMALISATIONS[config.normalisation].mean_std(train.images)

    def move(split: datasets.Split | None) -> datasets.Split | None:
        return None if split is None else datasets.Split(split.images.to(device), split.labels.to(device))

    return DeviceData(move(train), move(val), move(dataset.splits["test"]), mean.to(device), std.to(device),
                      dataset.classes)


# ---------------------------------------------------------------- batched augmentation


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip a random half of the batch left-right."""
    flip = torch.rand(len(x), device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def random_crop(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with reflect padding (the CIFAR classic), a different shift per image, in one gather."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device, generator=generator)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).expand(n, h, w)
    index = (rows * (w + 2 * pad) + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


AUGMENTS: dict[str, Callable[[torch.Tensor, TrainConfig], torch.Tensor]] = {
    "flip": lambda x, config: random_flip(x),
    "crop": lambda x, config: random_crop(x, config.crop_padding),
}


# ---------------------------------------------------------------- optimizers and schedules


def _param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """No weight decay on biases and norm layers, as in torchvision's reference recipes; they learn
    `bias_lr_factor` times faster. A model with a `backbone` gets its backbone's learning rate scaled by
    `backbone_lr_factor` (discriminative rates)."""
    backbone = {id(p) for p in model.backbone.parameters()} if hasattr(model, "backbone") else set()
    groups = []
    for scale, members in ((config.backbone_lr_factor, lambda p: id(p) in backbone), (1.0, lambda p: id(p) not in backbone)):
        params = [p for p in model.parameters() if p.requires_grad and members(p)]
        groups += [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay, "lr_scale": scale},
                   {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0,
                    "lr_scale": scale * config.bias_lr_factor}]
    return [g for g in groups if g["params"]]


OPTIMIZERS: dict[str, Callable[[list[dict], TrainConfig], torch.optim.Optimizer]] = {
    "sgd": lambda groups, c: torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0),
    "adam": lambda groups, c: torch.optim.Adam(groups, lr=c.lr),
    "adamw": lambda groups, c: torch.optim.AdamW(groups, lr=c.lr),
}

# Each schedule maps progress in [0, 1] to a multiplier of the base learning rate.
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda t: 1.0,
    "step": lambda t: 0.1 ** int(t * 3 - 1e-9),  # divide by 10 at 1/3 and 2/3
    "cosine": lambda t: 0.5 * (1 + math.cos(math.pi * t)),
    "onecycle": lambda t: t / 0.25 if t < 0.25 else (1 - t) / 0.75,  # linear warm-up, linear decay to 0
}


def whiten_init(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set a k x k conv (with 2 * k*k*C outputs) to whiten image patches: PCA directions over sqrt(eigenvalue),
    each with both signs. One of airbench's tricks; the layer is then frozen."""
    c, k = conv.in_channels, conv.kernel_size[0]
    patches = images.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
    patches = patches - patches.mean(0)
    eigenvalues, eigenvectors = torch.linalg.eigh((patches.T @ patches / len(patches)).double())
    filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).view(-1, c, k, k)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([filters, -filters]).float()[: conv.out_channels])
        conv.weight.requires_grad_(False)


class Lookahead:
    """airbench's lookahead: every few steps the weights move to a running average of themselves. The average
    leans on the past more as training ends (its decay grows as progress cubed), which steadies the last epochs."""

    every = 5

    def __init__(self, model: nn.Module):
        # state_dict's tensors share storage with the model's: copying into them sets the model's weights
        self.weights = [v for v in model.state_dict().values() if v.is_floating_point()]
        self.average = [v.clone() for v in self.weights]

    @torch.no_grad()
    def update(self, progress: float) -> None:
        decay = 0.95**self.every * progress**3
        for average, weight in zip(self.average, self.weights):
            average.lerp_(weight, 1 - decay)
            weight.copy_(average)


def download_hooks(log: MetricLog, control: Control) -> Hooks:
    """A download on the way to training shows in the job's progress, and the job's Stop cancels it."""
    return Hooks(report=lambda progress: log.set_progress(stage=progress.text(), stage_fraction=progress.fraction),
                 cancel=control.stop_requested)


@dataclass
class TrainResult:
    model: nn.Module
    classes: list[str]
    mean: torch.Tensor  # (1, C, 1, 1) the normalisation the model expects, on the CPU
    std: torch.Tensor
    test_images: torch.Tensor  # uint8, CPU
    test_labels: torch.Tensor
    test_probs: torch.Tensor  # (N, classes), CPU
    test_loss: float
    test_acc: float
    best_epoch: int
    stopped_early: bool
    stopped_by_user: bool
    seconds: float
    parameters: int
    extras: dict = field(default_factory=dict)  # e.g. the transfer run's feature-extraction time


# ---------------------------------------------------------------- the loop


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData, split: datasets.Split,
             config: TrainConfig) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and the (N, classes) probabilities; with config.tta, flip and shift views are averaged."""
    model.eval()
    batch_size = 1024 if split.images.device.type == "cuda" else 256  # a CPU's caches hold 256 (1.7x faster here)
    probs = []
    for start in range(0, len(split), batch_size):
        x = data.normalise(split.images[start : start + batch_size], config.channels_last)
        with _autocast(config, x.device):
            views = TTA_VIEWS.values() if config.tta else [TTA_VIEWS["original"]]
            logits = torch.stack([model(view(x)).float() for view in views]).mean(0)
        probs.append(torch.softmax(logits, 1))
    p = torch.cat(probs)
    loss = F.nll_loss(torch.log(p.clamp_min(1e-12)), split.labels).item()
    acc = (p.argmax(1) == split.labels).float().mean().item()
    return loss, acc, p


def _autocast(config: TrainConfig, device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda")


def resolve_device(config: TrainConfig) -> torch.device:
    return pick_device() if config.device == "auto" else torch.device(config.device)


def train(
    config: TrainConfig,
    dataset: datasets.ImageDataset | None = None,
    log: MetricLog | None = None,
    control: Control | None = None,
    on_epoch: Callable[[nn.Module, list[EpochRecord]], None] | None = None,
    model: nn.Module | None = None,
) -> TrainResult:
    """Train as `config` says (or the given `model`); metrics go to `log`, `control` pauses or stops,
    `on_epoch` saves progress."""
    config.validate()
    log, control = log or MetricLog(), control or Control()
    device = resolve_device(config)
    torch.manual_seed(config.seed)
    dataset = dataset or datasets.load_dataset(config.dataset, download_hooks(log, control))
    data = to_device(dataset, config, device)
    n_train = len(data.train)
    if config.batch_size > n_train:
        raise TrainingError(
            f"The batch size ({config.batch_size}) is larger than the training set ({n_train} images): "
            f"choose at most {n_train}."
        )
    model = (model or build_model(config.model, tuple(data.train.images.shape[1:]), len(data.classes))).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    stem = next(m for m in model.modules() if isinstance(m, nn.Conv2d)) if config.whiten else None
    if stem is not None:
        whiten_init(stem, data.normalise(data.train.images[:5000]).float())
    optimizer = OPTIMIZERS[config.optimizer](_param_groups(model, config), config)
    schedule = SCHEDULES[config.schedule]
    lookahead = Lookahead(model) if config.lookahead else None
    steps_per_epoch = n_train // config.batch_size  # drop the last partial batch, as most recipes do
    total_steps = steps_per_epoch * config.epochs
    log.set_progress(epoch=0, epochs=config.epochs, step=0, total_steps=total_steps, parameters=count_parameters(model),
                     device=str(device), mean=data.mean.flatten().tolist(), std=data.std.flatten().tolist())
    augments = [AUGMENTS[name] for name in config.augment]
    preset = (augment.batch_augmenter(augment.load_preset(config.augment_preset), tuple(data.train.images.shape[-2:]),
                                      group=max(1, config.batch_size // 16))  # 16 draws per batch
              if config.augment_preset else None)

    best_loss, best_state, best_epoch, bad_epochs = math.inf, None, 0, 0
    stopped_early = stopped_by_user = False
    step, start, pace = 0, time.perf_counter(), Pace()
    weighted = _weight_layers(model)
    norms = NormTrace(list(weighted))
    for epoch in range(1, config.epochs + 1):
        model.train()
        if stem is not None and stem.bias is not None and config.whiten_bias_epochs is not None:
            # A frozen stem needs no gradient below the next conv: on a CPU that skips a quarter of each step.
            stem.bias.requires_grad_(epoch <= config.whiten_bias_epochs)
        epoch_start = time.perf_counter()
        order = torch.randperm(n_train, device=device)
        pending: list[tuple[int, torch.Tensor, float]] = []
        correct = torch.zeros((), device=device)
        loss_sum = torch.zeros((), device=device)
        last_publish = time.perf_counter()
        for batch in range(steps_per_epoch):
            control.wait_if_paused()
            if control.stop_requested.is_set():
                stopped_by_user = True
                break
            lr = config.lr * schedule(step / max(1, total_steps))
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            index = order[batch * config.batch_size : (batch + 1) * config.batch_size]
            if preset:  # the augmentation page's pipeline works on [0, 1] images
                x = (preset(data.train.images[index].float() / 255) - data.mean) / data.std
            else:
                x = data.normalise(data.train.images[index])
            for batched in augments:
                x = batched(x, config)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = data.train.labels[index]
            try:
                with _autocast(config, device):
                    logits = model(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            except torch.OutOfMemoryError:  # the job manager empties the CUDA cache when the job ends
                raise TrainingError(
                    f"The GPU ran out of memory at batch size {config.batch_size}: choose a smaller batch or model."
                ) from None
            step += 1
            if lookahead and step % Lookahead.every == 0:
                lookahead.update(step / total_steps)
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == y).sum()
            pending.append((step, loss.detach(), lr))
            # Publish about twice a second: one device sync for many steps, never one per step.
            if time.perf_counter() - last_publish > 0.5 or batch == steps_per_epoch - 1:
                _publish(pending, log, config)
                _sample_norms(weighted, norms, step)
                pending, last_publish = [], time.perf_counter()
                elapsed = time.perf_counter() - start
                pace.update(step, elapsed)
                log.set_progress(epoch=epoch, step=step, elapsed=elapsed,
                                 images_per_s=step * config.batch_size / elapsed,
                                 eta=pace.eta(step, total_steps, elapsed), layer_norms=norms.as_dict())
        if stopped_by_user:
            _publish(pending, log, config)
            break
        seconds = time.perf_counter() - epoch_start
        seen = max(1, steps_per_epoch * config.batch_size)
        val_loss, val_acc = (None, None) if data.val is None else evaluate(model, data, data.val, config)[:2]
        record = EpochRecord(epoch, loss_sum.item() / max(1, steps_per_epoch), correct.item() / seen, val_loss,
                             val_acc, lr, seconds, seen / seconds)
        log.add_epoch(record)
        if on_epoch:
            on_epoch(model, log.snapshot().epochs)
        if val_loss is not None and config.patience:
            if val_loss < best_loss:
                best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= config.patience:
                    stopped_early = True
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    test_loss, test_acc, probs = evaluate(model, data, data.test, config)
    return TrainResult(
        model, data.classes, data.mean.cpu(), data.std.cpu(), data.test.images.cpu(), data.test.labels.cpu(),
        probs.cpu(), test_loss, test_acc, best_epoch or len(log.epochs), stopped_early, stopped_by_user,
        time.perf_counter() - start, count_parameters(model),
    )


def _weight_layers(model: nn.Module) -> dict[str, nn.Parameter]:
    """The trainable weights of the convolutions and linear layers, by their layer's name, input to output."""
    return {f"{name} ({type(module).__name__})": module.weight for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.requires_grad}


def _sample_norms(weighted: dict[str, nn.Parameter], norms: NormTrace, step: int) -> None:
    """One sample of every layer's weight and gradient norm: one device sync, when the trainer publishes."""
    if not weighted:
        return
    params = list(weighted.values())
    weight = torch.stack([p.detach().norm() for p in params])
    grad = torch.stack([p.grad.detach().norm() if p.grad is not None else weight.new_zeros(()) for p in params])
    weight_values, grad_values = torch.stack([weight, grad]).tolist()
    norms.add(step, weight_values, grad_values)


# Cross-entropy starts near ln(classes) (2.3 for 10 classes); above this, the logits are thousands apart and
# training has diverged even where the loss has not yet overflowed to inf or NaN.
EXPLODED_LOSS = 1e4


def _publish(pending: list[tuple[int, torch.Tensor, float]], log: MetricLog, config: TrainConfig) -> None:
    if not pending:
        return
    losses = torch.stack([loss for _, loss, _ in pending]).tolist()
    log.add_steps([(step, value, lr) for (step, _, lr), value in zip(pending, losses)])
    bad = next(((step, value) for (step, _, _), value in zip(pending, losses)
                if not math.isfinite(value) or value > EXPLODED_LOSS), None)
    if bad:
        raise TrainingError(
            f"The loss became {bad[1]:.3g} at step {bad[0]}: the learning rate {config.lr:g} is too high for this "
            f"model; try {config.lr / 10:g}."
        )
