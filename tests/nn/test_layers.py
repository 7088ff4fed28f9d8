"""headway.nn.layers: layers that skip initialisation on the meta device and only there."""

import torch

from headway.nn.layers import Embedding, LayerNorm
from headway.nn.linear import Linear


def test_meta_layers_skip_initialisation(monkeypatch):
    calls = []
    for fn in ("normal_", "uniform_", "kaiming_uniform_", "ones_", "zeros_"):
        original = getattr(torch.nn.init, fn)
        monkeypatch.setattr(torch.nn.init, fn, lambda *a, _f=original, _n=fn, **k: calls.append(_n) or _f(*a, **k))
    with torch.device("meta"):
        layers = [Linear(4, 3), Embedding(5, 4, padding_idx=0), LayerNorm(4)]
    assert calls == []
    assert all(p.is_meta for layer in layers for p in layer.parameters())


def test_real_device_layers_initialise_like_torch():
    torch.manual_seed(0)
    ours = [Linear(4, 3), Embedding(5, 4, padding_idx=0), LayerNorm(4)]
    torch.manual_seed(0)
    theirs = [torch.nn.Linear(4, 3), torch.nn.Embedding(5, 4, padding_idx=0), torch.nn.LayerNorm(4)]
    for a, b in zip(ours, theirs):
        assert isinstance(a, type(b))
        for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            assert torch.equal(pa, pb), name
    assert torch.equal(ours[1].weight[0], torch.zeros(4))  # padding row


def test_layer_norm_without_affine_parameters():
    layer = LayerNorm(4, elementwise_affine=False)
    assert layer.weight is None
    with torch.device("meta"):
        LayerNorm(4, elementwise_affine=False)
