"""The packed CPU inference path of headway.nn.linear.Linear."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from headway.nn import linear
from headway.nn.linear import Linear, exact_matmul, fused_linear

pytestmark = pytest.mark.skipif(not linear._AVAILABLE, reason="oneDNN packed linear not available")


@pytest.fixture()
def layer():
    torch.manual_seed(0)
    return Linear(64, 48).eval()  # the packed path is for eval mode


def test_packed_path_matches_f_linear(layer):
    x = torch.randn(2, 7, 64)
    with torch.inference_mode():
        out = layer(x)
        gelu = layer.forward_gelu(x)
    assert layer._packed is not None  # the fast path was taken
    expected = F.linear(x, layer.weight, layer.bias)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gelu, F.gelu(expected), atol=1e-5, rtol=1e-5)


def test_exact_matmul_is_bit_identical(layer):
    x = torch.randn(5, 64)
    with torch.inference_mode(), exact_matmul():
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
    assert layer._packed is None


def test_packed_copy_follows_weight_changes(layer):
    x = torch.randn(3, 64)
    with torch.no_grad():
        layer(x)
        layer.weight.mul_(2)  # in place: bumps the version counter
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        layer.weight = torch.nn.Parameter(torch.randn(48, 64))  # a new tensor
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


def test_training_mode_takes_the_plain_path(layer):
    layer.train()
    x = torch.randn(3, 64, requires_grad=True)
    out = layer(x)
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()
    assert layer.weight.grad is not None and layer._packed is None
    with torch.inference_mode():
        assert torch.equal(layer(x.detach()), F.linear(x.detach(), layer.weight, layer.bias))


def test_eval_mode_with_autograd_is_packed_and_differentiable(layer):
    """``model(**inputs)`` without no_grad: packed forward, gradients as F.linear's."""
    reference = copy.deepcopy(layer)
    x = torch.randn(2, 5, 64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = layer(x), F.linear(x_ref, reference.weight, reference.bias)
    assert layer._packed is not None  # the fast path was taken
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    gelu = layer.forward_gelu(x)
    torch.testing.assert_close(gelu, F.gelu(out_ref), atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (out_ref * grad).sum().backward()
    for ours, theirs in ((x, x_ref), (layer.weight, reference.weight), (layer.bias, reference.bias)):
        torch.testing.assert_close(ours.grad, theirs.grad, atol=1e-5, rtol=1e-5)
    assert layer._packed is None  # a weight gradient means an optimizer step may follow


def test_input_gradients_alone_keep_the_packed_copy(layer):
    layer.requires_grad_(False)
    x = torch.randn(3, 64, requires_grad=True)
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(3, -1), atol=1e-5, rtol=1e-5)
    assert layer._packed is not None


def test_fused_projection_matches_separate_layers():
    torch.manual_seed(0)
    layers = [Linear(32, 32).eval() for _ in range(3)]
    x = torch.randn(2, 5, 32)
    with torch.inference_mode():
        fused = fused_linear(x, layers)
    expected = torch.cat([F.linear(x, lyr.weight, lyr.bias) for lyr in layers], dim=-1)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    assert fused_linear(x.requires_grad_(), layers) is None  # autograd: callers fall back


def test_copies_and_dtype_changes_drop_the_packed_copy(layer):
    with torch.inference_mode():
        layer(torch.randn(2, 64))
    clone = copy.deepcopy(layer)
    assert clone._packed is None
    layer.double()
    assert layer._packed is None
    x = torch.randn(2, 64, dtype=torch.float64)
    with torch.inference_mode():
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_fused_optimizer_steps_never_leave_a_stale_copy():
    """Fused AdamW updates weights in place without bumping version counters: the copy must still go."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(Linear(16, 16), torch.nn.Tanh(), Linear(16, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    x = torch.randn(8, 16)

    def packed_output():
        with torch.inference_mode():
            return model(x)

    def plain_output():
        with torch.inference_mode(), exact_matmul():
            return model(x)

    model.eval()
    packed_output()  # builds the copies
    for _ in range(2):  # train without switching modes (people do fine-tune in eval mode)
        model(x).square().mean().backward()  # the forward itself runs packed
        optimizer.step()
        optimizer.zero_grad()
        torch.testing.assert_close(packed_output(), plain_output(), atol=1e-5, rtol=1e-5)
    model.train()
    model(x).square().mean().backward()
    optimizer.step()
    model.eval()
    torch.testing.assert_close(packed_output(), plain_output(), atol=1e-5, rtol=1e-5)


def test_weights_made_under_inference_mode():
    """A model loaded inside ``torch.inference_mode()`` has weights without version counters."""
    torch.manual_seed(0)
    with torch.inference_mode():
        layers = [Linear(8, 4).eval() for _ in range(2)]
        x = torch.randn(2, 8)
        assert layers[0].weight.is_inference()
        torch.testing.assert_close(layers[0](x), F.linear(x, layers[0].weight, layers[0].bias), atol=1e-6, rtol=0)
        expected = torch.cat([F.linear(x, lyr.weight, lyr.bias) for lyr in layers], dim=-1)
        torch.testing.assert_close(fused_linear(x, layers), expected, atol=1e-6, rtol=0)
