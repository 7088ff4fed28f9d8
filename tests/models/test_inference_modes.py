"""One forward for every mode: inference_mode, no_grad, hooks, replaced parts, a model loaded under
inference_mode. (The BERT layer's second, inference-only forward is gone: what a reader studies in
``BertLayer.forward`` is what runs.)"""

from __future__ import annotations

import pytest
import torch

import headway
from headway.nn.linear import exact_matmul


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


@pytest.mark.parametrize("hidden_act", ["gelu", "relu", "gelu_new"])
@pytest.mark.parametrize("context", [torch.inference_mode, torch.no_grad])
def test_same_numbers_in_every_autograd_mode(hidden_act, context):
    model, inputs = tiny(hidden_act), batch()
    with context():
        fast = model(**inputs, output_hidden_states=True)
    plain = model(**inputs, output_hidden_states=True)
    torch.testing.assert_close(fast.last_hidden_state, plain.last_hidden_state, atol=1e-6, rtol=0)
    torch.testing.assert_close(fast.pooler_output, plain.pooler_output, atol=1e-6, rtol=0)
    assert len(fast.hidden_states) == 4


def test_hooks_and_replaced_parts_are_respected():
    model, inputs = tiny(), batch()
    seen = []
    layer_norm = model.encoder.layer[1].output.LayerNorm
    handle = layer_norm.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    with torch.inference_mode():
        model(**inputs)
    assert seen == [(3, 11, 32)]
    handle.remove()
    model.encoder.layer[2].attention.output.LayerNorm = torch.nn.Identity()
    with torch.inference_mode():
        replaced = model(**inputs).last_hidden_state
    with torch.inference_mode(), exact_matmul():
        assert torch.allclose(replaced, model(**inputs).last_hidden_state, atol=1e-6)


def test_model_loaded_under_inference_mode(tmp_path):
    model, inputs = tiny(), batch()
    model.save_pretrained(tmp_path)
    with torch.inference_mode():
        expected = model(**inputs).last_hidden_state
        loaded = headway.BertModel.from_pretrained(tmp_path)
        assert torch.equal(loaded(**inputs).last_hidden_state, expected)
