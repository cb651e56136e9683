"""Training in this process: the course's own pipeline beside our trainer, the presets' accuracy and time, the
streaming's cost, the layer norms' cost."""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from cnn_lab import data as datasets
from cnn_lab.device import pick_device
from cnn_lab.presets import preset
from cnn_lab.train import fit
from tests.bench.baseline import airbench_row
from tests.bench.common import CPU_PRESETS, ONE_SEED, Row, mean, median, run_config, sync_device
from tests.bench.utilisation import of_training


def course_pipeline_images_per_s(cifar: datasets.ImageDataset, batches: int) -> float:
    """The course's loop: a Dataset of PIL images, per-image ToTensor and Normalize, DataLoader batch 4,
    2 workers, Adam on the course CNN. Measured over `batches` steps after a warm-up."""
    import torchvision.transforms as T
    from PIL import Image

    from cnn_lab.models import build_model, course_spec

    class CourseDataset(torch.utils.data.Dataset):
        def __init__(self, split: datasets.Split):
            self.images = split.images.permute(0, 2, 3, 1).numpy()
            self.labels = split.labels.tolist()
            self.transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int):
            return self.transform(Image.fromarray(self.images[i])), self.labels[i]

    device = pick_device()
    loader = torch.utils.data.DataLoader(CourseDataset(cifar.splits["train"]), batch_size=4, shuffle=True, num_workers=2)
    model = build_model(course_spec("course_cnn"), (3, 32, 32), 10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    start, seen = None, 0
    for i, (x, y) in enumerate(loader):
        if i == 50:  # warm-up done: workers started, kernels loaded
            sync_device()
            start, seen = time.perf_counter(), 0
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # the course prints a running loss, which syncs every step
        seen += len(y)
        if i == 50 + batches:
            break
    sync_device()
    return seen / (time.perf_counter() - start)


def bench_data(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Loading CIFAR-10 from the array cache (the tests check that it decodes nothing; the time is here)."""
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        datasets.load_dataset("cifar10")
        seconds.append(time.perf_counter() - start)
    return [("CIFAR-10 from the decoded cache (60,000 images)", f"{sorted(seconds)[1]:.2f} s median of 3",
             f"runs: {', '.join(f'{s:.2f}' for s in seconds)} s")]


def bench_course(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    batches = 500 if quick else 2500
    course_ips = course_pipeline_images_per_s(cifar, batches)
    config = preset("Course: CNN")
    config.val_fraction = 0.0
    acc, seconds, ours_ips, _ = run_config(config, cifar)
    course_epoch_s = 50_000 / course_ips
    return [
        Row("Course CNN, course pipeline (DataLoader, batch 4, 2 workers)", f"{course_ips:,.0f} img/s",
            f"{course_epoch_s:.0f} s per epoch, so about {5 * course_epoch_s:.0f} s for 5 epochs ({batches} batches "
            "timed)", of_training(replace(config, batch_size=4), course_ips, pick_device())),
        Row("Course CNN, our trainer (whole-tensor batches of 128, same 5 epochs)", f"{ours_ips:,.0f} img/s",
            f"{acc:.1%} test accuracy in {seconds:.1f} s; {ours_ips / course_ips:.1f}x the course pipeline's images/s",
            of_training(config, ours_ips, pick_device())),
    ]


def bench_fast_preset(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    config = preset("Fast CNN (70%+ in 3 min on CPU)")
    if quick:
        config.epochs = 1
    acc, seconds, ips, epochs = run_config(config, cifar)
    reached = next((i for i, e in enumerate(epochs) if (e.val_acc or 0) >= 0.70), None)
    to_70 = "validation accuracy stayed under 70%"
    if reached is not None:
        elapsed = sum(e.seconds for e in epochs[: reached + 1])
        to_70 = f"validation accuracy reached 70% after epoch {reached + 1}, at {elapsed:.0f} s"
    return [Row(f"Fast CNN preset ({config.epochs} epochs)", f"{acc:.1%} in {seconds:.0f} s", f"{ips:,.0f} img/s; {to_70}",
                of_training(config, ips, pick_device()))]


def bench_cpu_presets(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Issue 18's CPU targets: each CPU preset over seeds 0-2 (test accuracy, and the wall time of fit() from the
    decoded cache: moving the data, whitening, training and the test pass), beside today's Fast CNN recipe."""
    rows = []
    for name in CPU_PRESETS[:1] if quick else CPU_PRESETS:
        accs, walls, vals, speeds = [], [], [], []
        for seed in (0,) if quick or name in ONE_SEED else (0, 1, 2):
            config = replace(preset(name), seed=seed)
            start = time.perf_counter()
            acc, _, ips, epochs = run_config(config, cifar)
            walls.append(time.perf_counter() - start)
            accs.append(acc)
            vals.append(epochs[-1].val_acc or 0)
            speeds.append(ips)
        rows.append(Row(f"{name} ({preset(name).epochs} epochs), seeds 0-{len(accs) - 1}",
                        f"{mean(accs):.1%} in {mean(walls):.0f} s",
                        f"test {', '.join(f'{a:.1%}' for a in accs)}; wall {', '.join(f'{w:.0f}' for w in walls)} s; "
                        + (f"last validation {mean(vals):.1%}; " if all(vals) else "") + f"{mean(speeds):,.0f} img/s",
                        of_training(config, mean(speeds), pick_device())))
    return rows


def bench_speedrun(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    config = preset("Speedrun (GPU)")
    if not torch.cuda.is_available():
        return [("Speedrun preset", "skipped", "needs a GPU (it runs on CPU, slowly, from the page)")]
    run_config(replace(config, epochs=1), cifar)  # warm-up: kernels, cuDNN autotuning
    rows = []
    for subscriber in (False, True) if quick else (False, False, True, True):
        acc, seconds, ips, _ = run_config(config, cifar, subscriber)
        how = "the train page's curves streaming" if subscriber else "headless"
        rows.append(Row(f"Speedrun preset ({config.epochs} epochs, TTA), {how}", f"{acc:.2%} in {seconds:.2f} s",
                        f"{ips:,.0f} img/s", of_training(config, ips, pick_device())))
    return rows + [airbench_row(quick)]  # the peer, in the same run on the same GPU


def bench_streaming(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    config = preset("Course: CNN")
    config.epochs, config.val_fraction = (1 if quick else 3), 0.0
    run_config(replace(config, epochs=1), cifar, subscriber=True)  # warm-up (and plotly imported), for both sides
    # Alternate the two, and which goes first in a pair (headless first, then streamed first, ...), so that neither a
    # slow spell of a shared machine nor a drift over the run falls on one side; the median of the pairs.
    pairs = []
    for pair in range(5):
        order = (False, True) if pair % 2 == 0 else (True, False)  # streamed or not
        seconds = {streamed: run_config(config, cifar, subscriber=streamed)[1] for streamed in order}
        pairs.append((seconds[False], seconds[True]))
    overhead = median([streamed / headless - 1 for headless, streamed in pairs])
    return [("Streaming overhead (course CNN; a thread serves the curves as the server does for a watching page)",
             f"{overhead:+.1%}",
             "median of 5 pairs, run headless first and streamed first in turn (headless, with subscriber): "
             + "; ".join(f"{headless:.1f} s, {streamed:.1f} s" for headless, streamed in pairs))]


def norms_overhead(cifar: datasets.ImageDataset, pairs: int) -> list[Row]:
    """Training with each layer's weight and gradient norms sampled (as always) against without, alternating."""
    config = preset("Course: CNN")
    config.epochs, config.max_train, config.val_fraction = 2, 20_000, 0.0
    seconds = {"with": [], "without": []}
    for _ in range(pairs):
        for which in ("with", "without"):
            seconds[which].append(fit(config, dataset=cifar, layer_norms=which == "with").seconds)
    with_, without = median(seconds["with"]), median(seconds["without"])
    return [("Each layer's weight and gradient norm, sampled while training (course CNN, 20,000 images, 2 epochs)",
             f"{with_ / without - 1:+.1%}", f"median of {pairs} alternating pairs: {with_:.2f} s with, "
             f"{without:.2f} s without")]
