import json
import time

import pytest
import torch

from cnn_lab import jobs, runs
from cnn_lab.augment import random_crop, random_flip
from cnn_lab.evaluate import confusion_matrix, per_class_accuracy, top_k
from cnn_lab.metrics import MetricLog
from cnn_lab.models import MODELS, ModelError, ModelSpec, build_model, count_parameters, course_spec
from cnn_lab.train import TrainConfig, TrainingError, fit
from tests.helpers import wait_for


def test_config_json_round_trip():
    config = TrainConfig(dataset="digits", model=ModelSpec("mlp", hidden=[64]), augment=["flip"], patience=2)
    again = TrainConfig.from_json(config.to_json())
    assert again == config and isinstance(again.model, ModelSpec)
    assert json.loads(config.to_json())["model"]["hidden"] == [64]


def test_course_cnn_is_exact():
    model = build_model(course_spec("course_cnn"), (3, 32, 32), 10)
    shapes = []
    x = torch.zeros(1, 3, 32, 32)
    for layer in model[0]:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 14, 14), (32, 5, 5), (64, 1, 1)]
    # 3*16*25+16 + 16*32*25+32 + 32*64*25+64 + 64*32+32 + 32*10+10
    assert count_parameters(model) == 1216 + 12832 + 51264 + 2080 + 330
    assert [type(m).__name__ for m in model[0] if not isinstance(m, torch.nn.Conv2d)].count("LeakyReLU") == 3


def test_course_cnn_follows_the_course_experiments():
    """Batch norm after each conv, dropout before each linear layer, any activation: lessons 18-22."""
    plain = build_model(course_spec("course_cnn"), (3, 32, 32), 10)
    both = build_model(course_spec("course_cnn", norm="batch", dropout=0.3), (3, 32, 32), 10)
    kinds = [type(m).__name__ for m in both.modules()]
    assert kinds.count("BatchNorm2d") == 3 and kinds.count("Dropout") == 2
    # batch norm adds a scale and a shift per channel and the convs lose their biases: +2*(16+32+64) - (16+32+64)
    assert count_parameters(both) == count_parameters(plain) + (16 + 32 + 64)
    relu = build_model(course_spec("course_cnn", activation="relu", activation_params={}), (3, 32, 32), 10)
    assert "LeakyReLU" not in str(relu) and str(relu).count("ReLU()") == 4
    both.train()
    x = torch.randn(4, 3, 32, 32)
    assert not torch.equal(both(x), both(x))  # dropout is active in training
    both.eval()
    assert torch.equal(both(x), both(x))


def test_mlp_batch_norm_and_dropout():
    model = build_model(course_spec("mlp", hidden=[32, 16], norm="batch", dropout=0.2), (1, 8, 8), 10)
    kinds = [type(m).__name__ for m in model]
    assert kinds.count("BatchNorm1d") == 2 and kinds.count("Dropout") == 2
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_speedrun_net_refuses_a_width_list_it_cannot_use():
    with pytest.raises(ModelError, match="three conv widths"):
        build_model(ModelSpec("speedrun", widths=[32, 64]), (3, 32, 32), 10)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_runs_on_cifar_shape(name):
    model = build_model(ModelSpec(name, widths=[8, 16, 16]), (3, 32, 32), 10)
    assert set(MODELS[name].settings) <= set(ModelSpec.__dataclass_fields__)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_course_cnn_refuses_tiny_images():
    with pytest.raises(ModelError, match="at least 29x29"):
        build_model(ModelSpec("course_cnn"), (1, 8, 8), 10)


def test_batched_augmentations_keep_content():
    x = torch.arange(64 * 3 * 8 * 8, dtype=torch.float32).view(64, 3, 8, 8)
    flipped = random_flip(x, torch.Generator().manual_seed(1))
    same = [torch.equal(flipped[i], x[i]) for i in range(64)]
    mirrored = [torch.equal(flipped[i], x[i].flip(2)) for i in range(64)]
    assert all(a != b for a, b in zip(same, mirrored))  # each image is either kept or mirrored
    assert 16 < sum(mirrored) < 48  # about half are mirrored
    x = x[:2]
    cropped = random_crop(x, pad=0)
    assert torch.equal(cropped, x)
    shifted = random_crop(x, pad=2, generator=torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    # every output value exists in the reflect-padded input of the same image
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="reflect")
    assert set(shifted[0, 0].flatten().tolist()) <= set(padded[0, 0].flatten().tolist())


