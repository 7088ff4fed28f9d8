"""Parity of the Llama-shaped decoders (Llama, Mistral, Qwen2, Qwen3) with the reference.

Tiny random reference models (2 layers, hidden 64, 4 heads, 2 key/value heads), their weights perturbed so
that norms and biases are not the trivial ones and padding rows are not zero, saved with ``save_pretrained``
and loaded by headway: logits, losses, hidden states and attention maps within 1e-5 (fp32), on left- and
right-padded batches, through the cache, with each rotary scaling, and greedy decoding token for token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

import headway
from headway.generation.cache import DynamicCache
from tests.parity.common import ATOL, assert_close, compare_models

FAMILIES = {  # model_type -> (reference prefix, headway prefix, extra config)
    "llama": ("Llama", "Llama", {"attention_bias": True, "mlp_bias": True}),
    "mistral": ("Mistral", "Mistral", {"sliding_window": 5}),
    "qwen2": ("Qwen2", "Qwen2", {"use_sliding_window": True, "sliding_window": 5, "max_window_layers": 1}),
    "qwen3": ("Qwen3", "Qwen3", {"head_dim": 24}),
}
TINY = {
    "vocab_size": 99, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
    "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
}  # fmt: skip
ROPE_SCALINGS = {
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "llama3": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8},
}  # fmt: skip


def reference(model_type: str, head: str = "ForCausalLM", **overrides):
    prefix, _, extra = FAMILIES[model_type]
    config = getattr(transformers, prefix + "Config")(**{**TINY, **extra, **overrides})
    torch.manual_seed(0)
    model = getattr(transformers, prefix + head)(config)
    with torch.no_grad():
        for p in model.parameters():  # norms away from 1, biases away from 0
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def ours_class(model_type: str, head: str = "ForCausalLM"):
    return getattr(headway, FAMILIES[model_type][1] + head)


def pair(model_type: str, tmp_path: Path, head: str = "ForCausalLM", **overrides):
    ref = reference(model_type, head, **overrides)
    ref.save_pretrained(tmp_path / "ref")
    return ref, ours_class(model_type, head).from_pretrained(tmp_path / "ref")


def batch(padding: str, *, batch: int = 3, seq_len: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """Tokens from [3, vocab) with rows padded (pad id 0) on the ``padding`` side, by 0, 3, 6 positions."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TINY["vocab_size"], (batch, seq_len), generator=g)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    for row in range(1, batch):
        if padding == "left":
            mask[row, : 3 * row] = 0
        else:
            mask[row, seq_len - 3 * row :] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def assert_logits_close(ours: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """Equal within ATOL at every real (non-padding) position; padding positions are garbage in both."""
    if mask is not None:
        ours, ref = ours[mask.bool()], ref[mask.bool()]
    assert_close(ours, ref, atol=ATOL)


@pytest.mark.parametrize("padding", ["left", "right"])
@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_causal_lm_logits_loss_hidden_states_and_attentions(model_type, padding, tmp_path):
    ref, ours = pair(model_type, tmp_path)
    inputs = batch(padding)
    inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    compared = compare_models(ref, ours, inputs)
    assert {"loss", "logits"} <= set(compared)


@pytest.mark.parametrize("scaling", sorted(ROPE_SCALINGS))
def test_llama_rope_scalings(scaling, tmp_path):
    # max_position_embeddings 8 < 12 tokens: dynamic NTK stretches, llama3 and yarn scale past 8 positions
    ref, ours = pair("llama", tmp_path, rope_parameters={"rope_theta": 10000.0, **ROPE_SCALINGS[scaling]},
                     max_position_embeddings=8)  # fmt: skip
    inputs = batch("left")
    with torch.no_grad():
        assert_logits_close(ours(**inputs).logits, ref(**inputs).logits, inputs["attention_mask"])


def test_sliding_window_shorter_than_the_input_matters(tmp_path):
    """Mistral with a 5-token window over 12 tokens: equal to the reference, different from full attention."""
    ref, ours = pair("mistral", tmp_path)
    inputs = batch("right")
    with torch.no_grad():
        logits = ours(**inputs).logits
        assert_logits_close(logits, ref(**inputs).logits, inputs["attention_mask"])
        ours.config.sliding_window = None
        full = type(ours)(ours.config).eval()
        full.load_state_dict(ours.state_dict())
        assert not torch.allclose(full(**inputs).logits, logits, atol=1e-3)


@pytest.mark.parametrize("padding", ["left", "right"])
@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_prompt_then_tokens_through_the_cache_equals_one_forward(model_type, padding, tmp_path):
    ref, ours = pair(model_type, tmp_path)
    inputs = batch(padding, seq_len=14)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    prompt = 8
    with torch.no_grad():
        full = ours(**inputs, use_cache=False).logits
        assert_logits_close(full, ref(**inputs).logits, mask)
        cache = DynamicCache()
        out = ours(
            input_ids=ids[:, :prompt], attention_mask=mask[:, :prompt], past_key_values=cache, use_cache=True
        )
        steps = [out.logits]
        for t in range(prompt, ids.shape[1]):
            out = ours(input_ids=ids[:, t : t + 1], attention_mask=mask[:, : t + 1], past_key_values=cache)
            assert out.past_key_values is cache and cache.get_seq_length() == t + 1
            steps.append(out.logits)
    assert_logits_close(torch.cat(steps, dim=1), full, mask)


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_greedy_decoding_by_hand_equals_reference_generate(model_type, tmp_path):
    """An argmax loop over the cache (what generate() does) gives the reference's generate() tokens."""
    ref, ours = pair(model_type, tmp_path)
    inputs = batch("left", seq_len=8)
    with torch.no_grad():
        expected = ref.generate(
            **inputs, do_sample=False, max_new_tokens=20, min_new_tokens=20, pad_token_id=0
        )
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        position_ids = (mask.cumsum(-1) - 1).clamp_min(0)  # positions count real tokens, as generate's do
        cache = DynamicCache()
        out = ours(input_ids=ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                   use_cache=True, logits_to_keep=1)  # fmt: skip
        for _ in range(20):
            assert out.logits.shape[1] == 1
            logits = out.logits[:, -1].clone()
            logits[:, TINY["eos_token_id"]] = float("-inf")  # min_new_tokens=20: no end before 20 tokens
            token = logits.argmax(-1, keepdim=True)  # (B, 1)
            ids = torch.cat([ids, token], dim=1)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            position_ids = position_ids[:, -1:] + 1
            out = ours(input_ids=token, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                       use_cache=True, cache_position=torch.tensor([ids.shape[1] - 1]), logits_to_keep=1)  # fmt: skip
    assert torch.equal(ids, expected)


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
@pytest.mark.parametrize(
    "head", ["ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering"]
)
def test_task_heads(model_type, head, tmp_path):
    ref, ours = pair(model_type, tmp_path, head, num_labels=3 if head != "ForQuestionAnswering" else 2)
    inputs = batch("left")
    g = torch.Generator().manual_seed(1)
    if head == "ForSequenceClassification":
        inputs["labels"] = torch.randint(0, 3, (3,), generator=g)
    elif head == "ForTokenClassification":
        inputs["labels"] = torch.randint(0, 3, (3, 12), generator=g).masked_fill(
            inputs["attention_mask"] == 0, -100
        )
    else:
        inputs["start_positions"], inputs["end_positions"] = torch.randint(0, 12, (2, 3), generator=g)
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    for key in ("loss", "logits", "start_logits", "end_logits"):
        if key in r:
            value = o[key]
            if key in ("start_logits", "end_logits") or head == "ForTokenClassification" and key == "logits":
                assert_logits_close(value, r[key], inputs["attention_mask"])
            else:
                assert_close(value, r[key], atol=ATOL, msg=key)
    if head == "ForSequenceClassification":
        assert type(o).__name__ == "SequenceClassifierOutputWithPast" and isinstance(
            o.past_key_values, DynamicCache
        )


def test_sequence_classification_without_pad_token_needs_batch_of_one(tmp_path):
    ref, ours = pair("llama", tmp_path, "ForSequenceClassification", pad_token_id=None)
    inputs = batch("right")
    with pytest.raises(ValueError, match="pad_token_id"):
        ours(**inputs)
    one = {k: v[:1] for k, v in inputs.items()}
    with torch.no_grad():
        assert_close(ours(**one).logits, ref(**one).logits)


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_tuples_match_the_reference(model_type, tmp_path):
    ref, ours = pair(model_type, tmp_path)
    inputs = batch("right")
    inputs["labels"] = inputs["input_ids"]
    with torch.no_grad():
        r, o = ref(**inputs, return_dict=False), ours(**inputs, return_dict=False)
    assert len(r) == len(o) == 3  # loss, logits, past_key_values
    assert_close(o[0], r[0])
    assert_logits_close(o[1], r[1], inputs["attention_mask"])
    assert isinstance(o[2], DynamicCache)


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("model_type", ["llama", "qwen3"])
def test_gradients_match(model_type, checkpointing, tmp_path):
    ref, ours = pair(model_type, tmp_path)
    ref.train(), ours.train()
    if checkpointing:
        ref.gradient_checkpointing_enable(), ours.gradient_checkpointing_enable()
    inputs = batch("left")
    inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    ref(**inputs).loss.backward()
    out = ours(**inputs)
    if checkpointing:
        assert out.past_key_values is None  # no cache while training with checkpointing
    out.loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        assert_close(p.grad, ref_grads[name].grad, atol=1e-5, msg=name)


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_save_round_trip_and_reference_loads_ours(model_type, tmp_path):
    ref, ours = pair(model_type, tmp_path)
    ours.save_pretrained(tmp_path / "ours")
    again = headway.AutoModelForCausalLM.from_pretrained(tmp_path / "ours")
    assert type(again) is type(ours)
    ref_again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ours").eval()
    inputs = batch("left")
    with torch.no_grad():
        expected = ref(**inputs).logits
        for model in (again, ref_again):
            assert_logits_close(model(**inputs).logits, expected, inputs["attention_mask"])
    saved_config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert saved_config["model_type"] == model_type
    assert saved_config["architectures"] == [type(ours).__name__]


def test_tied_embeddings(tmp_path):
    ref, ours = pair("llama", tmp_path, tie_word_embeddings=True)
    assert ours.lm_head.weight is ours.model.embed_tokens.weight
    inputs = batch("right")
    with torch.no_grad():
        assert_logits_close(ours(**inputs).logits, ref(**inputs).logits, inputs["attention_mask"])


def test_older_rope_spellings_read_and_written_back(tmp_path):
    folder = tmp_path / "old"
    ref = reference("llama", rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0})
    ref.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    rope = config.pop("rope_parameters")
    config["rope_theta"], config["rope_scaling"] = rope.pop("rope_theta"), {"type": "linear", "factor": 2.0}
    (folder / "config.json").write_text(json.dumps(config))
    ours = headway.LlamaForCausalLM.from_pretrained(folder)
    assert (
        ours.config.rope_parameters["rope_type"] == "linear"
        and ours.config.rope_parameters["rope_theta"] == 5e5
    )
    inputs = batch("left")
    with torch.no_grad():
        assert_logits_close(ours(**inputs).logits, ref(**inputs).logits, inputs["attention_mask"])
    written = ours.config.to_dict()
    assert written["rope_theta"] == 5e5 and written["rope_scaling"]["factor"] == 2.0
    assert written["rope_parameters"] == transformers.LlamaConfig.from_pretrained(folder).rope_parameters | {
        "type": "linear"
    }
    assert "rope_theta" not in headway.LlamaConfig().to_dict()


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_config_defaults_match_the_reference(model_type):
    prefix, ours_prefix, _ = FAMILIES[model_type]
    ref = getattr(transformers, prefix + "Config")().to_dict()
    ours = getattr(headway, ours_prefix + "Config")().to_dict()
    ignored = {"transformers_version", "id2label", "label2id", "_name_or_path"}
    assert {k: ours.get(k) for k in ref if k not in ignored} == {
        k: v for k, v in ref.items() if k not in ignored
    }
    # nothing family-specific beyond the reference's keys (the base config's shared fields aside)
    assert set(ours) - set(ref) <= set(headway.PretrainedConfig().to_dict())


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="rope_type 'longrope'"):
        headway.LlamaConfig(rope_parameters={"rope_type": "longrope", "rope_theta": 1.0})
    with pytest.raises(
        ValueError, match=r"num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)"
    ):
        headway.LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=3)
    with pytest.raises(ValueError, match="hidden_size"):
        headway.LlamaConfig(hidden_size=65, num_attention_heads=4)
    with pytest.raises(ValueError, match="layer_types"):
        headway.Qwen2Config(num_hidden_layers=2, layer_types=["full_attention"])
    model = headway.LlamaForCausalLM(headway.LlamaConfig(**TINY))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(input_ids=torch.tensor([[5, 150]]))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
