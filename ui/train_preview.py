"""Before Start on the train page: what will be trained, as TensorFlow Playground shows the network and the data
before you press play. The model's layers with their output shapes and parameters (the summary "Inside the
network" computes), and one labelled training image of each class of the chosen dataset."""
from __future__ import annotations

import streamlit as st
import torch

from cnn_lab import data as datasets
from cnn_lab import inside
from cnn_lab.downloads import Reporter
from cnn_lab.models import ModelError, build_model
from cnn_lab.inside_charts import contact_sheet
from cnn_lab.train import TrainConfig, TrainingError
from ui.inputs import jpeg, picture
from ui.progress import once_with_progress, ready

PREVIEW = "train preview"  # the datasets read for a preview, for the whole server


@st.cache_data(max_entries=32, show_spinner=False)
def layer_rows(spec_key: str, _config: TrainConfig, input_shape: tuple[int, ...], classes: int) -> list[dict]:
    """The model's layers for one blank input: name, kind, output shape and parameters."""
    model = build_model(_config.model, input_shape, classes)
    seen = inside.inspect(model, torch.zeros(1, *input_shape))
    return [{"layer": l.name, "kind": l.kind, "output": " x ".join(map(str, l.shape)), "parameters": l.parameters}
            for l in seen.layers]


def preview_dataset(name: str) -> datasets.ImageDataset:
    """The dataset, read once for the server (the first time from the files, with a count and ETA; the decoded
    copy is cached on disk, so Start then begins sooner)."""
    def load(show) -> datasets.ImageDataset:
        return datasets.load_dataset(name, Reporter(report=lambda progress: show(progress.fraction, progress.text())))

    return once_with_progress(PREVIEW, name, load, "Reading the dataset (the first time only)", limit=3)


def one_of_each_class(split: datasets.Split, count: int = 10) -> list[int]:
    """The index of the first training image of each class (at most `count` classes)."""
    firsts: dict[int, int] = {}
    for index, label in enumerate(split.labels.tolist()):
        firsts.setdefault(label, index)
        if len(firsts) == count:
            break
    return [firsts[label] for label in sorted(firsts)]


def model_view(config: TrainConfig, shape: tuple[int, int, int], classes: int) -> None:
    rows = layer_rows(repr(config.model) + str(shape) + str(classes), config, shape, classes)
    st.markdown(f"**The model**: {len(rows)} layers, {sum(r['parameters'] for r in rows):,} parameters; each row is "
                f"one layer, with the shape of what it hands to the next")
    st.dataframe(rows, hide_index=True, height=min(400, 38 + 35 * len(rows)))


def data_view(dataset: datasets.ImageDataset) -> None:
    train = dataset.splits["train"]
    st.markdown(f"**The data**: {len(train.labels):,} training images of "
                f"{' x '.join(map(str, train.images.shape[1:]))}, {len(dataset.classes)} classes; one of each:")
    shown = one_of_each_class(train)
    sheet = contact_sheet([picture(train.images[i]) for i in shown],
                          [dataset.classes[int(train.labels[i])][:12] for i in shown], columns=5, side=72)
    st.image(jpeg(torch.tensor(sheet).permute(2, 0, 1)),  # one picture: ten took ten requests at each preset
             alt="One training image of each class, labelled: " + ", ".join(dataset.classes[int(train.labels[i])]
                                                                          for i in shown))


def train_preview(config: TrainConfig) -> None:
    """The model and one labelled image of each class, or one sentence on why not yet. The images show at once
    when reading the data costs nothing (the built-in digits, or read already); otherwise a button reads it,
    since the first decoding of a large set takes a minute of both cores."""
    st.header("What will be trained")
    try:
        config.validate()
    except (TrainingError, ModelError) as error:
        st.error(str(error))
        return
    spec = datasets.DATASETS.get(config.dataset)
    if spec is not None and not datasets.availability(config.dataset).on_machine:
        st.caption("The model and a few of its images show here once the data is on this machine (see above).")
        return  # a preview must not start a download
    shape = datasets.image_shape(config.dataset)
    classes = spec.classes if spec else len(datasets.class_names(config.dataset))
    left, right = st.columns([3, 2])
    with left:
        model_view(config, shape, max(classes, 2))
    with right:
        if config.dataset != "digits" and not ready(PREVIEW, config.dataset) and not st.button(
                "Show one image of each class", help="Reads the dataset: about a minute the first time on 2 cores "
                "for CIFAR-10 (the decoded copy is kept, so Start then begins sooner)."):
            return
        try:
            data_view(preview_dataset(config.dataset))
        except (datasets.DatasetUnavailable, datasets.DatasetError) as error:
            st.info(f"The data cannot be read for a preview: {error}")
