import pytest
import torch

from cnn_lab import augment
from cnn_lab.models import ModelSpec
from cnn_lab.train import TrainConfig, fit

IMAGE = (torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)


def _all_steps() -> list[dict]:
    steps = [augment.new_step(name, p=0.7) for name in augment.STEPS]
    steps[1]["enabled"] = False
    return steps


def test_json_to_transforms_to_json_round_trip():
    steps = _all_steps()
    pipeline = augment.build(augment.from_json(augment.to_json(steps)), (48, 64))
    assert augment.to_steps(pipeline) == [s for s in steps if s["enabled"]]
    assert augment.to_json(augment.to_steps(pipeline)) == augment.to_json([s for s in steps if s["enabled"]])
    rebuilt = augment.build(augment.to_steps(pipeline), (48, 64))
    assert repr(rebuilt) == repr(pipeline)


def test_seed_reproduces_draws_and_changes_with_seed():
    steps = _all_steps()
    first = augment.draw(IMAGE, steps, 4, seed=7)
    again = augment.draw(IMAGE, steps, 4, seed=7)
    other = augment.draw(IMAGE, steps, 4, seed=8)
    for (a, log_a), (b, log_b) in zip(first, again):
        assert torch.equal(a, b) and log_a == log_b
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, other))
    assert any(line.startswith("rotated ") for _, log in first for line in log)


def test_exported_code_runs_and_matches():
    steps = [augment.new_step("rotation"), augment.new_step("color_jitter", 1.0), augment.new_step("crop", 0.8),
             augment.new_step("erasing", 0.5)]
    code = augment.to_code(steps, size=(48, 64))
    namespace: dict = {}
    exec(code, namespace)
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        exported = namespace["pipeline"](IMAGE).clamp(0, 1)
        ours, _ = augment.draw(IMAGE, steps, 1, seed)[0]
        assert torch.equal(exported, ours)


@pytest.mark.parametrize("step, message", [
    ({**augment.new_step("rotation"), "params": {"min_deg": 30.0, "max_deg": -30.0}}, "range is inverted"),
    ({**augment.new_step("blur"), "params": {"kernel": 4.0, "min_sigma": 0.1, "max_sigma": 2.0}}, "odd and positive"),
    ({**augment.new_step("color_jitter"), "params": {"brightness": -1.0, "contrast": 0.0, "saturation": 0.0,
                                                     "hue": 0.0}}, "non negative"),
])
def test_rejected_settings_get_one_sentence(step, message):
    with pytest.raises(augment.AugmentError, match=message):
        augment.build([step], (32, 32))


def test_crop_larger_than_image_without_padding():
    step = augment.new_step("crop", 1.0)
    step["params"] = {"size": 100.0, "padding": 0.0}
    with pytest.raises(augment.AugmentError, match="larger than input image size"):
        augment.draw(IMAGE, [step], 1, 0)


def test_bad_json():
    with pytest.raises(augment.AugmentError, match="not a pipeline JSON"):
        augment.from_json('{"hello": 1}')


def test_tta_views_and_masks():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(augment.TTA_VIEWS["flipped"](x), x.flip(-1))
    shifted = augment.TTA_VIEWS["shifted down-right"](x)
    assert torch.equal(shifted[..., 1:, 1:], x[..., :-1, :-1])
    mask = augment.dropblock_mask(64, 64, block=7, drop_prob=0.2, seed=0)
    assert 0.1 < 1 - mask.mean().item() < 0.3
    cut = augment.cutout_mask(32, 32, 8, seed=1)
    assert 16 <= (cut == 0).sum().item() <= 64


def test_trainer_uses_a_saved_preset():
    steps = [augment.new_step("rotation", 0.5), augment.new_step("crop", 0.5)]
    steps[1]["params"]["padding"] = 1.0
    name = augment.save_preset("digits test", steps)
    assert name in augment.list_presets() and augment.load_preset(name) == steps
    config = TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[16, 32]), epochs=6, batch_size=64,
                         augment_preset=name)
    assert fit(config).test_acc > 0.8
    with pytest.raises(augment.AugmentError, match="no augmentation preset"):
        fit(TrainConfig(dataset="digits", model=ModelSpec("mlp"), epochs=1, augment_preset="missing"))


def test_builtin_preset_is_listed_and_draws():
    name = "photos: zoom crop and colour"
    assert augment.list_presets()[0] == name
    steps = augment.load_preset(name)
    steps[0]["params"]["min_scale"] = 0.9  # a copy: the built-in stays as it was
    assert augment.BUILTIN_PRESETS[name][0]["params"]["min_scale"] == 0.35
    drawn = augment.draw(IMAGE, augment.load_preset(name), 4, seed=0)
    assert len({round(image.sum().item(), 3) for image, _ in drawn}) == 4  # four different draws
    assert all(image.shape == IMAGE.shape for image, _ in drawn)


def test_the_course_boat_augmentation_is_built_in():
    """Lesson 28: RandomRotation(30), RandomHorizontalFlip, RandomVerticalFlip, RandomGrayscale."""
    name = "course: boats (lesson 28)"
    assert name in augment.list_presets()
    code = augment.to_code(augment.load_preset(name), (224, 224))
    for transform in ("v2.RandomRotation(degrees=(-30, 30))", "v2.RandomHorizontalFlip(p=1.0)",
                      "v2.RandomVerticalFlip(p=1.0)", "v2.RandomGrayscale(p=1.0)"):
        assert transform in code
    drawn = augment.draw(IMAGE, augment.load_preset(name), 8, seed=1)
    assert len({round(image.sum().item(), 3) for image, _ in drawn}) == 8 and all(
        image.shape == IMAGE.shape for image, _ in drawn)


def test_sampled_parameters_read_as_words_not_reprs():
    steps = [augment.new_step(name, 1.0) for name in augment.STEPS]
    (_, log), = augment.draw(IMAGE, steps, 1, seed=0)
    text = "; ".join(log)
    assert "rotated" in text and "mirrored left-right" in text and "brightness x" in text
    assert "=" not in text and "tensor" not in text and "needs_crop" not in text, text
