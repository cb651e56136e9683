"""Training a network on a dataset, one file a job:

config.py       TrainConfig (what a run is asked to do) and its checks
device_data.py  the splits on the device as uint8 tensors, and the normalisation registry
optim.py        the optimizer and learning-rate schedule registries, parameter groups
tricks.py       airbench's patch whitening and lookahead
loop.py         fit, train_one_epoch, evaluate: the loop itself
resume.py       what each epoch keeps so that a run can be resumed exactly

The names other modules use are here."""
from cnn_lab.train.config import TrainConfig, TrainingError
from cnn_lab.train.loop import TrainResult, download_reporter, fit, resolve_device
from cnn_lab.train.resume import Checkpoint, Saving

__all__ = ["Checkpoint", "Saving", "TrainConfig", "TrainingError", "TrainResult", "download_reporter", "fit",
           "resolve_device"]
