"""Keyed dropout (headway.nn.dropout): masks are a function of (seed, step, example, call, position)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from headway.nn.attention import attention
from headway.nn.dropout import DropoutKeys, attention_dropout, dropout, keyed_dropout, track_recomputation
from headway.nn.layers import Dropout


def _keys(examples=range(4), step=3, seed=0, **kwargs) -> DropoutKeys:
    return DropoutKeys(seed, step, list(examples), **kwargs)


def _mask(x: torch.Tensor, p: float, keys: DropoutKeys) -> torch.Tensor:
    return dropout(x, p, keys) != 0


def test_same_key_same_mask_and_each_part_of_the_key_matters():
    x = torch.ones(4, 9, 16)
    base = _mask(x, 0.5, _keys())
    assert torch.equal(base, _mask(x, 0.5, _keys()))
    for other in (_keys(seed=1), _keys(step=4), _keys(examples=[4, 5, 6, 7])):
        assert not torch.equal(base, _mask(x, 0.5, other))
    keys = _keys()
    first, second = _mask(x, 0.5, keys), _mask(x, 0.5, keys)  # the second call of the forward
    assert torch.equal(first, base) and not torch.equal(first, second) and keys.calls == 2
    # rows differ from each other, and a row's mask follows its example wherever it sits
    assert not torch.equal(base[0], base[1])
    swapped = _mask(x[:2], 0.5, _keys(examples=[2, 0]))
    assert torch.equal(swapped[0], base[2]) and torch.equal(swapped[1], base[0])


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keep_rate_scale_and_independence(p):
    x = torch.randn(32, 64, 48)
    y = dropout(x, p, _keys(range(32)))
    kept = y != 0
    n = kept.numel()
    assert abs(kept.float().mean().item() - (1 - p)) < 4 * (p * (1 - p) / n) ** 0.5
    torch.testing.assert_close(y[kept], x[kept] * (1 / (1 - p)), rtol=0, atol=0)
    # neighbouring positions, rows and calls agree as often as independent draws would
    other = dropout(x, p, _keys(range(32), step=4)) != 0
    expected = p * p + (1 - p) * (1 - p)
    for a, b in ((kept[:, :, 1:], kept[:, :, :-1]), (kept[1:], kept[:-1]), (kept, other)):
        assert abs((a == b).float().mean().item() - expected) < 0.01


def test_gradient_is_the_mask_scaled():
    x = torch.randn(4, 5, 6, dtype=torch.float64, requires_grad=True)
    y = dropout(x, 0.25, _keys())
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, (y != 0).double() / 0.75)
    assert torch.autograd.gradcheck(lambda t: dropout(t, 0.25, _keys()), (x,))


def test_positions_do_not_depend_on_padding():
    short, long_ = torch.ones(4, 7, 16), torch.ones(4, 11, 16)
    assert torch.equal(_mask(short, 0.4, _keys()), _mask(long_, 0.4, _keys())[:, :7])
    weights = torch.ones(4, 2, 11, 11)
    full = attention_dropout(weights, 0.4, _keys(seq_len=11)) != 0
    cut = attention_dropout(weights[:, :, :7, :7], 0.4, _keys(seq_len=7)) != 0
    assert torch.equal(full[:, :, :7, :7], cut)


def test_left_padding_counts_from_each_example_start():
    offsets = torch.tensor([0, 3, 1, 0])
    padded = _mask(torch.ones(4, 10, 8), 0.5, _keys(offsets=offsets, seq_len=10))
    plain = _mask(torch.ones(4, 10, 8), 0.5, _keys())
    for row, off in enumerate(offsets.tolist()):
        assert torch.equal(padded[row, off:], plain[row, : 10 - off])
    w = torch.ones(4, 2, 10, 10)
    padded = attention_dropout(w, 0.5, _keys(offsets=offsets, seq_len=10)) != 0
    plain = attention_dropout(w, 0.5, _keys()) != 0
    for row, off in enumerate(offsets.tolist()):
        assert torch.equal(padded[row, :, off:, off:], plain[row, :, : 10 - off, : 10 - off])


def test_tensors_without_a_batch_dimension_share_one_mask():
    table = torch.ones(7, 16)  # e.g. a relative-position table: no row belongs to an example
    assert torch.equal(
        _mask(table, 0.5, _keys(examples=[0, 1, 2])), _mask(table, 0.5, _keys(examples=[5, 6]))
    )
    flat = torch.ones(4 * 3, 5, 8)  # multiple choice: 3 rows per example, example-major
    per_choice = _mask(flat, 0.5, _keys()).view(4, 3, 5, 8)
    assert torch.equal(per_choice[2], _mask(flat[6:9], 0.5, _keys(examples=[2])))


def test_p_zero_and_one():
    x = torch.randn(4, 3, 2)
    keys = _keys()
    assert dropout(x, 0.0, keys) is x and keys.calls == 0
    assert torch.equal(dropout(x, 1.0, keys), torch.zeros_like(x)) and keys.calls == 1


def test_outside_the_context_dropout_is_torchs():
    layer = Dropout(0.3).train()
    x = torch.randn(4, 6, 8)
    torch.manual_seed(5)
    ours = layer(x)
    torch.manual_seed(5)
    assert torch.equal(ours, F.dropout(x, 0.3, True))
    assert layer.eval()(x) is x
    q, k, v = torch.randn(3, 2, 4, 5, 8).unbind(0)
    torch.manual_seed(5)
    out, _ = attention(q, k, v, None, dropout_p=0.2)
    torch.manual_seed(5)
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v, dropout_p=0.2))


def test_in_the_context_modules_and_attention_use_the_keys():
    x = torch.randn(4, 6, 8)
    with keyed_dropout(_keys()) as keys:
        ours = Dropout(0.3).train()(x)
    assert keys.calls == 1 and torch.equal(ours, dropout(x, 0.3, _keys()))
    q, k, v = torch.randn(3, 4, 2, 6, 8).unbind(0)
    mask = torch.zeros(4, 1, 1, 6)
    mask[1, ..., 4:] = float("-inf")
    with keyed_dropout(_keys(seq_len=6)):
        out, weights = attention(q, k, v, mask, dropout_p=0.2, output_attentions=True)
        again, none = attention(q, k, v, mask, dropout_p=0.2)
    probs = torch.softmax(q @ k.transpose(-1, -2) * 8**-0.5 + mask, dim=-1)
    expected = attention_dropout(probs, 0.2, _keys(seq_len=6))
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, expected @ v)
    assert none is None and not torch.equal(again, out)  # the second call draws its own mask
    # without dropout (inference) the context changes nothing, bit for bit
    with keyed_dropout(_keys()):
        inside, _ = attention(q, k, v, mask)
    assert torch.equal(inside, attention(q, k, v, mask)[0])


def test_gradient_checkpointing_recomputes_the_same_masks():
    from headway import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=32,
        hidden_dropout_prob=0.3,
        attention_probs_dropout_prob=0.3,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).train()
    ids = torch.randint(5, 50, (4, 9))
    labels = torch.tensor([0, 1, 1, 0])
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        if checkpointing:
            model.gradient_checkpointing_enable()
        hooks = track_recomputation(model)
        with keyed_dropout(_keys(seq_len=9)):
            model(input_ids=ids, labels=labels).loss.backward()
        for hook in hooks:
            hook.remove()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=0, atol=1e-6, msg=name)


def test_recomputation_without_tracking_is_an_error():
    from torch.utils.checkpoint import checkpoint

    layer = torch.nn.Sequential(torch.nn.Linear(8, 8), Dropout(0.5)).train()
    x = torch.randn(4, 8, requires_grad=True)
    with keyed_dropout(_keys()):
        out = checkpoint(layer, x, use_reentrant=False)
        with pytest.raises(RuntimeError, match="track_recomputation"):
            out.sum().backward()
