"""Transfer learning: a pretrained backbone with a new head, trained as a linear probe on cached features, by
fine-tuning its last N blocks, or in full. One file a job:

config.py    TransferConfig, the modes and the recipes (presets)
model.py     the backbone with its new head; the same fed with its frozen blocks' cached outputs
sources.py   where the photos come from (boats9, Kaggle, an upload, a folder) and how they load
features.py  the frozen backbone's features of every photo, cached on disk
head.py      the linear head fitted on cached features
frozen.py    fine-tuning on the frozen blocks' cached outputs (the CPU recipe)
memory.py    a job's peak memory, estimated before decoding (what a shared server's budget checks)
run.py       run_transfer: one run from its config

The names other modules use are here."""
from cnn_lab.transfer.config import (AMX_RECIPE, CPU_RECIPE, GPU_RECIPE, MAX_FROZEN_VIEWS, MODES, PRESETS, TransferConfig,
                                     preset)
from cnn_lab.transfer.features import extract_features, features_cached
from cnn_lab.transfer.frozen import frozen_outputs, frozen_pass_minutes
from cnn_lab.transfer.model import FromFrozenOutput, TransferModel, build_transfer_model, load_run_model
from cnn_lab.transfer.run import check as check_transfer
from cnn_lab.transfer.run import run_transfer
from cnn_lab.transfer.sources import (
                                      KAGGLE_SERVER,
                                      SOURCES,
                                      download_kaggle_boats,
                                      first_ready_source,
                                      kaggle_boats_folder,
                                      kaggle_progress,
                                      load_images,
)

__all__ = ["AMX_RECIPE", "CPU_RECIPE", "GPU_RECIPE", "KAGGLE_SERVER", "MAX_FROZEN_VIEWS", "MODES", "PRESETS", "SOURCES",
           "FromFrozenOutput", "TransferConfig", "TransferModel", "build_transfer_model", "check_transfer",
           "download_kaggle_boats", "extract_features", "features_cached",
           "first_ready_source", "frozen_outputs", "frozen_pass_minutes", "kaggle_boats_folder", "kaggle_progress",
           "load_images", "load_run_model", "preset", "run_transfer"]
