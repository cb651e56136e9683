"""The training loop, split as torchvision's classification reference splits it: `fit` sets a run up and goes
through its epochs, `train_one_epoch` runs one epoch's steps, `evaluate` measures a split. The data lives on the
device as one uint8 tensor and is batched by indexing; augmentation is batched too, so the loop does no per-image
Python work. Metrics go to a MetricLog about twice a second, one device sync for many steps."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab import augment
from cnn_lab import data as datasets
from cnn_lab.device import bf16, inference_batch, pick_device
from cnn_lab.downloads import Reporter
from cnn_lab.metrics import Control, EpochRecord, MetricLog, NormTrace
from cnn_lab.models import build_model, count_parameters
from cnn_lab.train.config import TrainConfig, TrainingError
from cnn_lab.train.device_data import DeviceData, to_device
from cnn_lab.train import resume
from cnn_lab.train.optim import OPTIMIZERS, SCHEDULES, param_groups, set_lr
from cnn_lab.train.resume import Saving
from cnn_lab.train.state import EarlyStopping, Training
from cnn_lab.train.tricks import Lookahead, whiten_init

# Cross-entropy starts near ln(classes) (2.3 for 10 classes); above this, the logits are thousands apart and
# training has diverged even where the loss has not yet overflowed to inf or NaN.
EXPLODED_LOSS = 1e4
PUBLISH_SECONDS = 0.5  # how often the loop syncs with the device to publish its losses


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


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    probs: torch.Tensor  # (N, classes)


def download_reporter(log: MetricLog, control: Control) -> Reporter:
    """A download on the way to training shows in the job's progress, and the job's Stop cancels it."""
    return Reporter(report=lambda progress: log.set_progress(stage=progress.text(), stage_fraction=progress.fraction),
                 cancel=control.stop_requested)


def resolve_device(config: TrainConfig) -> torch.device:
    return pick_device() if config.device == "auto" else torch.device(config.device)


def autocast(config: TrainConfig, device: torch.device) -> torch.autocast:
    """bf16 when the config asks and the device computes it fast (device.fast_bf16)."""
    return bf16(device, config.amp)


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData, split: datasets.Split, config: TrainConfig) -> Evaluation:
    """Mean loss, accuracy and the (N, classes) probabilities; with config.tta, flip and shift views are averaged."""
    model.eval()
    device = split.images.device
    # on a CPU: 196 CIFAR-10 images at once (as fast as the 256 before), photos a few at a time (inference_batch)
    batch_size = inference_batch(device, split.images.shape, most=1024 if device.type == "cuda" else 256)
    views = augment.TTA_VIEWS.values() if config.tta else [augment.TTA_VIEWS["original"]]
    probs = []
    for start in range(0, len(split), batch_size):
        x = data.normalise(split.images[start : start + batch_size], config.channels_last)
        # In the training steps' precision: bf16 where the run trains in it (autocast), since such a run's seconds
        # count. On a CPU, the 90% preset's test pass in float32 took a tenth of its run (docs/benchmarks-log.md,
        # 4 Dec).
        # The pages recompute the saved model's answers in float32, which differ in a few images of 10,000.
        with autocast(config, x.device):
            logits = torch.stack([model(view(x)).float() for view in views]).mean(0)
        probs.append(torch.softmax(logits, 1))
    p = torch.cat(probs)
    loss = F.nll_loss(torch.log(p.clamp_min(1e-12)), split.labels).item()
    return Evaluation(loss, (p.argmax(1) == split.labels).float().mean().item(), p)


def _inputs(config: TrainConfig, data: DeviceData) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """How a batch is made from its indices: the augmentation page's pipeline (on [0, 1] images, 16 draws per
    batch) or plain standardisation, then the batched flips and crops, then a random window of `window` pixels
    when one is asked for (progressive resizing), then channels_last when asked."""
    size = tuple(data.train.images.shape[-2:])
    preset = (augment.batch_augmenter(augment.load_preset(config.augment_preset), size,
                                      group=max(1, config.batch_size // 16)) if config.augment_preset else None)
    batched = [augment.BATCHED_AUGMENTS[name] for name in config.augment]

    def make(index: torch.Tensor, window: int = 0) -> torch.Tensor:
        images = data.train.images[index]
        x = (preset(images.float() / 255) - data.mean) / data.std if preset else data.normalise(images)
        for transform in batched:
            x = transform(x, config.crop_padding)
        if window:
            x = augment.random_window(x, window)
        return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x

    return make


def prepare(config: TrainConfig, data: DeviceData, log: MetricLog, control: Control, model: nn.Module | None,
            layer_norms: bool) -> Training:
    """The model on the device (built from the config unless given), its optimizer and the tricks the config asks
    for; the run's size and model published to the log."""
    device = data.train.images.device
    n_train = len(data.train)
    if config.batch_size > n_train:
        raise TrainingError(f"The batch size ({config.batch_size}) is larger than the training set ({n_train} images): "
                            f"choose at most {n_train}.")
    model = (model or build_model(config.model, tuple(data.train.images.shape[1:]), len(data.classes))).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    stem = next(m for m in model.modules() if isinstance(m, nn.Conv2d)) if config.whiten else None
    if stem is not None:
        whiten_init(stem, data.normalise(data.train.images[:5000]).float())
    watched = weight_layers(model)
    training = Training(config, data, model, OPTIMIZERS[config.optimizer](param_groups(model, config), config), log,
                        control, _inputs(config, data), stem, Lookahead(model) if config.lookahead else None,
                        watched, NormTrace(list(watched)) if layer_norms else None,
                        steps_per_epoch=n_train // config.batch_size)  # the last partial batch is dropped
    log.set_progress(epoch=0, epochs=config.epochs, step=0, total_steps=training.total_steps,
                     parameters=count_parameters(model), device=str(device), mean=data.mean.flatten().tolist(),
                     std=data.std.flatten().tolist())
    return training


def train_one_epoch(training: Training, epoch: int) -> EpochRecord | None:
    """One pass over the training images in a new random order; the epoch's record, or None when the user stopped
    the run during it (the steps it took are published)."""
    config, data, model = training.config, training.data, training.model
    model.train()
    if training.stem is not None and training.stem.bias is not None and config.whiten_bias_epochs is not None:
        # A frozen stem needs no gradient below the next conv: on a CPU that skips a quarter of each step.
        training.stem.bias.requires_grad_(epoch <= config.whiten_bias_epochs)
    epoch_start = last_publish = time.perf_counter()
    training.pace.restart(training.step, epoch_start - training.start)  # the evaluation pass is not a step
    order = torch.randperm(len(data.train), device=data.train.images.device)
    window = config.small_size if epoch <= config.small_epochs else 0  # progressive resizing's cheaper epochs
    pending: list[tuple[int, torch.Tensor, float]] = []  # (step, loss on the device, lr): synced when published
    correct = loss_sum = torch.zeros((), device=data.train.images.device)
    for batch in range(training.steps_per_epoch):
        if not training.control.running.is_set():  # paused: the wait is not a step either
            training.control.wait_if_paused()
            training.pace.restart(training.step, time.perf_counter() - training.start)
        if training.control.stop_requested.is_set():
            _publish(pending, training, epoch)
            return None
        lr = config.lr * SCHEDULES[config.schedule](training.step / max(1, training.total_steps))
        index = order[batch * config.batch_size : (batch + 1) * config.batch_size]
        y = data.train.labels[index]
        loss, logits = _step(training, training.inputs(index, window), y, lr)
        loss_sum, correct = loss_sum + loss, correct + (logits.argmax(1) == y).sum()
        pending.append((training.step, loss, lr))
        if time.perf_counter() - last_publish > PUBLISH_SECONDS or batch == training.steps_per_epoch - 1:
            _publish(pending, training, epoch)
            pending, last_publish = [], time.perf_counter()
    seconds = time.perf_counter() - epoch_start
    seen = max(1, training.steps_per_epoch * config.batch_size)
    val_loss = val_acc = None
    if data.val is not None:
        val = evaluate(model, data, data.val, config)
        val_loss, val_acc = val.loss, val.accuracy
    return EpochRecord(epoch, loss_sum.item() / max(1, training.steps_per_epoch), correct.item() / seen,
                       val_loss, val_acc, lr, seconds, seen / seconds)


def _step(training: Training, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on one batch; its loss (still on the device) and logits."""
    set_lr(training.optimizer, lr)
    try:
        with autocast(training.config, x.device):
            logits = training.model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=training.config.label_smoothing)
        training.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        training.optimizer.step()
    except torch.OutOfMemoryError:  # the job manager empties the CUDA cache when the job ends
        raise TrainingError(f"The GPU ran out of memory at batch size {training.config.batch_size}: choose a smaller "
                            "batch or model.") from None
    training.step += 1
    if training.lookahead and training.step % Lookahead.every == 0:
        training.lookahead.update(training.step / training.total_steps)
    return loss.detach(), logits


def fit(config: TrainConfig, dataset: datasets.ImageDataset | None = None, log: MetricLog | None = None,
        control: Control | None = None, saving: Saving | None = None, model: nn.Module | None = None,
        layer_norms: bool = True) -> TrainResult:
    """Train as `config` says (or the given `model`): metrics go to `log`, `control` pauses or stops, `saving`
    keeps each epoch (and resumes a run from its checkpoint). `layer_norms` samples each layer's weight and
    gradient norm as the loop publishes (the train page's chart of vanishing gradients; off only to measure what
    it costs). A resumed run's `log` already holds its earlier epochs."""
    config.validate()
    log, control = log or MetricLog(), control or Control()
    device = resolve_device(config)
    torch.manual_seed(config.seed)
    dataset = dataset or datasets.load_dataset(config.dataset, download_reporter(log, control))
    training = prepare(config, to_device(dataset, config, device), log, control, model, layer_norms)
    early, stopped_early, stopped_by_user = EarlyStopping(config.patience), False, False
    done = resume.restore(saving.resume_from, training, early) if saving and saving.resume_from else 0
    for epoch in range(done + 1, config.epochs + 1):
        record = train_one_epoch(training, epoch)
        if record is None:
            stopped_by_user = True
            break
        log.add_epoch(record)
        stopped_early = early.should_stop(record, training.model)
        if saving:  # after early stopping's bookkeeping, which the checkpoint holds
            epochs = log.snapshot().epochs
            saving.on_epoch(training.model, epochs, resume.capture(training, early, epochs))
        if stopped_early:
            break
    if early.best_state is not None:
        training.model.load_state_dict(early.best_state)
    data, model = training.data, training.model
    test = evaluate(model, data, data.test, config)
    return TrainResult(model, data.classes, data.mean.cpu(), data.std.cpu(), data.test.images.cpu(),
                       data.test.labels.cpu(), test.probs.cpu(), test.loss, test.accuracy,
                       early.best_epoch or len(log.epochs), stopped_early, stopped_by_user,
                       time.perf_counter() - training.start, count_parameters(model))


def weight_layers(model: nn.Module) -> dict[str, nn.Parameter]:
    """The trainable weights of the convolutions and linear layers, by their layer's name, input to output."""
    return {f"{name} ({type(module).__name__})": module.weight for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.requires_grad}


def _publish(pending: list[tuple[int, torch.Tensor, float]], training: Training, epoch: int) -> None:
    """The steps since the last publish to the log (one device sync for all of them), each layer's norms, the
    speed and the ETA; a loss that is not finite, or has exploded, ends the run with one sentence."""
    if not pending:
        return
    log, config = training.log, training.config
    losses = torch.stack([loss for _, loss, _ in pending]).tolist()
    log.add_steps([(step, value, lr) for (step, _, lr), value in zip(pending, losses)])
    bad = next(((step, value) for (step, _, _), value in zip(pending, losses)
                if not math.isfinite(value) or value > EXPLODED_LOSS), None)
    if bad:
        raise TrainingError(f"The loss became {bad[1]:.3g} at step {bad[0]}: the learning rate {config.lr:g} is too "
                            f"high for this model; try {config.lr / 10:g}.")
    if training.norms is not None:
        _sample_norms(training.watched, training.norms, training.step)
    elapsed = time.perf_counter() - training.start
    training.pace.update(training.step, elapsed)
    log.set_progress(epoch=epoch, step=training.step, elapsed=elapsed,
                     images_per_s=training.pace.images_per_s(config.batch_size, training.step, elapsed),
                     eta=training.pace.eta(training.step, training.total_steps, elapsed),
                     layer_norms=training.norms.as_dict() if training.norms is not None else None)


def _sample_norms(watched: dict[str, nn.Parameter], norms: NormTrace, step: int) -> None:
    """One sample of every layer's weight and gradient norm: one device sync, when the trainer publishes."""
    params = list(watched.values())
    if not params:
        return
    weight = torch.stack([p.detach().norm() for p in params])
    grad = torch.stack([p.grad.detach().norm() if p.grad is not None else weight.new_zeros(()) for p in params])
    weight_values, grad_values = torch.stack([weight, grad]).tolist()
    norms.add(step, weight_values, grad_values)
