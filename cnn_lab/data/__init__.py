"""Datasets: every dataset becomes uint8 image tensors (N, C, H, W), int64 labels and class names. One file a job:

splits.py    the dataset's shape (ImageDataset, Split), its errors, stratified splits
cache.py     decoded arrays cached on disk, keyed by a fingerprint of the source
folders.py   image folders (ImageFolder layout), decoded in parallel within the decode budget
archives.py  .tar.gz and .zip archives extracted once, safely; local archives that stand in for downloads
registry.py  the datasets by name (digits, torchvision's, local), and whether each is here now

The names other modules use are here."""
from cnn_lab.data.archives import dataset_root, extract_archive, load_archive, load_local, local_archive
from cnn_lab.data.cache import cached
from cnn_lab.data.folders import class_names, load_folder
from cnn_lab.data.registry import (DATASETS, Availability, DatasetSpec, availability, class_count, image_shape,
                                   load_dataset, load_digits, where_here)
from cnn_lab.data.splits import (
                                 SPLITS,
                                 DatasetError,
                                 DatasetUnavailable,
                                 ImageDataset,
                                 Split,
                                 split_of,
                                 split_one,
                                 stratified_split,
)

__all__ = ["DATASETS", "SPLITS", "Availability", "DatasetError", "DatasetSpec", "DatasetUnavailable", "ImageDataset",
           "Split", "availability", "cached", "class_count", "class_names", "dataset_root", "extract_archive", "image_shape",
           "load_archive", "load_dataset", "load_digits", "load_folder", "load_local", "local_archive", "split_of",
           "split_one", "stratified_split", "where_here"]
