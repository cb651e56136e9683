import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_lab import data, explain, transfer
from cnn_lab.evaluate import top_k
from cnn_lab.models import ModelSpec
from cnn_lab.train import TrainConfig, fit
from cnn_lab.transfer import features
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def probe_result(boats9_folder):
    return transfer.run_transfer(transfer.TransferConfig(data="boats9"))


def test_linear_probe_on_boats9(probe_result):
    assert probe_result.test_acc >= 0.85, probe_result.test_acc
    assert probe_result.test_probs.shape == (118, 9)
    assert isinstance(probe_result.model, transfer.TransferModel)


def test_probe_model_predicts_the_same_end_to_end(probe_result):
    """The saved TransferModel (backbone + folded standardisation + head) reproduces the probe's predictions."""
    x = (probe_result.test_images[:8].float() / 255 - probe_result.mean) / probe_result.std
    with torch.no_grad():
        direct = torch.softmax(probe_result.model(x), 1)
        mirrored = torch.softmax(probe_result.model(x.flip(-1)), 1)
    # the probe averaged the features of the two views; the model sees one view at a time: same argmax mostly
    agree = ((direct + mirrored).argmax(1) == probe_result.test_probs[:8].argmax(1)).float().mean()
    assert agree >= 0.75


def test_feature_cache_is_reused(probe_result, monkeypatch):
    assert transfer.features_cached("efficientnet_lite0", transfer.load_images(transfer.TransferConfig()))
    assert not transfer.features_cached("mobilenet_v3_small", transfer.load_images(transfer.TransferConfig()))

    def no_extraction(*args, **kwargs):
        raise AssertionError("a re-run extracted features again")

    monkeypatch.setattr(features, "extract_features", no_extraction)
    again = transfer.run_transfer(transfer.TransferConfig(data="boats9", lr=0.1, epochs=10))
    assert again.test_acc >= 0.85  # only the head trained, on the cached features


def test_top_k_output(probe_result):
    top = top_k(probe_result.test_probs[0], probe_result.classes, 3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    assert all(name in probe_result.classes for name, _ in top)


def _zip_of_images(path, names, size=(40, 30)):
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buffer, "PNG")
            zf.writestr(name, buffer.getvalue())


def test_a_zip_made_by_macos_finder_reads_its_classes_and_not_its_resource_forks(tmp_path):
    """Finder, compressing the class folders themselves, adds __MACOSX/ with a ._ file beside each photo; that folder
    was read as a third class, "__MACOSX, which holds no files"."""
    zipped = tmp_path / "Archive.zip"
    names = [f"{c}/{i}.png" for c in ("kayak", "tug") for i in range(6)]
    _zip_of_images(zipped, names + [f"__MACOSX/{c}/._{i}.png" for c in ("kayak", "tug") for i in range(6)])
    root = data.dataset_root(data.extract_archive(zipped))
    assert data.load_folder(root, size=16).classes == ["kayak", "tug"] and data.class_names(root) == ["kayak", "tug"]


def test_dataset_from_a_zip_and_a_malicious_zip(tmp_path):
    good = tmp_path / "photos.zip"
    _zip_of_images(good, [f"photos/{c}/{i}.png" for c in ("kayak", "tug") for i in range(6)] + ["photos/readme.txt"])
    root = data.dataset_root(data.extract_archive(good))
    ds = data.load_folder(root, size=16)
    assert ds.classes == ["kayak", "tug"] and sum(len(s) for s in ds.splits.values()) == 12
    evil = tmp_path / "evil.zip"
    _zip_of_images(evil, ["a/1.png", "../../outside.png"])
    with pytest.raises(data.DatasetError, match="unsafe path"):
        data.extract_archive(evil)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes/readme.txt", "no images")
    with pytest.raises(data.DatasetError):
        data.load_folder(data.dataset_root(data.extract_archive(empty)), size=16)


def test_grad_cam_finds_the_object():
    """A CNN learns 'a bright square is present'; Grad-CAM must put most of its mass on the square."""
    g = torch.Generator().manual_seed(0)
    n = 600
    images = (torch.rand(n, 1, 32, 32, generator=g) * 60).to(torch.uint8)
    labels = torch.arange(n) % 2
    boxes = torch.randint(0, 24, (n, 2), generator=g)
    for i in range(n):
        if labels[i]:
            r, c = boxes[i].tolist()
            images[i, :, r : r + 8, c : c + 8] = 255
    split = data.Split(images, labels)
    ds = data.ImageDataset("squares", ["empty", "square"], {"train": split, "test": split})
    config = TrainConfig(model=ModelSpec("cnn", widths=[8, 16]), epochs=4, batch_size=32, val_fraction=0)
    result = fit(config, dataset=ds)
    assert result.test_acc > 0.95
    model = result.model
    layer = model[1][0]  # the second block's convolution, at 16x16
    inside = []
    for i in torch.nonzero(labels).flatten()[:20].tolist():
        x = (images[i : i + 1].float() / 255 - result.mean) / result.std
        cam, target = explain.grad_cam(model, layer, x, target=1)
        assert cam.shape == (32, 32) and target == 1
        r, c = boxes[i].tolist()
        inside.append(cam[r : r + 8, c : c + 8].sum().item() / cam.sum().item())
    assert np.mean(inside) > 3 * (64 / 1024)  # far more than the square's 6% share of the image