def test_digits_above_90_percent():
    result = fit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32]), epochs=8, batch_size=64))
    assert result.test_acc > 0.9
    assert result.test_probs.shape == (359, 10)


def test_nan_stops_with_a_sentence():
    config = TrainConfig(dataset="digits", model=ModelSpec("mlp"), epochs=3, batch_size=64, lr=1e6)
    with pytest.raises(TrainingError, match="too high for this model; try 100000"):
        fit(config)


def test_an_exploding_but_finite_loss_stops_with_a_sentence():
    """The Digits preset at lr 1000 went on to 10% with losses of 1e16-1e18 (finite) before this check."""
    from cnn_lab.presets import preset

    config = preset("Digits (seconds, built in)")
    config.lr = 1000
    with pytest.raises(TrainingError, match="too high for this model; try 100"):
        fit(config)


@pytest.mark.parametrize(
    "changes, message",
    [({"epochs": 0}, "at least 1 epoch"), ({"batch_size": 100_000}, "larger than the training set"),
     ({"lr": float("nan")}, "positive number"), ({"whiten_bias_epochs": "two"}, "whole number of epochs"),
     ({"whiten_bias_epochs": -1}, "whole number of epochs"), ({"small_epochs": -1}, "whole number of epochs"),
     ({"small_epochs": 1, "small_size": 8}, r"smaller than the images \(8x8 pixels\): choose a size from 1 to 7"),
     ({"small_epochs": 1, "small_size": 6}, "cannot take 6x6 windows")],
)
def test_bad_settings(changes, message):
    with pytest.raises(TrainingError, match=message):
        fit(TrainConfig(dataset="digits", model=ModelSpec("mlp"), **changes))


def test_small_windows_a_model_cannot_take_are_refused_before_any_data_loads(monkeypatch):
    """CIFAR-10's images are 32x32 before they load; the course's CNN ends in a linear layer sized for them."""
    from cnn_lab import data as datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: pytest.fail("the data was loaded"))
    config = TrainConfig(dataset="cifar10", model=course_spec("course_cnn"), small_epochs=2, small_size=24)
    with pytest.raises(TrainingError, match=r"\"Course CNN .*\" cannot take 24x24 windows"):
        fit(config)
    config.model = ModelSpec("speedrun", widths=[8, 16, 16])
    config.validate()  # it ends in a global pool: any size from 9 pixels
    config.small_size = 8
    with pytest.raises(TrainingError, match="cannot take 8x8 windows"):
        config.validate()


def test_progressive_resizing_trains_the_first_epochs_on_random_windows_and_evaluates_whole_images():
    """The digits (8x8) with 6x6 windows for the first 2 of 3 epochs: the training steps see 6x6 windows, then
    whole images; every evaluation sees whole images; the windows move from batch to batch; it still learns."""
    from cnn_lab.augment import random_window

    seen: list[tuple[bool, tuple[int, int]]] = []
    spec = ModelSpec("resnet_small", widths=[16, 32])
    model = build_model(spec, (1, 8, 8), 10)
    model.register_forward_pre_hook(lambda module, inputs: seen.append((module.training, tuple(inputs[0].shape[-2:]))))
    log = MetricLog()
    result = fit(TrainConfig(dataset="digits", model=spec, epochs=3, batch_size=64, lr=0.1, val_fraction=0.1,
                             small_epochs=2, small_size=6, device="cpu"), log=log, model=model)
    steps = [size for training, size in seen if training]
    per_epoch = len(steps) // 3
    assert steps == [(6, 6)] * (2 * per_epoch) + [(8, 8)] * per_epoch
    assert {size for training, size in seen if not training} == {(8, 8)}
    assert result.test_acc > 0.8, result.test_acc

    batch = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    places = set()
    for _ in range(20):
        window = random_window(batch, 6)
        top, left = divmod(int(window[0, 0, 0, 0]), 8)
        assert torch.equal(window, batch[..., top : top + 6, left : left + 6])  # the same place in every image
        places.add((top, left))
    assert len(places) > 3


