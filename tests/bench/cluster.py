"""The Ray executor against the thread executor, on the same runs."""
from __future__ import annotations

import time

import torch

from cnn_lab import data as datasets
from cnn_lab.presets import preset
from cnn_lab.train import TrainConfig
from tests.bench.common import Row, median


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