def test_cli_transfer_prints_a_json_line(boats9_folder, probe_result):
    out = subprocess.run([sys.executable, "-m", "cnn_lab", "transfer", "--data", str(boats9_folder), "--backbone",
                          "efficientnet_lite0", "--preset", "Linear probe (seconds, even on a CPU)", "--epochs", "5"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["test_acc"] > 0.8 and result["classes"] == 9 and "feature_seconds" in result


def test_weights_missing_offline_fail_the_job_with_a_sentence(monkeypatch, tmp_path, boats9_folder):
    import urllib.error
    import urllib.request

    from cnn_lab import jobs

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no cached weights either
    config = transfer.TransferConfig(data="boats9", backbone="resnet18")
    job = jobs.JobManager().start(config, kind="transfer",
                                  work=lambda log, control, saving: transfer.run_transfer(config, log, control, saving))
    job.thread.join(timeout=120)
    assert job.status == "failed"
    assert job.message.startswith("ResNet18 (torchvision)'s ImageNet weights could not be downloaded (")
    assert "EfficientNet-Lite0, which works offline" in job.message


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_the_inference_copy_folds_every_batch_norm_and_gives_the_same_outputs(name):
    """The frozen passes run a copy with each batch norm folded into its conv (twice as fast on a CPU): the same
    features to float precision, and the network itself untouched (its saved weights keep their names)."""
    import torchvision

    from cnn_lab.backbones import efficientnet_lite0_imagenet, inference_copy

    network = efficientnet_lite0_imagenet() if name == "efficientnet_lite0" else torchvision.models.resnet18()
    network.eval()
    norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    generator = torch.Generator().manual_seed(0)
    for norm in norms:  # statistics and affine parameters far from the identity, so that a wrong fold shows
        norm.running_mean.copy_(torch.randn(norm.num_features, generator=generator))
        norm.running_var.copy_(torch.rand(norm.num_features, generator=generator) + 0.5)
        norm.bias.data.copy_(torch.randn(norm.num_features, generator=generator))
    keys = set(network.state_dict())
    x = torch.randn(2, 3, 96, 96, generator=generator)
    fast = inference_copy(network, x[:1])
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules()) == len(norms)
    assert set(network.state_dict()) == keys
    with torch.no_grad():
        expected, got = network(x), fast(x)
    assert torch.allclose(got, expected, atol=1e-4 * expected.abs().max().item())


def test_blocks_that_train_on_a_cpu_use_the_faster_kernels_with_the_same_outputs_and_gradients():
    """On a CPU the blocks that train run their 5x5 depthwise convolutions in float32 under bf16 autocast, and their
    last batch norm on a contiguous copy (torch's kernels for those are several times faster): the outputs and
    gradients stay the network's own, and a copy of the model runs its own weights."""
    import copy
    import functools

    from cnn_lab.backbones import train_faster_on_cpu

    plain = transfer.build_transfer_model("efficientnet_lite0", 9, 4).train()
    fast = copy.deepcopy(plain)
    train_faster_on_cpu(fast.trainable)
    depthwise = [m for block in fast.trainable for m in block.modules() if isinstance(m, torch.nn.Conv2d)
                 and m.groups == m.in_channels > 1 and m.kernel_size == (5, 5)]
    assert depthwise, "the last 4 blocks of EfficientNet-Lite0 hold 5x5 depthwise convolutions"
    dtypes = []
    depthwise[0].register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast(x)
    assert dtypes == [torch.float32]  # without the change, autocast runs it in bf16
    outputs = []
    for model in (plain, fast):
        torch.manual_seed(0)  # the same drop-connect draws (EfficientNet drops residual branches while training)
        outputs.append(model(x))
    for output in outputs:
        output.square().sum().backward()
    assert torch.allclose(outputs[1], outputs[0], atol=1e-5)
    grads = [dict((name, p.grad) for name, p in model.named_parameters() if p.grad is not None) for model in (plain, fast)]
    assert grads[0].keys() == grads[1].keys() and grads[0]
    assert all(torch.allclose(grads[1][name], grads[0][name], atol=1e-4) for name in grads[0])
    patched = [m for m in copy.deepcopy(fast).modules() if isinstance(m.__dict__.get("forward"), functools.partial)]
    assert len(patched) == len(depthwise) + 1 and all(m.forward.args[0] is m for m in patched)  # a copy runs its own