def test_early_stopping_restores_best_weights():
    log = MetricLog()
    config = TrainConfig(dataset="digits", model=ModelSpec("mlp", hidden=[256]), optimizer="adam", lr=3e-3,
                         schedule="constant", epochs=60, batch_size=32, patience=2, val_fraction=0.3)
    result = fit(config, log=log)
    assert result.stopped_early and len(log.epochs) < 60
    val_losses = [e.val_loss for e in log.epochs]
    assert result.best_epoch == 1 + val_losses.index(min(val_losses))
    assert len(log.epochs) == result.best_epoch + 2


def test_metrics_and_confusion_helpers():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1])
    assert confusion_matrix(probs, labels, 2).tolist() == [[1, 0], [1, 1]]
    assert per_class_accuracy(probs, labels, 2) == [1.0, 0.5]
    assert top_k(probs[0], ["cat", "dog"], 1) == [("cat", pytest.approx(0.9))]


def test_job_pause_resume_stop_and_persistence():
    manager = jobs.JobManager(max_running=1)
    config = TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32]), epochs=200, batch_size=16)
    job = manager.start(config)
    assert wait_for(lambda: job.log.snapshot().steps)
    second = manager.start(config)  # the device is busy: it waits in the queue, it is not refused
    assert second.status == "queued" and manager.position(second) == 1
    manager.stop(second)
    assert second.status == "stopped" and "out of the queue" in second.message and manager.waiting() == []
    manager.pause(job)
    time.sleep(0.3)
    paused_at = job.log.snapshot().progress.step
    time.sleep(0.7)
    assert job.log.snapshot().progress.step - paused_at <= 2  # at most the step in flight and its publish
    manager.resume(job)
    assert wait_for(lambda: job.log.snapshot().progress.step > paused_at + 5)
    manager.stop(job)
    assert wait_for(lambda: not job.alive, 30)
    assert job.status == "stopped"
    record = runs.load_run(job.run_id)
    assert record.status == "stopped" and record.test_acc is not None
    weights = runs.load_weights(job.run_id)
    assert set(weights) == set(job.result.model.state_dict())


def test_a_job_that_never_started_leaves_no_run_but_a_failed_one_stays():
    manager = jobs.JobManager()
    job = manager.start(TrainConfig(dataset="digits", model=ModelSpec("course_cnn"), epochs=1))
    assert wait_for(lambda: not job.alive)
    assert job.status == "failed" and "at least 29x29" in job.message  # the page still has the sentence
    assert not (runs.runs_root() / job.run_id).exists()  # but the history is not cluttered
    job = manager.start(TrainConfig(dataset="digits", model=ModelSpec("mlp"), lr=1e6, epochs=3))
    assert wait_for(lambda: not job.alive)
    assert job.status == "failed" and "too high" in job.message
    record = runs.load_run(job.run_id)  # it trained, then failed: kept, with its sentence
    assert record.status == "failed" and "too high" in record.message


def test_interrupted_run_is_shown_as_interrupted():
    run_id = runs.create_run(runs.new_run_id(), "train", TrainConfig(dataset="digits").to_json())
    assert runs.load_run(run_id, live=set()).status == "interrupted"
    assert runs.load_run(run_id, live={run_id}).status == "running"


def test_malicious_checkpoint_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("open('%s', 'w').write('owned')" % (tmp_path / "owned"),))

    run_id = runs.create_run(runs.new_run_id(), "train", TrainConfig().to_json())
    (runs.runs_root() / run_id / "model.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        runs.load_weights(run_id)
    assert not (tmp_path / "owned").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model, optimizer, lr, floor", [
    ("linear", "adam", 1e-3, 0.25), ("mlp", "adam", 1e-3, 0.30), ("course_cnn", "adam", 1e-3, 0.35),
])
def test_course_presets_learn_cifar10(cifar10, model, optimizer, lr, floor):
    config = TrainConfig(dataset="cifar10", model=course_spec(model), optimizer=optimizer, lr=lr, batch_size=128,
                         epochs=1, schedule="constant", weight_decay=0, max_train=20_000, val_fraction=0)
    result = fit(config, dataset=cifar10)
    assert result.test_acc > floor, f"{model}: {result.test_acc:.3f} (chance is 0.10)"


