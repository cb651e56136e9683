"""The network a transfer run trains: a pretrained backbone with a new linear head, blocks frozen or not; and the
same network fed with its frozen blocks' cached outputs instead of images."""
from __future__ import annotations

import torch
from torch import nn

from cnn_lab import runs
from cnn_lab.backbones import BACKBONES, Pretrained
from cnn_lab.downloads import Reporter
from cnn_lab.transfer.config import TransferConfig


class TransferModel(nn.Module):
    """backbone features -> (standardise) -> linear head. Blocks that do not train stay in eval mode, so their
    batch-norm statistics stay the pretrained ones."""

    def __init__(self, pretrained: Pretrained, classes: int, trainable_blocks: int | None = 0):
        super().__init__()
        self.backbone = pretrained.features
        self.head = nn.Linear(pretrained.dim, classes)
        self.register_buffer("feature_mean", torch.zeros(pretrained.dim))
        self.register_buffer("feature_std", torch.ones(pretrained.dim))
        blocks = pretrained.blocks
        count = len(blocks) if trainable_blocks is None else min(trainable_blocks, len(blocks))
        self.frozen = blocks[: len(blocks) - count]
        self.trainable = blocks[len(blocks) - count :]
        self.cam_layer = pretrained.cam_layer
        if count < len(blocks):
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            for block in self.trainable:
                for p in block.parameters():
                    p.requires_grad_(True)

    def train(self, mode: bool = True) -> "TransferModel":
        super().train(mode)
        for block in self.frozen:
            block.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.backbone(x) - self.feature_mean) / self.feature_std)

    def cut(self) -> nn.Module:
        """The last frozen block (its output is what the blocks that train start from); of a block kept as a list
        of layers (a stem), its last layer."""
        block = self.frozen[-1]
        return block[-1] if isinstance(block, nn.ModuleList) else block


class FromFrozenOutput(nn.Module):
    """A TransferModel fed with its frozen blocks' output (computed once per image and cached) instead of an image.
    A forward hook on the last frozen module replaces that module's output with the given one, so the blocks after
    it run as usual; the frozen blocks only see a tiny blank stand-in image (about 1% of their work at 288 px)."""

    def __init__(self, model: TransferModel):
        super().__init__()
        self.model = model

    def forward(self, frozen_output: torch.Tensor) -> torch.Tensor:
        stand_in = frozen_output.new_zeros(len(frozen_output), 3, 32, 32)
        handle = self.model.cut().register_forward_hook(lambda module, inputs, output: frozen_output)
        try:
            return self.model(stand_in)
        finally:
            handle.remove()


def build_transfer_model(backbone: str, classes: int, trainable_blocks: int | None = 0) -> TransferModel:
    return TransferModel(BACKBONES[backbone].load(Reporter()), classes, trainable_blocks)


def load_run_model(record: "runs.RunRecord") -> TransferModel:
    """A finished transfer run's model from its folder (weights_only loading)."""
    config = TransferConfig.from_json(record.config)
    model = build_transfer_model(config.backbone, len(record.classes), None)
    model.load_state_dict(runs.load_weights(record.run_id))
    return model.eval()
