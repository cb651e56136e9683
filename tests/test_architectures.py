"""Issue 35: torchvision's classification networks by name on "Inside the network" (AppTest). Offline and without
their weights, the page says so in one sentence and keeps EfficientNet-Lite0; with weights in torch's hub folder
(here a freshly initialised network saved under the weights' file name: the page cannot tell, and no network is
needed), every view works; a vision transformer gets a sentence saying which views apply, and its token layers
draw without error."""
from pathlib import Path

import pytest
import torch

from cnn_lab import architectures, inside, subjects
from cnn_lab.backbones import hub_file
from cnn_lab.normalise import imagenet_stats
from tests.helpers import ROOT, assert_the_views_of_a_convolution

PAGE = str(ROOT / "pages/7_inside.py")


def _open(choice: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["inside_model"] = choice
    return at.run()


def test_offline_without_weights_one_sentence_and_efficientnet_lite0(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("CNN_LAB_DATA", "")
    monkeypatch.setattr(architectures, "can_download", lambda: False)
    at = _open("torchvision:resnet50")
    assert not at.exception
    assert [w.value for w in at.warning] == ["ResNet-50's ImageNet weights are not on this machine and cannot be "
                                             "downloaded now (no network), so here is EfficientNet-Lite0, which "
                                             "ships with the app."]
    assert at.selectbox(key="inside_layer").options[0].startswith("0. _conv_stem")  # EfficientNet-Lite0's


def test_resnet18_with_its_weights_file_shows_every_view(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision.models as tvm

    path = hub_file(architectures.weights_of("resnet18"))
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tvm.resnet18().state_dict(), path)
    at = _open("torchvision:resnet18")
    assert not at.exception and not at.warning
    assert at.selectbox(key="inside_layer").options[:2] == ["0. conv1 (Conv2d) -> 64 x 112 x 112",
                                                           "1. bn1 (BatchNorm2d) -> 64 x 112 x 112"]
    assert_the_views_of_a_convolution(at)
    path.write_bytes(b"not weights")  # a damaged file: one sentence, and the pretrained network
    with pytest.raises(subjects.WeightsUnavailable, match="cannot be read .* delete it and download it again"):
        subjects.architecture_subject("resnet18")


def test_a_vision_transformer_says_which_views_apply_and_its_token_layers_draw(monkeypatch):
    import torchvision.models as tvm

    torch.manual_seed(0)
    vit = tvm.vit_b_16().eval()
    assert inside._canvas(vit, vit.conv_proj, (3, 224, 224), *imagenet_stats()) == (3, 224, 224)  # it checks sizes
    monkeypatch.setattr(architectures, "weights_file", lambda name: Path("here"))  # its 330 MB weights stand-in:
    monkeypatch.setattr(subjects, "architecture_subject",  # the same network, freshly initialised
                        lambda name: subjects.Subject("ViT-B/16", vit, [f"c{i}" for i in range(1000)], (3, 224, 224),
                                                    *imagenet_stats()))
    at = _open("torchvision:vit_b_16")
    assert not at.exception
    assert any(i.value.startswith("ViT-B/16 is a transformer, not a CNN: only its first layer") for i in at.info)
    layers = at.selectbox(key="inside_layer").options
    assert layers[0] == "0. conv_proj (Conv2d) -> 768 x 14 x 14"
    at.selectbox(key="inside_layer").set_value(next(o for o in layers if "ln_1" in o)).run()
    assert not at.exception and any(c.value.startswith("A list of 197 tokens of 768 numbers") for c in at.caption)
