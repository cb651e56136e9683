"""Transfer presets, LP-FT (the fine-tuning preset starts from a linear probe's head) and fine-tuning on the frozen
blocks' cached outputs (the CPU recipe)."""
import pytest
import torch
import torchvision

from cnn_lab import augment, transfer
from cnn_lab.backbones import BACKBONES, Pretrained
from cnn_lab.downloads import Reporter
from cnn_lab.metrics import MetricLog
from cnn_lab.normalise import imagenet_stats, normalise
from cnn_lab.train import TrainingError


def test_presets_are_valid_configs():
    for name, (description, config) in transfer.PRESETS.items():
        assert description and config.mode in transfer.MODES
        assert transfer.preset(name) == config and transfer.preset(name) is not config  # a fresh copy
        if config.augment_preset:
            augment.build(augment.load_preset(config.augment_preset), (config.image_size, config.image_size))


def test_fine_tuning_starts_from_the_probe_head(boats9_folder):
    """With a learning rate too small to move it, the fine-tuned head is exactly the probe's head (LP-FT)."""
    probe = transfer.run_transfer(transfer.TransferConfig(image_size=64))
    tuned = transfer.run_transfer(transfer.TransferConfig(
        mode="partial", unfreeze=1, epochs=1, lr=1e-7, weight_decay=0.0, batch_size=64, image_size=64,
        head_from_probe=True, tta=True))
    assert torch.allclose(tuned.model.head.weight, probe.model.head.weight, atol=1e-5)
    assert torch.equal(tuned.model.feature_std, probe.model.feature_std)
    assert tuned.test_acc > 0.5  # nine classes: chance is 11%
    cold = transfer.run_transfer(transfer.TransferConfig(mode="partial", unfreeze=1, epochs=1, lr=1e-7, batch_size=64,
                                                         image_size=64))
    assert not torch.allclose(cold.model.head.weight, probe.model.head.weight, atol=1e-2)
    assert cold.test_acc < tuned.test_acc - 0.2  # a random head, barely trained


