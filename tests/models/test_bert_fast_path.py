"""The BERT encoder's inference fast path: the same numbers as the module path, taken only when safe."""

from __future__ import annotations

import pytest
import torch

import headway
from headway.models import bert
from headway.nn import linear
from headway.nn.linear import exact_matmul

pytestmark = pytest.mark.skipif(not linear._AVAILABLE, reason="oneDNN packed linear not available")


def tiny(hidden_act: str = "gelu", model_class=headway.BertModel, **overrides):
    torch.manual_seed(0)
    config = headway.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                intermediate_size=37, hidden_act=hidden_act, **overrides)
    return model_class(config).eval()


def batch():
    ids = torch.randint(5, 99, (3, 11), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture()
def calls(monkeypatch):
    """Counts layers run on the fast path."""
    seen = []
    original = bert._inference_layer

    def spy(*args):
        seen.append(1)
        return original(*args)

    monkeypatch.setattr(bert, "_inference_layer", spy)
    return seen


def module_path(model, inputs, **kwargs):
    """The same forward through the modules: a do-nothing hook on the encoder's first layer forbids the
    fast path without changing any kernel."""
    handle = model.base_model.encoder.layer[0].register_forward_hook(lambda *args: None)
    try:
        return model(**inputs, **kwargs)
    finally:
        handle.remove()


@pytest.mark.parametrize("hidden_act", ["gelu", "relu", "gelu_new"])
@pytest.mark.parametrize("context", [torch.inference_mode, torch.no_grad])
def test_fast_path_is_bit_identical_to_the_modules(hidden_act, context, calls):
    model, inputs = tiny(hidden_act), batch()
    with context():
        fast = model(**inputs, output_hidden_states=True)
        assert len(calls) == 3
        slow = module_path(model, inputs, output_hidden_states=True)
        assert len(calls) == 3
    assert torch.equal(fast.last_hidden_state, slow.last_hidden_state)
    assert torch.equal(fast.pooler_output, slow.pooler_output)
    assert len(fast.hidden_states) == 4
    assert all(torch.equal(a, b) for a, b in zip(fast.hidden_states, slow.hidden_states))


def test_heads_and_roberta_take_it_too(calls):
    inputs = batch()
    with torch.inference_mode():
        tiny(model_class=headway.BertForSequenceClassification)(**inputs)
        assert len(calls) == 3
        torch.manual_seed(0)
        config = headway.RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=37, max_position_embeddings=40)
        headway.RobertaModel(config).eval()(**inputs)
        assert len(calls) == 5


def test_module_path_whenever_the_fast_path_could_differ(calls):
    model, inputs = tiny(), batch()
    with torch.inference_mode():
        out = model(**inputs, output_attentions=True)  # attention maps come from the modules
        assert out.attentions is not None and len(calls) == 0
        with exact_matmul():
            model(**inputs)
        model.train()
        model(**inputs)
        model.eval()
        assert len(calls) == 0
    model(**inputs)  # autograd records: the modules (packed, differentiable)
    assert len(calls) == 0
    with torch.inference_mode():
        model.double()(**inputs)
    assert len(calls) == 0


def test_hooks_and_replaced_parts_are_respected(calls):
    model, inputs = tiny(), batch()
    seen = []
    layer_norm = model.encoder.layer[1].output.LayerNorm
    handle = layer_norm.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    with torch.inference_mode():
        model(**inputs)
    assert seen == [(3, 11, 32)] and len(calls) == 0
    handle.remove()
    global_handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        with torch.inference_mode():
            model(**inputs)
    finally:
        global_handle.remove()
    assert len(calls) == 0
    model.encoder.layer[2].attention.output.LayerNorm = torch.nn.Identity()
    with torch.inference_mode():
        replaced = model(**inputs).last_hidden_state
    assert len(calls) == 0
    with torch.inference_mode(), exact_matmul():
        assert torch.allclose(replaced, model(**inputs).last_hidden_state, atol=1e-6)


def test_model_loaded_under_inference_mode(tmp_path, calls):
    model, inputs = tiny(), batch()
    model.save_pretrained(tmp_path)
    with torch.inference_mode():
        expected = model(**inputs).last_hidden_state
        loaded = headway.BertModel.from_pretrained(tmp_path)
        assert torch.equal(loaded(**inputs).last_hidden_state, expected)
