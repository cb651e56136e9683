import pytest
import torch
import torch.nn.functional as F

from cnn_lab import activations

X = torch.tensor([-3.0, -1.0, -0.2, 0.3, 1.0, 2.5], dtype=torch.float64)

CLOSED_FORMS = {
    "sigmoid": lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)),
    "tanh": lambda x: 1 - torch.tanh(x) ** 2,
    "relu": lambda x: (x > 0).double(),
    "leaky_relu": lambda x: torch.where(x > 0, 1.0, 0.2).double(),
    "elu": lambda x: torch.where(x > 0, torch.ones_like(x), torch.exp(x)),
    "softplus": lambda x: torch.sigmoid(x),
    "silu": lambda x: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))),
    "relu6": lambda x: ((x > 0) & (x < 6)).double(),
    "identity": lambda x: torch.ones_like(x),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_autograd_derivative_matches_closed_form(name):
    params = {"negative_slope": 0.2} if name == "leaky_relu" else {}
    _, grad = activations.curve(name, X, **params)
    assert torch.allclose(grad, CLOSED_FORMS[name](X), atol=1e-9)


def test_every_registered_activation_has_a_curve():
    for name in activations.ACTIVATIONS:
        y, g = activations.curve(name, torch.linspace(-4, 4, 101))
        assert y.shape == g.shape == (101,) and torch.isfinite(g).all()


def test_sigmoid_max_derivative_is_a_quarter_at_zero():
    value, where = activations.max_derivative("sigmoid")
    assert value == pytest.approx(0.25) and where == pytest.approx(0.0, abs=1e-3)
    assert value ** 10 == pytest.approx(0.25 ** 10)


def test_softmax_and_cross_entropy_match_torch():
    logits, target = [4.0, 1.0, 2.0, -8.0], 0
    out = activations.softmax_cross_entropy(logits, target)
    z = torch.tensor(logits, dtype=torch.float64)
    assert out["probs"] == pytest.approx(torch.softmax(z, 0).tolist())
    assert out["loss"] == pytest.approx(F.cross_entropy(z[None], torch.tensor([0])).item())
    y = torch.nn.functional.one_hot(torch.tensor(target), 4).double()
    assert out["grad"] == pytest.approx((torch.softmax(z, 0) - y).tolist())  # p - y
    hot = activations.softmax_cross_entropy(logits, target, temperature=2.0)
    assert hot["probs"] == pytest.approx(torch.softmax(z / 2, 0).tolist())


def test_dead_and_saturated_fractions_match_direct_counts():
    pre = torch.randn(100_000, generator=torch.Generator().manual_seed(0)) * 3
    relu = activations.unit_stats("relu", pre)
    assert relu.dead == pytest.approx((pre <= 0).float().mean().item())
    sig = activations.unit_stats("sigmoid", pre, threshold=0.05)
    s = torch.sigmoid(pre)
    assert sig.saturated == pytest.approx((s * (1 - s) < 0.05).float().mean().item())
    assert sig.dead == 0.0


def test_layer_activations_from_a_model():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh())
    found = activations.layer_activations(model, torch.randn(16, 4))
    assert [name for name, _ in found] == ["1", "3"] and found[0][1].numel() == 128