def _frozen_output_matches_the_images(pretrained: Pretrained, unfreeze: int) -> None:
    model = transfer.TransferModel(pretrained, 9, unfreeze).eval()
    images = torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8)
    outputs, features = transfer.frozen_outputs(model, images, 2, None, torch.device("cpu"))
    x = normalise(images, *imagenet_stats())
    tail = transfer.FromFrozenOutput(model)
    with torch.no_grad():
        for view, pixels in enumerate((x, x.flip(-1))):
            torch.testing.assert_close(features[view], model.backbone(pixels), atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(tail(outputs[view]), model(pixels), atol=1e-4, rtol=1e-4)


def test_the_blocks_that_train_give_the_same_logits_from_the_cached_frozen_output(monkeypatch):
    """Fed the frozen blocks' output, the model computes what it computes from the image: for EfficientNet-Lite0
    with 1, 2 and 4 blocks that train, and for a ResNet18 (untrained weights) cut inside its stem. In float32: the
    cut is what is tested here (bf16, where the CPU has it, is the next test's)."""
    from cnn_lab import device

    monkeypatch.setattr(device, "fast_bf16", lambda _: False)
    lite0 = BACKBONES["efficientnet_lite0"].load(Reporter())
    for unfreeze in (1, 2, 4):
        _frozen_output_matches_the_images(lite0, unfreeze)
    resnet = torchvision.models.resnet18()
    resnet.fc = torch.nn.Identity()
    blocks = [torch.nn.ModuleList([resnet.conv1, resnet.bn1]), resnet.layer1, resnet.layer2, resnet.layer3,
              resnet.layer4]
    _frozen_output_matches_the_images(Pretrained(resnet, blocks, 512, resnet.layer4), unfreeze=4)


def test_the_frozen_pass_in_bf16_stays_within_a_few_percent_of_float32(monkeypatch):
    """Where the CPU computes bf16 fast, the frozen blocks run in it over the training views (about twice as fast):
    their features differ from float32's by about 2% (relative norm); elsewhere they stay float32."""
    from cnn_lab import device

    model = transfer.TransferModel(BACKBONES["efficientnet_lite0"].load(Reporter()), 9, 2).eval()
    images = torch.randint(0, 256, (6, 3, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    runs = {}
    for fast in (False, True):
        monkeypatch.setattr(device, "fast_bf16", lambda _: fast)
        runs[fast] = transfer.frozen_outputs(model, images, 1, None, torch.device("cpu"), fast=True)[1][0]
    error = ((runs[True] - runs[False]).norm() / runs[False].norm()).item()
    assert 1e-4 < error < 0.05, error  # bf16 was used, and it kept the features (images seeded: the error of noise
    # images moves with them, 0.061 once with whatever the earlier tests had left in the global generator)


def test_a_cpu_pass_takes_a_few_photos_at_a_time_and_each_photo_gets_its_own_features():
    """On a CPU the frozen network takes as many photos at once as hold the pixels of 4 at 224 px (bigger batches
    page-faulted their memory in again at every layer: device.inference_batch); so batched, each photo still gets
    the features it gets alone."""
    from cnn_lab.device import inference_batch

    cpu = torch.device("cpu")
    assert [inference_batch(cpu, torch.Size([3, side, side])) for side in (32, 64, 160, 224, 288, 1024)] == \
        [32, 32, 7, 4, 2, 1]
    assert inference_batch(torch.device("cuda"), torch.Size([3, 224, 224])) == 32
    pretrained = BACKBONES["efficientnet_lite0"].load(Reporter())
    images = torch.randint(0, 256, (6, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    together = transfer.extract_features(pretrained, images, cpu)  # batches of 4 and 2
    alone = torch.cat([transfer.extract_features(pretrained, image[None], cpu) for image in images])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_fine_tuning_on_cached_frozen_outputs(boats9_folder):
    """The CPU recipe's path at 64 px: the frozen pass reports its progress, only the blocks that train change, and
    the saved model, run on the test photos and their mirrors, gives the run's test probabilities."""
    config = transfer.TransferConfig(mode="partial", unfreeze=2, frozen_views=3, epochs=1, lr=0.02,
                                     weight_decay=5e-4, batch_size=32, image_size=64,
                                     augment_preset="photos: zoom crop and colour", head_from_probe=True)
    log, fractions = MetricLog(), []
    report = log.set_progress
    log.set_progress = lambda **progress: (fractions.append((progress.get("stage", ""),
                                                             progress.get("stage_fraction"))), report(**progress))
    result = transfer.run_transfer(config, log=log)
    # the frozen pass's progress bar: 0 to 1, never back (decoding the photos, when not cached yet, has its own)
    fractions = [f for stage, f in fractions if stage.startswith("the frozen blocks") and f is not None]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions) and len(fractions) > 10
    fresh = transfer.TransferModel(BACKBONES["efficientnet_lite0"].load(Reporter()), 9, 2)
    trained, before = result.model.state_dict(), fresh.state_dict()
    frozen = {name for name, p in fresh.named_parameters() if not p.requires_grad}
    assert frozen and all(torch.equal(trained[name], before[name]) for name in frozen)
    assert not torch.equal(trained["backbone._conv_head.weight"], before["backbone._conv_head.weight"])
    assert result.test_probs.shape == (118, 9) and result.test_acc > 0.5, result.test_acc  # chance: 11%
    x = (result.test_images.float() / 255 - result.mean) / result.std
    with torch.no_grad():
        again = (torch.softmax(result.model(x), 1) + torch.softmax(result.model(x.flip(-1)), 1)) / 2
    torch.testing.assert_close(again, result.test_probs, atol=1e-4, rtol=1e-4)


def test_more_views_than_a_mirror_need_an_augmentation_preset():
    with pytest.raises(TrainingError, match="need an augmentation preset"):
        transfer.run_transfer(transfer.TransferConfig(mode="partial", frozen_views=3))


@pytest.mark.parametrize("change, sentence", [
    (dict(epochs=-1), "Set at least 1 epoch, not -1: with fewer there is nothing to train."),
    (dict(lr=0.0), "The learning rate must be a positive number."),
    (dict(mode="partial", frozen_views=9999), "The frozen views must be a whole number from 0 to 8, not 9999 (each "
                                               "view of each photo is kept in memory)."),
])
def test_impossible_settings_are_refused_before_any_photo_loads(change, sentence):
    """Refused before the photos decode and the frozen pass runs (9,999 views would hold hundreds of GB)."""
    with pytest.raises(TrainingError) as refused:
        transfer.run_transfer(transfer.TransferConfig(data="/nonexistent", **change))
    assert str(refused.value) == sentence


@pytest.mark.parametrize("size", [-5, 0, 16, 5000])
def test_an_impossible_image_size_is_refused_before_any_photo_loads(size):
    with pytest.raises(TrainingError, match=r"^The image size must be a whole number of pixels from 32 to 1024"):
        transfer.run_transfer(transfer.TransferConfig(data="/nonexistent", image_size=size))


def test_the_memory_check_counts_the_frozen_views_a_recipe_keeps():
    """A shared server's budget check (transfer/memory.py): the AMX recipe keeps the frozen blocks' outputs of 8
    views of each photo, the CPU recipe of 4, so it is estimated to take more memory for the same photos."""
    from cnn_lab.transfer.memory import estimated_peak_gb

    cpu, amx = transfer.preset(transfer.CPU_RECIPE), transfer.preset(transfer.AMX_RECIPE)
    arrays_gb = 1_000 * 3 * 288**2 / 2**30  # 1,000 photos decoded at 288 px
    more = estimated_peak_gb(amx, 1_000, on_gpu=False) - estimated_peak_gb(cpu, 1_000, on_gpu=False)
    assert more == pytest.approx(4 * 0.7 * arrays_gb)  # four views more (measured: 0.7 times the photos' bytes each)
