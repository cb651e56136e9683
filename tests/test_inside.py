"""Inside the network: hooked outputs against a manual forward pass, receptive fields against the stride &
padding calculator, the clicked value's arithmetic against the hooked value, on the course CNN and on the
pretrained EfficientNet-Lite0 (depthwise convolutions with same padding)."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from cnn_lab import evaluate, inside, jobs, runs, subjects
from cnn_lab.geometry import STACKS, stack_table
from cnn_lab.models import ModelSpec, build_model, course_spec
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, wait_for


@pytest.fixture(scope="module")
def course():
    torch.manual_seed(0)
    model = build_model(course_spec("course_cnn"), (3, 32, 32), 10)
    x = torch.randn(1, 3, 32, 32)
    return model, x, inside.inspect(model, x)


@pytest.fixture(scope="module")
def lite0():
    subject = subjects.pretrained_subject()
    image = torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return subject, inside.inspect(subject.model, subject.prepare(image))


def test_hooked_outputs_are_a_manual_forward_pass(course):
    model, x, seen = course
    assert [layer.kind for layer in seen.layers] == [
        "Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "Flatten", "Linear", "LeakyReLU", "Linear"]
    manual = x[0]
    for layer in seen.layers:  # each layer's own op on what the previous one gave
        assert torch.equal(layer.input, manual), layer.name
        manual = layer.module(manual[None])[0]
        assert torch.allclose(layer.output, manual, atol=1e-6), layer.name
    assert torch.allclose(seen.logits, model(x)[0], atol=1e-6)
    assert torch.allclose(seen.probs.sum(), torch.tensor(1.0))


def test_shapes_and_receptive_fields_match_the_stride_and_padding_calculator(course):
    _, _, seen = course
    rows = stack_table(STACKS["The course's CNN on 3x32x32"])
    convs = [row for row in rows if row.layer.startswith("Conv2d")]
    assert [layer.shape for layer in seen.conv_layers()] == [row.output for row in convs]
    assert [layer.receptive_field for layer in seen.conv_layers()] == [row.receptive_field for row in convs] \
        == [5, 13, 29]
    assert [layer.parameters for layer in seen.conv_layers()] == [row.parameters for row in convs]
    assert seen.by_name("1").receptive_field is None  # a linear unit sees the whole image


@pytest.mark.parametrize("row, col", [(0, 0), (2, 3), (4, 4)])
def test_the_arithmetic_of_a_course_cnn_value_equals_the_hooked_value(course, row, col):
    _, _, seen = course
    layer = seen.conv_layers()[1]
    for channel in (0, 31):
        sums = inside.conv_arithmetic(layer, channel, row, col)
        assert sums.patch.shape == sums.weights.shape == (16, 5, 5)
        assert sums.value == pytest.approx(float(layer.output[channel, row, col]), abs=1e-5)
    with pytest.raises(ValueError, match="has no value"):
        inside.conv_arithmetic(layer, 0, 5, 0)  # the output is 5x5


def test_efficientnet_layers_their_receptive_fields_and_arithmetic(lite0):
    subject, seen = lite0
    convs = seen.conv_layers()
    assert len(convs) == 1 + 16 * 2 + 15 + 1  # stem, (expand)+depthwise+project per block, head
    assert convs[0].shape == (32, 112, 112) and convs[-1].shape == (1280, 7, 7)
    assert seen.probs.shape == (1000,) and len(subject.classes) == 1000
    fields = [layer.receptive_field for layer in convs]
    assert fields == sorted(fields) and fields[0] == 3  # a stack: each layer sees at least what the last saw
    depthwise = next(layer for layer in convs if layer.module.groups > 1 and tuple(layer.module.stride) == (2, 2))
    last = depthwise.shape[1] - 1
    for channel, row, col in ((0, 0, 0), (5, last, last), (depthwise.shape[0] - 1, 3, last // 2)):
        sums = inside.conv_arithmetic(depthwise, channel, row, col)
        assert sums.patch.shape[0] == 1  # depthwise: one input channel per output channel
        assert sums.value == pytest.approx(float(depthwise.output[channel, row, col]), rel=1e-4, abs=1e-4)


def test_layer_statistics_count_dead_relu_units():
    layer = inside.LayerOutput("r", "ReLU6", nn.ReLU6(), torch.zeros(4), torch.tensor([0.0, 0.0, 6.0, 3.0]), 0, None, 1)
    stats = inside.layer_stats(layer)
    assert stats.zero_share == 0.5 and stats.saturated_share == 0.25 and stats.mean == pytest.approx(2.25)


def test_channels_sort_by_mean_activation():
    maps = torch.stack([torch.full((2, 2), v) for v in (0.1, 3.0, -1.0, 2.0)])
    assert inside.sorted_channels(maps) == [1, 3, 0, 2]


def test_a_saved_run_is_rebuilt_with_the_same_predictions(lab_cache):
    job = jobs.JobManager().submit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=2,
                                               batch_size=64, device="cpu"))
    assert wait_for(lambda: not job.alive, 120) and job.status == "finished", job.message
    record = runs.load_run(job.run_id)
    assert record.usable and record.input_shape == [1, 8, 8]
    subject = subjects.run_subject(record)
    image = job.result.test_images[0]
    expected = evaluate.classify(job.result.model, image, job.result.mean, job.result.std)
    assert torch.allclose(inside.inspect(subject.model, subject.prepare(image)).probs, expected, atol=1e-5)


@pytest.fixture(scope="module")
def digits_model():
    from cnn_lab.train import fit

    return fit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=3, batch_size=64,
                             device="cpu"))


def test_a_synthesised_image_excites_its_channel_more_than_any_test_image(digits_model):
    result = digits_model
    convs = [m for m in result.model.modules() if isinstance(m, nn.Conv2d)]
    x = (result.test_images.float() / 255 - result.mean) / result.std
    for conv, channel in ((convs[0], 2), (convs[1], 5)):
        caught = {}
        hook = conv.register_forward_hook(lambda m, i, o: caught.__setitem__("maps", o))
        with torch.no_grad():
            result.model.eval()(x)
            best_test_image = caught["maps"][:, channel].mean((1, 2)).max().item()
            image = inside.synthesise(result.model, conv, channel, (1, 8, 8), result.mean, result.std)
            result.model((image.float()[None] / 255 - result.mean) / result.std)
        hook.remove()
        assert image.dtype == torch.uint8 and image.shape == (1, 8, 8)
        assert caught["maps"][0, channel].mean().item() > best_test_image


def test_synthesis_on_the_pretrained_network_stops_at_its_layer_and_reports_each_step(lite0):
    """A deep layer of a 224-pixel network is painted on a SYNTHESIS_SIDE canvas, and the forward pass stops at
    the layer: the head after it never runs. The progress callback sees every step, the last as (steps, steps)."""
    subject, _ = lite0
    modules = dict(subject.model.named_modules())
    ran = []
    handle = modules["_fc"].register_forward_hook(lambda *args: ran.append(1))
    steps = []
    try:
        image = inside.synthesise(subject.model, modules["_blocks.3._depthwise_conv"], 4, subject.input_shape,
                                  subject.mean, subject.std, steps=12, on_step=lambda done, total: steps.append(
                                      (done, total)))
    finally:
        handle.remove()
    assert image.shape == (3, inside.SYNTHESIS_SIDE, inside.SYNTHESIS_SIDE) and image.dtype == torch.uint8
    assert steps == [(i, 12) for i in range(1, 13)] and not ran
    assert all(p.grad is None for p in subject.model.parameters())


def test_another_session_s_hooks_leave_this_session_s_passes_alone(course):
    """On a class server every session shares one model object, each in its own thread. While one thread's hooks
    are on (here: one that would stop any pass, as synthesis's does), another thread's inspection, Grad-CAM and
    synthesis give what they give alone, and none of them leaves gradients on the shared model."""
    import threading

    from cnn_lab.explain import grad_cam
    from cnn_lab.hooks import hooked

    model, x, _ = course
    model.eval()
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1]
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)

    def views():
        seen = inside.inspect(model, x)
        return ([layer.output for layer in seen.layers], grad_cam(model, conv, x),
                inside.synthesise(model, conv, 2, (3, 32, 32), mean, std, steps=5))

    alone = views()

    def stop(*_):
        raise RuntimeError("another session's hook ran on this pass")

    found = []
    with hooked(model, [(conv, stop)]):  # this thread's hook, on for the whole time the other thread runs
        other = threading.Thread(target=lambda: found.append(views()))
        other.start()
        other.join()
    (outputs, (cam, target), image), = found
    assert all(torch.equal(a, b) for a, b in zip(outputs, alone[0])) and len(outputs) == len(alone[0])
    assert torch.equal(cam, alone[1][0]) and target == alone[1][1] and torch.equal(image, alone[2])
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.heavy
def test_t_sne_s_library_is_imported_in_the_background_once_asked():
    """The page asks for it when the learned space opens: the import (1.6 s) runs in a thread, not in the click."""
    code = ("import sys, threading; from cnn_lab import inside\n"
            "assert 'sklearn.manifold' not in sys.modules\n"
            "inside.prepare_tsne(); started = [t for t in threading.enumerate() if t is not threading.main_thread()]\n"
            "assert len(started) == 1 and started[0].daemon; started[0].join(60)\n"
            "inside.prepare_tsne(); assert threading.active_count() == 1  # once\n"
            "print(sys.modules['sklearn.manifold'].TSNE.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "TSNE", done.stderr[-2000:]


def test_tsne_projects_at_most_its_share_of_images_and_keeps_classes_apart():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 64, generator=generator) * 4
    labels = torch.arange(1500) % 4
    features = centres[labels] + torch.randn(1500, 64, generator=generator)
    points = inside.project(features, "tsne")
    assert points.shape == (inside.PROJECTED_POINTS, 2)
    shown = labels[: inside.PROJECTED_POINTS]
    means = torch.stack([points[shown == c].mean(0) for c in range(4)])
    spread = max(points[shown == c].std(0).norm() for c in range(4))
    assert torch.cdist(means, means).masked_fill(torch.eye(4, dtype=torch.bool), 1e9).min() > 2 * spread


def test_top_images_and_the_learned_space_from_one_pass(digits_model):
    result = digits_model
    passed = inside.dataset_pass(result.model, result.test_images, result.mean, result.std, batch_size=100)
    assert torch.equal(passed.predicted, result.test_probs.argmax(1))
    conv = [name for name, m in result.model.named_modules() if isinstance(m, nn.Conv2d)][1]
    top = inside.top_images(passed, conv, channel=3, k=5)
    values = [v for _, v, _, _ in top]
    assert values == sorted(values, reverse=True) and values[0] == passed.peaks[conv][:, 3].max().item()
    index, value, row, col = top[0]  # the peak is where the image's own map has that value
    seen = inside.inspect(result.model, (result.test_images[index].float()[None] / 255 - result.mean) / result.std)
    assert seen.by_name(conv).output[3, row, col].item() == pytest.approx(value, abs=1e-5)
    assert passed.features.shape == (len(result.test_labels), 16)  # the last linear layer's input
    points = inside.project(passed.features)
    assert points.shape == (len(result.test_labels), 2)  # all of them: fewer than PROJECTED_POINTS
    many = inside.project(torch.randn(inside.PROJECTED_POINTS + 500, 16))  # the same first rows as t-SNE's
    assert many.shape == (inside.PROJECTED_POINTS, 2)
    assert points[:, 0].var() >= points[:, 1].var()  # the first direction holds the most variance
    assert inside.patch_box(0, 0, 5, 2, (8, 8)) == (0, 0, 4, 4) and inside.patch_box(3, 3, 5, 2, (8, 8))[2:] == (8, 8)


def test_grad_cam_at_a_middle_layer_finds_the_object():
    """A synthetic task: a 4x4 bright object on noise, anywhere; the class is its shape (filled or a ring).
    Grad-CAM at the middle of three convolutions, for the predicted class, puts far more than chance mass on
    the object."""
    from cnn_lab.data import ImageDataset, Split
    from cnn_lab.explain import grad_cam
    from cnn_lab.train import fit

    generator = torch.Generator().manual_seed(0)

    def make(n: int) -> tuple[Split, torch.Tensor]:
        images = torch.randint(0, 60, (n, 1, 16, 16), generator=generator, dtype=torch.uint8)
        labels = torch.randint(0, 2, (n,), generator=generator)
        corners = torch.randint(0, 12, (n, 2), generator=generator)
        for image, label, (top, left) in zip(images, labels, corners.tolist()):
            image[0, top:top + 4, left:left + 4] = 255
            if label:  # a ring: the middle back to noise level
                image[0, top + 1:top + 3, left + 1:left + 3] = 30
        return Split(images, labels), corners

    (train_split, _), (test_split, corners) = make(2000), make(40)
    result = fit(TrainConfig(dataset="shapes", model=ModelSpec("cnn", widths=[8, 16, 32]), epochs=6, batch_size=64,
                               lr=0.05, device="cpu", val_fraction=0.0),
                   dataset=ImageDataset("shapes", ["filled", "ring"], {"train": train_split, "test": test_split}))
    assert result.test_acc > 0.9
    middle = [m for m in result.model.modules() if isinstance(m, nn.Conv2d)][1]
    on_the_object = []
    for image, (top, left) in zip(test_split.images, corners.tolist()):
        cam, _ = grad_cam(result.model, middle, (image.float()[None] / 255 - result.mean) / result.std)
        box = cam[max(0, top - 1):top + 5, max(0, left - 1):left + 5]  # the object and a pixel around it
        on_the_object.append(float(box.sum() / cam.sum().clamp_min(1e-8)))
    chance = 36 / 256  # the box's share of the image
    share = sum(on_the_object) / len(on_the_object)
    assert share > 2 * chance, on_the_object  # 45% here, against 14% by chance
