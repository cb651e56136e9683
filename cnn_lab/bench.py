"""Benchmarks, measured side by side in one run on the current machine, written to BENCHMARKS.md.

Each benchmark returns rows of (what, figure, note). The course's own recipe is measured in the same run
as ours, so the ratios hold on any machine.
"""
from __future__ import annotations

import platform
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from cnn_lab import data as datasets
from cnn_lab import downloads
from cnn_lab.normalise import IMAGENET_MEAN, IMAGENET_STD
from cnn_lab.device import describe_device, pick_device
from cnn_lab.metrics import EpochRecord, MetricLog
from cnn_lab.presets import preset
from cnn_lab.train import TrainConfig, TrainResult, fit

Row = tuple[str, str, str]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


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
            _sync()
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
    _sync()
    return seen / (time.perf_counter() - start)


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


def bench_data(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Loading CIFAR-10 from the array cache (the tests check that it decodes nothing; the time is here)."""
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        datasets.load_dataset("cifar10")
        seconds.append(time.perf_counter() - start)
    return [("CIFAR-10 from the decoded cache (60,000 images)", f"{sorted(seconds)[1]:.2f} s median of 3",
             f"runs: {', '.join(f'{s:.2f}' for s in seconds)} s")]


def median(values: list[float]) -> float:
    """The middle value (the upper one of an even count)."""
    return sorted(values)[len(values) // 2]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def bench_ray(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """The Ray executor against the thread executor on the same runs: the cluster's start, the time from Start
    to the first step, and images/s per epoch (median)."""
    from cnn_lab import jobs
    from cnn_lab.jobs import ray_executor
    from cnn_lab.models import ModelSpec
    from cnn_lab.settings import Settings

    start = time.perf_counter()
    ray_executor.connect("local")
    rows: list[Row] = [("Ray: start or join this machine's cluster", f"{time.perf_counter() - start:.1f} s", "once")]
    course = preset("Course: CNN")
    course.epochs, course.max_train, course.val_fraction = 2, 10_000 if quick else 20_000, 0.0
    runs_to_time = {
        "digits CNN, 30 epochs": TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32]), epochs=30,
                                             batch_size=64, device="cpu"),
        f"course CNN on {course.max_train:,} CIFAR-10 images, 2 epochs": course,
    }

    def resources(config) -> int:
        return ray_executor.resources("train", config)["num_cpus"]

    def timed_run(settings: Settings, config: TrainConfig) -> tuple[float, list[float], float]:
        """Seconds from Start to the first step, images/s of each epoch, test accuracy."""
        job = jobs.JobManager(settings).submit(config, kind="train")
        submitted = time.perf_counter()
        while not job.log.snapshot().steps and job.alive:
            time.sleep(0.01)
        first_step = time.perf_counter() - submitted
        job.thread.join()
        return first_step, [e.images_per_s for e in job.log.epochs], job.result.test_acc

    pairs = 1 if quick else 3
    for name, config in runs_to_time.items():
        starts, speeds, accuracy = {"threads": [], "Ray": []}, {"threads": [], "Ray": []}, {}
        for _ in range(pairs):  # alternating, so that a slow spell of the machine hits both
            for executor, settings in (("threads", Settings()), ("Ray", Settings(ray_address="local"))):
                first_step, epoch_speeds, accuracy[executor] = timed_run(settings, config)
                starts[executor].append(first_step)
                speeds[executor].extend(epoch_speeds)
        t_start, r_start = median(starts["threads"]), median(starts["Ray"])
        t_speed, r_speed = median(speeds["threads"]), median(speeds["Ray"])
        t_acc, r_acc = accuracy["threads"], accuracy["Ray"]
        rows.append((f"Ray vs threads, {name}: Start to first step (median of {pairs})",
                     f"{r_start:.1f} s vs {t_start:.1f} s", f"+{r_start - t_start:.1f} s on Ray"))
        rows.append((f"Ray vs threads, {name}: images/s per epoch (median over {pairs} runs each)",
                     f"{r_speed:,.0f} vs {t_speed:,.0f}",
                     f"{r_speed / t_speed - 1:+.0%} on Ray (its task asks for {resources(config)} CPU, so as many "
                     f"torch threads; the thread executor uses {torch.get_num_threads()}); test accuracy "
                     f"{r_acc:.1%} vs {t_acc:.1%}"))
    return rows


def bench_course(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    batches = 500 if quick else 2500
    course_ips = course_pipeline_images_per_s(cifar, batches)
    config = preset("Course: CNN")
    config.val_fraction = 0.0
    acc, seconds, ours_ips, _ = run_config(config, cifar)
    course_epoch_s = 50_000 / course_ips
    return [
        ("Course CNN, course pipeline (DataLoader, batch 4, 2 workers)", f"{course_ips:,.0f} img/s",
         f"{course_epoch_s:.0f} s per epoch, so about {5 * course_epoch_s:.0f} s for 5 epochs ({batches} batches timed)"),
        ("Course CNN, our trainer (whole-tensor batches of 128, same 5 epochs)", f"{ours_ips:,.0f} img/s",
         f"{acc:.1%} test accuracy in {seconds:.1f} s; {ours_ips / course_ips:.1f}x the course pipeline's images/s"),
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
    return [(f"Fast CNN preset ({config.epochs} epochs)", f"{acc:.1%} in {seconds:.0f} s", f"{ips:,.0f} img/s; {to_70}")]


CPU_PRESETS = ["CPU: 70% in a minute", "CPU: 80% in five minutes", "Fast CNN (70%+ in 3 min on CPU)"]


def bench_cpu_presets(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Issue 18's CPU targets: each CPU preset over seeds 0-2 (test accuracy, and the wall time of fit() from the
    decoded cache: moving the data, whitening, training and the test pass), beside today's Fast CNN recipe."""
    rows = []
    for name in CPU_PRESETS[:1] if quick else CPU_PRESETS:
        accs, walls, vals = [], [], []
        for seed in (0,) if quick or name == CPU_PRESETS[-1] else (0, 1, 2):  # today's recipe: one run
            config = replace(preset(name), seed=seed)
            start = time.perf_counter()
            acc, _, ips, epochs = run_config(config, cifar)
            walls.append(time.perf_counter() - start)
            accs.append(acc)
            vals.append(epochs[-1].val_acc or 0)
        rows.append((f"{name} ({preset(name).epochs} epochs), seeds 0-{len(accs) - 1}",
                     f"{mean(accs):.1%} in {mean(walls):.0f} s",
                     f"test {', '.join(f'{a:.1%}' for a in accs)}; wall {', '.join(f'{w:.0f}' for w in walls)} s; "
                     f"last validation {mean(vals):.1%}; {ips:,.0f} img/s"))
    return rows


def _epoch_images_per_s(run_id: str) -> float:
    """A saved run's training images per second over its epochs (evaluation passes left out)."""
    from cnn_lab import runs

    epochs = runs.load_run(run_id).epochs
    return sum(e.images_per_s * e.seconds for e in epochs) / sum(e.seconds for e in epochs)


def _run_ids() -> set[str]:
    from cnn_lab import runs

    return {folder.name for folder in runs.runs_root().iterdir()}


def _new_run(before: set[str]) -> str | None:
    """The finished run that is not in `before`. Reads only the new folders: while a page run trains, this is
    polled beside it, and reading every saved run each second would take the CPU the measurement measures."""
    from cnn_lab import runs

    for run_id in sorted(_run_ids() - before):
        try:
            if runs.load_run(run_id).status == "finished":
                return run_id
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not written completely yet
    return None


def _cli_run(name: str) -> str:
    """`python -m cnn_lab train --preset NAME`, as a laptop user runs it; returns the run's id."""
    import subprocess
    import sys

    before = _run_ids()
    done = subprocess.run([sys.executable, "-m", "cnn_lab", "train", "--preset", name], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=900)
    if done.returncode != 0:  # with what it printed last, so that a rare failure can be told from another
        raise RuntimeError(f"`python -m cnn_lab train --preset {name!r}` exited with {done.returncode} (its run: "
                           f"{_new_run(before) or 'not finished'}); the end of its output:\n{done.stderr[-3000:]}")
    return _new_run(before)


def _page_run(name: str) -> str:
    """The same preset started from the train page of the app, in headless Chromium on this machine, the page in
    front with its curves live until the run ends; returns the run's id."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                           cwd=Path(__file__).parent.parent, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        before = _run_ids()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/train")
            page.wait_for_selector("text=Start training", timeout=120_000)
            page.get_by_role("combobox", name="Preset", exact=True).click()
            page.locator('[role="option"]').filter(has_text=name).first.click()
            page.wait_for_timeout(2_000)
            page.get_by_role("button", name="Start training").click()
            end = time.time() + 900
            while time.time() < end and _new_run(before) is None:
                page.wait_for_timeout(1_000)  # the page stays open and live, as a user watching it
            browser.close()
        return _new_run(before)
    finally:
        app.terminate()
        app.wait(timeout=30)


def bench_browser(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Issue 18: training started from the page in a real browser (the app and Chromium on the same cores, the
    train page in front, curves live) against the command line, on the same preset; alternating, medians."""
    name = CPU_PRESETS[0]
    measured = {_page_run: [], _cli_run: []}  # images/s of each side's runs
    # Single runs vary by 10-20% on a shared machine (one slow page run in three made 84% of a bench whose other
    # pairs gave 90%): five pairs, the CLI first and the page first in turn, as the streaming bench does; medians.
    for pair in range(1 if quick else 5):
        for side in (_cli_run, _page_run) if pair % 2 == 0 else (_page_run, _cli_run):
            measured[side].append(_epoch_images_per_s(side(name)))
    page_ips, cli_ips = measured[_page_run], measured[_cli_run]
    page, cli = median(page_ips), median(cli_ips)
    return [(f"Training from the train page in headless Chromium vs the CLI ({name})", f"{page / cli:.0%} of the CLI",
             f"page {', '.join(f'{v:,.0f}' for v in page_ips)} img/s; CLI {', '.join(f'{v:,.0f}' for v in cli_ips)} "
             f"img/s ({len(cli_ips)} pair(s), the CLI first and the page first in turn; medians {page:,.0f} and "
             f"{cli:,.0f})")]


def bench_speedrun(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    config = preset("Speedrun (GPU)")
    if not torch.cuda.is_available():
        return [("Speedrun preset", "skipped", "needs a GPU (it runs on CPU, slowly, from the page)")]
    run_config(replace(config, epochs=1), cifar)  # warm-up: kernels, cuDNN autotuning
    rows = []
    for subscriber in (False, True) if quick else (False, False, True, True):
        acc, seconds, ips, _ = run_config(config, cifar, subscriber)
        how = "the train page's curves streaming" if subscriber else "headless"
        rows.append((f"Speedrun preset ({config.epochs} epochs, TTA), {how}", f"{acc:.2%} in {seconds:.2f} s",
                     f"{ips:,.0f} img/s"))
    return rows


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


def bench_conv_update(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """What one slider move on the convolution page costs on a 512x512 photo: conv, ReLU, pool and figure data."""
    from cnn_lab import charts, conv, images, kernels

    image = images.to_tensor(images.load_sample("astronaut").image)
    bank = kernels.make_kernel("sobel x")[None]
    times = []
    for stride in [1, 2, 1, 3, 1, 2, 1, 1, 2, 1] * (1 if quick else 3):
        start = time.perf_counter()
        stages = conv.conv_relu_pool(image, bank, conv.ConvSettings(stride=stride), "max", 2)
        maps = torch.cat([stages[0].conv, stages[0].conv.sum(0, keepdim=True)]).numpy()
        charts.feature_maps_figure(maps, ["R", "G", "B", "sum"], columns=4).to_json()
        times.append(time.perf_counter() - start)
    times.sort()
    return [("Convolution page update, 512x512 RGB (conv + ReLU + pool + figure JSON)",
             f"{times[len(times) // 2] * 1000:.0f} ms median", f"worst {times[-1] * 1000:.0f} ms over {len(times)} moves")]


def naive_extraction_images_per_s(folder: Path, pretrained, images: int) -> float:
    """The usual first attempt: an ImageFolder DataLoader decoding JPEGs with per-image transforms, NCHW tensors,
    and a forward pass that records autograd history (no inference mode)."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    transform = T.Compose([T.Resize((224, 224)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    loader = torch.utils.data.DataLoader(ImageFolder(folder, transform), batch_size=32, shuffle=False, num_workers=2)
    model = pretrained.features.to(pick_device()).eval().to(memory_format=torch.contiguous_format)
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        model(x.to(pick_device())).sum().item()
        seen += len(x)
        if seen >= images:
            break
    return seen / (time.perf_counter() - start)


def _per_class(result: TrainResult) -> str:
    from cnn_lab import evaluate

    accuracy = evaluate.per_class_accuracy(result.test_probs, result.test_labels, len(result.classes))
    return "per class: " + ", ".join(f"{c} {a:.0%}" for c, a in zip(result.classes, accuracy))


def bench_transfer(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Feature extraction per backbone (naive vs ours), the linear probe end to end, a head re-run from cached
    features, and on a GPU the fine-tuning preset."""
    import shutil

    from cnn_lab import transfer
    from cnn_lab.backbones import BACKBONES, WeightsUnavailable
    from cnn_lab.paths import cache_root

    rows: list[Row] = []
    boats = transfer.load_images(transfer.TransferConfig())  # decoded once (cached arrays)
    device = pick_device()
    for name, spec in BACKBONES.items():
        try:
            pretrained = spec.load(downloads.Hooks())
        except WeightsUnavailable:
            rows.append((f"Feature extraction, {spec.title}", "skipped", "weights unavailable offline"))
            continue
        sample = boats.splits["train"].images[:128 if quick else 256]
        transfer.extract_features(pretrained, sample[:32], device)  # warm-up
        _sync()
        start = time.perf_counter()
        transfer.extract_features(pretrained, sample, device)
        _sync()
        ours = len(sample) / (time.perf_counter() - start)
        folder = datasets.dataset_root(datasets.extract_archive(datasets.local_archive("boats9"))) / "train"
        naive = naive_extraction_images_per_s(folder, pretrained, 64 if quick else 128)
        rows.append((f"Feature extraction, {spec.title}, 224x224", f"{ours:,.0f} img/s",
                     f"naive ImageFolder + DataLoader + autograd, NCHW: {naive:,.0f} img/s ({ours / naive:.1f}x)"))
    shutil.rmtree(cache_root() / "features", ignore_errors=True)  # end to end: extraction included
    start = time.perf_counter()
    probe = transfer.run_transfer(transfer.TransferConfig())
    total = time.perf_counter() - start
    rows.append(("Linear probe on boats9, EfficientNet-Lite0, end to end", f"{probe.test_acc:.1%} in {total:.1f} s",
                 f"images {probe.extras['load_seconds']:.1f} s, backbone {probe.extras['backbone_seconds']:.1f} s, "
                 f"features {probe.extras['feature_seconds']:.1f} s, head {probe.extras['head_seconds']:.1f} s; "
                 + _per_class(probe)))
    start = time.perf_counter()
    again = transfer.run_transfer(transfer.TransferConfig(lr=0.1, epochs=40, label_smoothing=0.0))
    rows.append(("Probe re-run with new head hyperparameters (cached features)",
                 f"{time.perf_counter() - start:.1f} s", f"{again.test_acc:.1%} test accuracy"))
    if device.type == "cuda":
        name = "Fine-tune (best on boats9, for a GPU)"
        start = time.perf_counter()
        tuned = transfer.run_transfer(transfer.preset(name))
        rows.append((f"Transfer preset \"{name}\" on boats9", f"{tuned.test_acc:.1%} in {time.perf_counter() - start:.1f} s",
                     _per_class(tuned)))
    return rows


def bench_cold_probe(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Issue 18's cold probe: `python -m cnn_lab transfer --mode probe` on boats9 with an empty cache (the photos
    decoded anew, the features extracted anew), timed from the process's start to its end."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cnn_lab", "transfer", "--data", "boats9", "--mode", "probe"],
                              check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent,
                              env={**os.environ, "CNN_LAB_CACHE": cache}, timeout=900)
        wall = time.perf_counter() - start
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return [("Linear probe on boats9 from a cold cache, the CLI end to end (decode included)",
             f"{result['test_acc']:.1%} in {wall:.1f} s", "a fresh CNN_LAB_CACHE; process start included")]


def bench_cpu_transfer(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """Issue 18's CPU fine-tuning target: the CPU recipe on boats9 over seeds 0-2, each run end to end as the CLI
    runs it (the photos from the decode cache, the frozen blocks' outputs computed anew)."""
    from cnn_lab import transfer
    from cnn_lab.metrics import MetricLog

    config = transfer.preset(transfer.CPU_RECIPE)
    accs, walls, vals = [], [], []
    for seed in (0,) if quick else (0, 1, 2):
        log, start = MetricLog(), time.perf_counter()
        result = transfer.run_transfer(replace(config, seed=seed, epochs=1 if quick else config.epochs), log=log)
        walls.append(time.perf_counter() - start)
        accs.append(result.test_acc)
        vals.append(log.snapshot().epochs[-1].val_acc or 0)
    return [(f"\"{transfer.CPU_RECIPE}\" on boats9, seeds 0-{len(accs) - 1}", f"{mean(accs):.1%} in {mean(walls):.0f} s",
             f"test {', '.join(f'{a:.1%}' for a in accs)}; wall {', '.join(f'{w:.0f}' for w in walls)} s (frozen "
             f"blocks {result.extras['frozen_seconds']:.0f} s, training {result.extras['head_seconds']:.0f} s in the "
             f"last); last validation {mean(vals):.1%}")]


def bench_inside(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """The "Inside the network" page's work: every layer of EfficientNet-Lite0 for one 224x224 photo (after the
    first load), and what a click on a map asks for (a channel's maps sorted, one value's arithmetic)."""
    from cnn_lab import images, inside
    from cnn_lab.models import build_model, course_spec

    start = time.perf_counter()
    subject = inside.pretrained_subject()
    load = time.perf_counter() - start
    x = subject.prepare(images.to_model_input(images.load_sample("astronaut").image, subject.input_shape))
    inside.inspect(subject.model, x)  # warm-up
    passes, clicks = [], []
    for _ in range(3 if quick else 7):
        start = time.perf_counter()
        seen = inside.inspect(subject.model, x)
        passes.append(time.perf_counter() - start)
    layers = seen.conv_layers()
    for i in range(20):
        layer = layers[i * 7 % len(layers)]
        start = time.perf_counter()
        channel = inside.sorted_channels(layer.output)[i % 4]
        inside.conv_arithmetic(layer, channel, layer.shape[1] // 2, layer.shape[2] // 3)
        clicks.append(time.perf_counter() - start)
    rows = [
        ("Inside the network: EfficientNet-Lite0, every layer's output for one 224x224 photo (after the first load)",
         f"{median(passes) * 1000:.0f} ms median of {len(passes)}",
         f"{len(seen.layers)} layers hooked, {len(layers)} convolutions; loading the model once: {load:.1f} s"),
        ("Inside the network: a click on a map (channels sorted, one value's multiply-and-sum)",
         f"{median(clicks) * 1000:.1f} ms median of 20", "on layers from the stem to the head"),
    ]
    course = build_model(course_spec("course_cnn"), (3, 32, 32), 10)
    test = cifar.splits["test"]
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25)
    start = time.perf_counter()
    passed = inside.dataset_pass(course, test.images, mean, std)
    first_pass = time.perf_counter() - start
    conv = [name for name, m in course.named_modules() if isinstance(m, torch.nn.Conv2d)][1]
    start = time.perf_counter()
    for channel in range(32):
        inside.top_images(passed, conv, channel)
    per_channel = (time.perf_counter() - start) / 32
    rows.append(("Inside the network: the 9 test images that excite a channel most, course CNN, 10,000 images",
                 f"{per_channel * 1000:.2f} ms a channel after the first pass", f"the pass: {first_pass:.1f} s, "
                 "once per model (cached), with every convolution's peaks, the features and the predictions"))
    module = dict(course.named_modules())[conv]
    start = time.perf_counter()
    inside.synthesise(course, module, 3, (3, 32, 32), mean, std)
    rows.append(("Inside the network: an image synthesised for a course-CNN channel (200 steps)",
                 f"{time.perf_counter() - start:.2f} s", "activation maximisation with a 1-pixel jitter"))
    return rows + _norms_overhead(cifar, 1 if quick else 3)


def _norms_overhead(cifar: datasets.ImageDataset, pairs: int) -> list[Row]:
    """Training with each layer's weight and gradient norms sampled (as always) against without, alternating."""
    from cnn_lab import train as trainer

    config = preset("Course: CNN")
    config.epochs, config.max_train, config.val_fraction = 2, 20_000, 0.0
    sample = trainer._sample_norms
    seconds = {"with": [], "without": []}
    try:
        for _ in range(pairs):
            for which in ("with", "without"):
                trainer._sample_norms = sample if which == "with" else (lambda *args: None)
                seconds[which].append(trainer.train(config, dataset=cifar).seconds)
    finally:
        trainer._sample_norms = sample
    with_, without = median(seconds["with"]), median(seconds["without"])
    return [("Each layer's weight and gradient norm, sampled while training (course CNN, 20,000 images, 2 epochs)",
             f"{with_ / without - 1:+.1%}", f"median of {pairs} alternating pairs: {with_:.2f} s with, "
             f"{without:.2f} s without")]


BENCHMARKS: dict[str, Callable[[datasets.ImageDataset, bool], list[Row]]] = {
    "inside": bench_inside,
    "transfer": bench_transfer,
    "conv": bench_conv_update,
    "data": bench_data,
    "ray": bench_ray,
    "course": bench_course,
    "fast": bench_fast_preset,
    "cpu": bench_cpu_presets,
    "cpu_transfer": bench_cpu_transfer,
    "cold_probe": bench_cold_probe,
    "browser": bench_browser,
    "speedrun": bench_speedrun,
    "streaming": bench_streaming,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (f"{describe_device()} · {cpu}, {torch.get_num_threads()} torch threads · Python {platform.python_version()}"
            f" · torch {torch.__version__}")


def run(names: list[str], quick: bool = False) -> str:
    """Run the named benchmarks and return a markdown section."""
    cifar = datasets.load_dataset("cifar10")
    lines = [f"### {time.strftime('%Y-%m-%d %H:%M')} · {machine()}", "", "| benchmark | figure | note |",
             "| --- | --- | --- |"]
    for name in names:
        for what, figure, note in BENCHMARKS[name](cifar, quick):
            lines.append(f"| {what} | {figure} | {note} |")
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def write(section: str, path: Path = Path("BENCHMARKS.md")) -> None:
    """Insert the newest table above the older ones (the first '### ' heading), keeping the text above them."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    cut = text.find("\n### ") + 1 or len(text)
    path.write_text(text[:cut] + section + "\n" + text[cut:])
