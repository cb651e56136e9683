"""Transfer presets and LP-FT: the fine-tuning preset starts from a linear probe's head."""
import torch

from cnn_lab import augment, transfer


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