def test_gpu_out_of_memory_becomes_a_sentence(monkeypatch):
    def exhausted(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(torch.nn.Flatten, "forward", exhausted)
    with pytest.raises(TrainingError, match="ran out of memory at batch size 64: choose a smaller batch"):
        fit(TrainConfig(dataset="digits", model=ModelSpec("mlp"), epochs=1, batch_size=64))


def test_the_deep_sigmoid_preset_shows_vanishing_gradients_and_relu_does_not():
    """The course's lesson in the numbers the train page streams: each layer's gradient norm."""
    from cnn_lab.presets import preset

    first_layer = {}
    for activation in ("sigmoid", "relu"):
        config = preset("Deep sigmoid: vanishing gradients")
        config.epochs, config.model.activation, config.device = 1, activation, "cpu"
        log = MetricLog()
        fit(config, log=log)
        trace = log.snapshot().progress.layer_norms
        assert len(trace["layers"]) == 9 and trace["layers"][0].endswith("(Linear)")
        first_layer[activation] = trace["grad"][-1][0]
        assert trace["grad"][-1][-1] > 0
    assert first_layer["sigmoid"] * 10 <= first_layer["relu"], first_layer


def test_the_datasets_own_statistics_from_histograms_equal_the_direct_ones():
    """uint8 images: each channel's mean and std from its histogram of 256 values, as the float arithmetic gives
    them; a flat channel's std stays at the floor (no division by zero); float features take the direct way."""
    from cnn_lab.normalise import NORMALISATIONS

    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    images[:, 2] = 7
    mean, std = NORMALISATIONS["dataset"].mean_std(images)
    floats = images.float() / 255
    assert torch.allclose(mean.flatten(), floats.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.flatten()[:2], floats.std(dim=(0, 2, 3))[:2], atol=1e-6) and std.flatten()[2] == 1e-3
    features = torch.rand(40, 16, 1, 1) * 255
    mean, std = NORMALISATIONS["dataset"].mean_std(features)
    assert torch.allclose(mean.flatten(), (features / 255).mean(dim=(0, 2, 3))) and mean.shape == (1, 16, 1, 1)


def test_the_course_normalisation_maps_pixels_to_minus_one_to_one():
    """The course's exact pipeline: Normalize(0.5, 0.5), batch size 4 (an option of the train page)."""
    from cnn_lab.normalise import NORMALISATIONS

    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    mean, std = NORMALISATIONS["course"].mean_std(images)
    x = (images.float() / 255 - mean) / std
    assert x.min() >= -1 and x.max() <= 1 and mean.shape == std.shape == (1, 3, 1, 1)
    result = fit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=1, batch_size=4,
                               normalisation="course", device="cpu"))
    assert torch.equal(result.mean, torch.full((1, 1, 1, 1), 0.5)) and result.test_acc > 0.5
    with pytest.raises(TrainingError, match="Unknown normalisation 'bogus'; choose one of dataset, course, imagenet."):
        TrainConfig(normalisation="bogus").validate()


def test_layer_norm_is_a_choice_beside_batch_norm():
    """Lesson 22: layer norm normalises each image over its own features, so one image's output does not depend
    on the others in the batch (batch norm's does, in training)."""
    for name in ("course_cnn", "mlp", "cnn", "alexnet", "vgg"):
        model = build_model(ModelSpec(name, norm="layer", hidden=[16]), (3, 32, 32), 10)
        kinds = {type(m).__name__ for m in model.modules()}
        assert kinds & {"GroupNorm", "LayerNorm"} and not kinds & {"BatchNorm1d", "BatchNorm2d"}, name
    model = build_model(ModelSpec("cnn", widths=[8, 16], norm="layer"), (3, 32, 32), 10).train()
    x = torch.randn(6, 3, 32, 32)
    assert torch.allclose(model(x)[:1], model(x[:1]), atol=1e-5)
    batch = build_model(ModelSpec("cnn", widths=[8, 16], norm="batch"), (3, 32, 32), 10).train()
    assert not torch.allclose(batch(x)[:1], batch(x[:1]), atol=1e-5)
    with pytest.raises(ModelError, match="Unknown normalisation"):
        build_model(ModelSpec("cnn", norm="instance"), (3, 32, 32), 10)


