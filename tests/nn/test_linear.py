"""headway.nn.linear.Linear: F.linear by default; the opt-in oneDNN CPU product (HEADWAY_ONEDNN_LINEAR=1)
on the stored weight, and where it steps aside. The tests switch the opt-in path on for themselves.

The layer used to keep a reordered copy of its weight; the tests that asserted that copy's caching
(``layer._packed`` present, dropped, rebuilt) now assert that the oneDNN product ran, or did not, through
a spy on it, and that a layer holds nothing beside its parameters.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import headway
from headway.nn import linear
from headway.nn.linear import Linear, exact_matmul, fused_linear

pytestmark = pytest.mark.skipif(not linear._SUPPORTED, reason="this torch build has no oneDNN linear")


@pytest.fixture(autouse=True)
def _onednn_on(request, monkeypatch):
    """The oneDNN path, opt-in for users, on for every test here but the one about the default."""
    if "default_path" not in request.node.name:
        monkeypatch.setattr(linear, "_AVAILABLE", True)


def test_default_path_is_f_linear_bit_for_bit(calls):
    torch.manual_seed(0)
    layer = Linear(64, 48).eval()
    x = torch.randn(5, 64)
    with torch.inference_mode():
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        assert torch.equal(layer.forward_gelu(x), F.gelu(F.linear(x, layer.weight, layer.bias)))
    assert calls[0] == 0
    with torch.inference_mode():  # one row: oneDNN by default (more accurate than MKL's gemv, and faster)
        torch.testing.assert_close(layer(x[:1]), F.linear(x[:1], layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
    assert calls[0] == 1


@pytest.fixture()
def layer():
    torch.manual_seed(0)
    return Linear(64, 48).eval()  # the oneDNN path is for eval mode


@pytest.fixture()
def calls(monkeypatch):
    """How many oneDNN products ran."""
    count = [0]
    product = linear._product

    def spy(*args):
        count[0] += 1
        return product(*args)

    monkeypatch.setattr(linear, "_product", spy)
    return count


def test_onednn_path_matches_f_linear(layer, calls):
    x = torch.randn(2, 7, 64)
    with torch.inference_mode():
        out = layer(x)
        gelu = layer.forward_gelu(x)
    assert calls[0] == 2  # the fast path was taken
    expected = F.linear(x, layer.weight, layer.bias)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gelu, F.gelu(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(64,), (0, 64), (3, 0, 64), (2, 2, 3, 64)])
def test_odd_input_shapes(layer, shape):
    x = torch.randn(shape)
    with torch.inference_mode():
        out = layer(x)
    torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


def test_strided_inputs_and_weights(layer):
    x = torch.randn(4, 3, 64)[:, 0]  # rows of a wider tensor, as a pooler's first token
    layer.weight = torch.nn.Parameter(torch.randn(64, 48).t())  # a transposed (non-contiguous) weight
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


def test_exact_matmul_is_bit_identical(layer, calls):
    x = torch.randn(5, 64)
    with torch.inference_mode(), exact_matmul():
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
    assert calls[0] == 0


def test_outputs_follow_weight_changes(layer):
    x = torch.randn(3, 64)
    with torch.no_grad():
        layer(x)
        layer.weight.mul_(2)  # in place
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        layer.weight.data.mul_(2)  # behind autograd's back: nothing cached can go stale
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        layer.weight = torch.nn.Parameter(torch.randn(48, 64))  # a new tensor
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


def test_training_mode_takes_the_plain_path(layer, calls):
    layer.train()
    x = torch.randn(3, 64, requires_grad=True)
    out = layer(x)
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()
    assert layer.weight.grad is not None and calls[0] == 0
    with torch.inference_mode():
        assert torch.equal(layer(x.detach()), F.linear(x.detach(), layer.weight, layer.bias))


def test_eval_mode_with_autograd_is_fast_and_differentiable(layer, calls):
    """``model(**inputs)`` without no_grad: oneDNN forward, gradients as F.linear's."""
    reference = copy.deepcopy(layer)
    x = torch.randn(2, 5, 64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = layer(x), F.linear(x_ref, reference.weight, reference.bias)
    assert calls[0] == 1  # the fast path was taken
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    gelu = layer.forward_gelu(x)
    torch.testing.assert_close(gelu, F.gelu(out_ref), atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (out_ref * grad).sum().backward()
    for ours, theirs in ((x, x_ref), (layer.weight, reference.weight), (layer.bias, reference.bias)):
        torch.testing.assert_close(ours.grad, theirs.grad, atol=1e-5, rtol=1e-5)


def test_input_gradients_alone(layer):
    layer.requires_grad_(False)
    x = torch.randn(3, 64, requires_grad=True)
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(3, -1), atol=1e-5, rtol=1e-5)


def test_fused_projection_needs_weights_side_by_side(calls):
    """One product for layers whose weights are views of one fused parameter; None (layers one by one)
    when they are separate tensors, since fusing those would need a copy."""
    torch.manual_seed(0)
    layers = [Linear(32, 32).eval() for _ in range(3)]
    x = torch.randn(2, 5, 32)
    expected = torch.cat([F.linear(x, lyr.weight, lyr.bias) for lyr in layers], dim=-1)
    with torch.inference_mode():
        assert fused_linear(x, layers) is None
        one_by_one = torch.cat([lyr(x) for lyr in layers], dim=-1)
    torch.testing.assert_close(one_by_one, expected, atol=1e-5, rtol=1e-5)
    weight = torch.cat([lyr.weight.detach() for lyr in layers])  # (96, 32): the three side by side
    bias = torch.cat([lyr.bias.detach() for lyr in layers])
    for i, lyr in enumerate(layers):
        lyr.weight = torch.nn.Parameter(weight[32 * i: 32 * (i + 1)])
        lyr.bias = torch.nn.Parameter(bias[32 * i: 32 * (i + 1)])
    calls[0] = 0
    with torch.inference_mode():
        fused = fused_linear(x, layers)
        torch.testing.assert_close(torch.cat([lyr(x) for lyr in layers], dim=-1), expected, atol=1e-5, rtol=1e-5)
    assert calls[0] == 4  # one fused product, then one per layer
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    assert fused_linear(x.requires_grad_(), layers) is None  # autograd: callers fall back
    layers[1].bias = torch.nn.Parameter(bias[32:64].clone())  # no longer side by side
    with torch.inference_mode():
        assert fused_linear(x, layers) is None


def test_layers_hold_nothing_beside_their_parameters(layer):
    with torch.inference_mode():
        layer(torch.randn(2, 64))
    assert not [k for k, v in vars(layer).items() if isinstance(v, torch.Tensor | tuple)]
    clone = copy.deepcopy(layer)
    assert torch.equal(clone.weight, layer.weight)
    layer.double()
    x = torch.randn(2, 64, dtype=torch.float64)
    with torch.inference_mode():
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_fused_optimizer_steps_are_followed():
    """Fused AdamW updates weights in place without bumping version counters: outputs must follow."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(Linear(16, 16), torch.nn.Tanh(), Linear(16, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    x = torch.randn(8, 16)

    def fast_output():
        with torch.inference_mode():
            return model(x)

    def plain_output():
        with torch.inference_mode(), exact_matmul():
            return model(x)

    model.eval()
    fast_output()
    for _ in range(2):  # train without switching modes (people do fine-tune in eval mode)
        model(x).square().mean().backward()  # the forward itself runs through oneDNN
        optimizer.step()
        optimizer.zero_grad()
        torch.testing.assert_close(fast_output(), plain_output(), atol=1e-5, rtol=1e-5)
    model.train()
    model(x).square().mean().backward()
    optimizer.step()
    model.eval()
    torch.testing.assert_close(fast_output(), plain_output(), atol=1e-5, rtol=1e-5)


def test_weights_made_under_inference_mode():
    """A model loaded inside ``torch.inference_mode()`` has weights without version counters."""
    torch.manual_seed(0)
    with torch.inference_mode():
        layers = [Linear(8, 4).eval() for _ in range(2)]
        x = torch.randn(2, 8)
        assert layers[0].weight.is_inference()
        torch.testing.assert_close(layers[0](x), F.linear(x, layers[0].weight, layers[0].bias), atol=1e-6, rtol=0)
        expected = torch.cat([F.linear(x, lyr.weight, lyr.bias) for lyr in layers], dim=-1)
        assert fused_linear(x, layers) is None  # separate tensors: the layers one by one
        torch.testing.assert_close(torch.cat([lyr(x) for lyr in layers], dim=-1), expected, atol=1e-6, rtol=0)


# ---- whole models: no extra memory, torch.compile and torch.func take the plain path ----


def tiny_bert():
    torch.manual_seed(0)
    config = headway.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=37)
    return headway.BertModel(config).eval()


def tiny_inputs():
    ids = torch.randint(5, 99, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask


def test_a_model_holds_no_weight_copies():
    """The memory cap: after forwards of every kind, no module keeps a tensor beside its parameters and
    buffers (the old packed path kept a reordered copy of every Linear weight)."""
    model = tiny_bert()
    ids, mask = tiny_inputs()
    with torch.inference_mode():
        model(ids, attention_mask=mask)
    model(ids, attention_mask=mask).last_hidden_state.sum().backward()
    held = [(name, key) for name, module in model.named_modules() for key, value in vars(module).items()
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter)
            or isinstance(value, tuple) and any(isinstance(v, torch.Tensor) for v in value)]
    assert held == []


def test_torch_compile_traces_f_linear(calls):
    """``torch.compile(model)`` traces F.linear, not the oneDNN op; outputs equal eager's."""
    torch._dynamo.reset()
    model = tiny_bert()
    ids, mask = tiny_inputs()
    with torch.no_grad():
        eager = model(ids, attention_mask=mask).last_hidden_state
        calls[0] = 0
        compiled = torch.compile(model, backend="aot_eager", dynamic=False)(ids, attention_mask=mask)
    assert calls[0] == 0
    torch.testing.assert_close(compiled.last_hidden_state, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.slow  # inductor writes and compiles C++: about 30 s on a busy 2-core machine
def test_torch_compile_inductor():
    """The default backend used to fail (InductorError lowering mkldnn._linear_pointwise); a BERT
    intermediate block (Linear with fused GELU) now compiles and matches eager."""
    torch._dynamo.reset()
    block = tiny_bert().encoder.layer[0].intermediate
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(block, dynamic=False)(x), block(x), atol=1e-5, rtol=1e-5)


def test_torch_func_grad_vmap_and_functional_call():
    """torch.func transforms take F.linear: gradients and batched outputs equal those of plain F.linear."""
    model = tiny_bert()
    ids, mask = tiny_inputs()
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(p):
        out = torch.func.functional_call(model, p, (ids,), {"attention_mask": mask})
        return out.last_hidden_state.square().mean()

    grads = torch.func.grad(loss)(params)
    with exact_matmul():  # the reference: every product through F.linear
        expected = torch.func.grad(loss)(params)
    for name in params:
        torch.testing.assert_close(grads[name], expected[name], atol=1e-6, rtol=1e-5)

    dense = model.encoder.layer[0].intermediate.dense
    x = torch.randn(4, 3, 32)
    torch.testing.assert_close(torch.func.vmap(dense)(x), F.linear(x, dense.weight, dense.bias), atol=1e-6, rtol=1e-6)
    # functional_call alone (no transform): the swapped-in tensors are used as they are
    doubled = {name: 2 * p for name, p in params.items()}
    with torch.no_grad():
        out = torch.func.functional_call(model, doubled, (ids,), {"attention_mask": mask}).last_hidden_state
        with exact_matmul():
            expected = torch.func.functional_call(model, doubled, (ids,), {"attention_mask": mask}).last_hidden_state
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
