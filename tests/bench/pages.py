"""The pages' own work, timed in this process: a slider move on the convolution page, and "Inside the network"."""
from __future__ import annotations

import time

import torch

from cnn_lab import data as datasets
from tests.bench.common import Row, median
from tests.bench.training import norms_overhead


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


def bench_inside(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    """The "Inside the network" page's work: every layer of EfficientNet-Lite0 for one 224x224 photo (after the
    first load), and what a click on a map asks for (a channel's maps sorted, one value's arithmetic)."""
    from cnn_lab import images, inside, subjects
    from cnn_lab.models import build_model, course_spec

    start = time.perf_counter()
    subject = subjects.pretrained_subject()
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
    return rows + norms_overhead(cifar, 1 if quick else 3)