def test_dropconnect_drops_weights_while_training_only():
    """Lesson 19: DropConnect zeroes a random fraction of the linear layers' weights each step (dropout zeroes
    activations); in evaluation the layer is the plain linear layer with the same weights."""
    from cnn_lab.models import DropConnectLinear

    model = build_model(ModelSpec("mlp", hidden=[32], norm="none", dropconnect=0.5), (1, 8, 8), 10)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 2 and all(isinstance(m, DropConnectLinear) for m in layers)
    x = torch.randn(5, 1, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    plain = build_model(ModelSpec("mlp", hidden=[32], norm="none"), (1, 8, 8), 10).eval()
    plain.load_state_dict(model.state_dict())  # the same parameters: a DropConnect run loads as a plain model
    assert torch.allclose(plain(x), model(x))
    # one step's effective weights: about half are zero, the rest scaled by 2
    layer = layers[0].train()
    torch.manual_seed(0)
    out = layer(torch.eye(64))  # row i: column i of the dropped-and-scaled weight, plus the bias
    effective = (out - layer.bias).T
    zero = (effective.abs() < 1e-7).float().mean().item()
    assert 0.45 < zero < 0.55
    kept = effective.abs() > 1e-7
    assert torch.allclose(effective[kept], 2 * layer.weight.detach()[kept], atol=1e-6)
    with pytest.raises(ModelError, match="DropConnect"):
        build_model(ModelSpec("mlp", dropconnect=1.0), (1, 8, 8), 10)


@pytest.mark.parametrize("name, expected", [("alexnet", "Conv2d"), ("vgg", "Conv2d"), ("inception", "InceptionBlock")])
def test_the_classic_architectures_of_lesson_25(name, expected):
    model = build_model(ModelSpec(name, widths=[32, 64]), (3, 32, 32), 10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert any(type(m).__name__ == expected for m in model.modules())


def test_vgg_uses_only_3x3_convolutions_two_a_stage():
    model = build_model(ModelSpec("vgg", widths=[16, 32, 64], norm="none"), (3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64]
    assert all(c.kernel_size == (3, 3) for c in convs)


def test_an_inception_block_concatenates_four_branches_with_1x1_reductions():
    from cnn_lab.models import InceptionBlock

    block = InceptionBlock(32, 64)
    out = block(torch.randn(2, 32, 16, 16))
    assert out.shape == (2, 64, 16, 16)  # the spatial size is kept, the channels are the branches' sum
    # the 1x1 reduce before the 5x5 makes it cheaper than a 5x5 straight from 32 channels
    five = block.branch5
    assert five[0].kernel_size == (1, 1) and five[2].kernel_size == (5, 5)
    assert sum(p.numel() for p in five.parameters()) < 32 * 16 * 25


def test_runs_saved_with_batch_norm_true_still_load():
    spec = ModelSpec.from_dict({"name": "cnn", "batch_norm": False, "widths": [8]})
    assert spec.norm == "none"
    assert TrainConfig.from_json({"model": {"name": "mlp", "batch_norm": True}}).model.norm == "batch"


def test_the_published_speed_is_the_steps_own_not_an_average_with_evaluations(monkeypatch):
    """A slow evaluation pass between epochs (a big validation set, a busy machine) leaves the img/s on the progress
    line at the steps' own rate; it used to be the average since the start, waits included."""
    from cnn_lab.metrics import MetricLog
    from cnn_lab.train import loop

    train_one_epoch, evaluate, starts, calls = loop.train_one_epoch, loop.evaluate, [], []

    def timed_epoch(*args, **kwargs):
        starts.append(time.perf_counter())
        return train_one_epoch(*args, **kwargs)

    def slow_evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the first epoch's validation pass waits three times the first epoch, on any machine
            time.sleep(3 * (time.perf_counter() - starts[0]))
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(loop, "train_one_epoch", timed_epoch)
    monkeypatch.setattr(loop, "evaluate", slow_evaluate)
    log = MetricLog()
    fit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=2, batch_size=16, device="cpu"),
        log=log)
    own = sum(e.images_per_s for e in log.epochs) / 2  # images over the steps' own time, per epoch
    # With the wait counted, the figure would be at most 2 epochs' images over 5 epochs' time: 0.4 of `own`. The
    # published pace is the last steps' own, which a busy machine moves either way, so only a floor is asserted.
    assert log.snapshot().progress.images_per_s > 0.6 * own, [e.images_per_s for e in log.epochs]


@pytest.mark.parametrize("fast", [True, False])
def test_amp_trains_in_bf16_where_the_cpu_computes_it_fast_and_in_float32_elsewhere(monkeypatch, fast):
    """`amp` is bf16 autocast where it pays: a GPU, or a CPU with bf16 instructions (about twice float32's speed
    there); on a CPU that only emulates bf16 it would be slower, so the run stays in float32. Its evaluations
    compute as its steps do."""
    from cnn_lab import device as devices

    monkeypatch.setattr(devices, "fast_bf16", lambda device: fast)
    seen = set()
    model = build_model(ModelSpec("cnn", widths=[8, 16]), (1, 8, 8), 10)
    model[0].register_forward_hook(lambda module, inputs, output: seen.add((module.training, output.dtype)))
    result = fit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=1, batch_size=64,
                             device="cpu", amp=True), model=model)
    # the training steps and the evaluations in bf16 where it is fast, in float32 elsewhere
    dtype = torch.bfloat16 if fast else torch.float32
    assert seen == {(True, dtype), (False, dtype)}
    assert result.test_acc > 0.5  # digits learns in one epoch either way


@pytest.mark.parametrize("amx, avx512, kind", [(True, True, "AMX"), (False, True, "AVX512-BF16"), (False, False, "")])
def test_the_device_says_how_the_cpu_computes_bf16(monkeypatch, amx, avx512, kind):
    """The home page and the bench's machine line name the CPU's bf16 hardware, which decides the presets' times
    (AMX about twice AVX512-BF16's speed); without either, bf16 is not used."""
    from cnn_lab import device as devices

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    cpu = torch.device("cpu")
    assert devices.cpu_bf16() == kind and devices.fast_bf16(cpu) == bool(kind)
    assert devices.describe_device(cpu) == ("CPU: 2 threads" + (f", bf16 in hardware ({kind})" if kind else ""))


@pytest.mark.parametrize("side, batches", [(32, [196, 104]), (288, [2, 2, 1])])
def test_evaluation_on_a_cpu_takes_photos_a_few_at_a_time_and_gives_each_its_own_answer(side, batches):
    """evaluate's batches on a CPU, as device.inference_batch says: 196 CIFAR-10 images at once, photos a few (105
    validation photos at 288 px in one batch took three times as long: docs/benchmarks-log.md, 4 Dec); batched or not,
    each image gets the probabilities it gets alone."""
    from cnn_lab import data
    from cnn_lab.train.device_data import to_device
    from cnn_lab.train.loop import evaluate

    count = sum(batches)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, side, side), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 3, (count,), generator=generator)
    dataset = data.ImageDataset("noise", ["a", "b", "c"], {"train": data.Split(images, labels),
                                                           "test": data.Split(images, labels)})
    config = TrainConfig(val_fraction=0.0)
    device_data = to_device(dataset, config, torch.device("cpu"))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3))
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(len(inputs[0])))
    probs = evaluate(model, device_data, device_data.test, config).probs
    assert seen == batches
    with torch.no_grad():
        alone = torch.softmax(torch.cat([model(device_data.normalise(image[None])) for image in images]), 1)
    torch.testing.assert_close(probs, alone, atol=1e-5, rtol=1e-5)
