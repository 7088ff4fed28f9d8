"""Parity of BART with the reference.

Tiny random reference models (2 + 2 layers, d_model 32, 4 heads, vocab 99), their weights perturbed so that
norms, biases and ``final_logits_bias`` are not the trivial ones, saved with ``save_pretrained`` and loaded
by headway: encoder and decoder hidden states, attention maps, LM logits and losses within 1e-5 (fp32) on
padded batches, the cache step by step against one forward, the classification and QA heads, the saved
keys, and checkpoints written by headway read back by the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from headway.generation.cache import EncoderDecoderCache
from headway.models.bart import (
    BartConfig,
    BartForConditionalGeneration,
    BartForQuestionAnswering,
    BartForSequenceClassification,
    BartModel,
    shift_tokens_right,
)
from headway.outputs import BaseModelOutput, Seq2SeqLMOutput
from tests.parity.common import ATOL, assert_close, assert_outputs_close

TINY = {
    "vocab_size": 99, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
    "decoder_attention_heads": 4, "encoder_ffn_dim": 48, "decoder_ffn_dim": 40, "max_position_embeddings": 64,
    "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2,
}  # fmt: skip
VARIANTS = {  # each config branch of the reference
    "default": {},
    "scaled-relu-untied": {
        "scale_embedding": True,
        "activation_function": "relu",
        "tie_word_embeddings": False,
    },
}
EOS, PAD = TINY["eos_token_id"], TINY["pad_token_id"]


def reference(head: str = "ForConditionalGeneration", **overrides):
    config = transformers.BartConfig(**{**TINY, **overrides})
    torch.manual_seed(0)
    model = getattr(transformers, "Bart" + head)(config)
    with torch.no_grad():
        for p in model.parameters():  # norms away from 1, biases away from 0
            p.add_(torch.randn_like(p) * 0.05)
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0.0, 0.1)
    return model.eval()


def save(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def lm_pair(request, tmp_path_factory):
    ref = reference(**VARIANTS[request.param])
    folder = save(ref, tmp_path_factory.mktemp("bart") / request.param)
    return ref, BartForConditionalGeneration.from_pretrained(folder), folder


@pytest.fixture(scope="module")
def default_pair(tmp_path_factory):
    ref = reference()
    folder = save(ref, tmp_path_factory.mktemp("bart-default"))
    return ref, BartForConditionalGeneration.from_pretrained(folder), folder


def encoder_batch(seq_len: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three rows ending in eos, right-padded by 0, 3 and 6 positions (tokens from [3, vocab))."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TINY["vocab_size"], (3, seq_len), generator=g)
    mask = torch.ones(3, seq_len, dtype=torch.long)
    for row in range(3):
        length = seq_len - 3 * row
        ids[row, length - 1] = EOS
        mask[row, length:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, PAD), "attention_mask": mask}


def decoder_batch(seq_len: int = 7, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TINY["vocab_size"], (3, seq_len), generator=g)
    ids[:, 0] = TINY["decoder_start_token_id"]
    mask = torch.ones(3, seq_len, dtype=torch.long)
    mask[2, seq_len - 2 :] = 0
    return {"decoder_input_ids": ids.masked_fill(mask == 0, PAD), "decoder_attention_mask": mask}


def compare_eager(ref, ours, inputs: dict) -> None:
    """Hidden states and attention maps through the reference's eager path (the one returning weights)."""
    implementation = ref.config._attn_implementation
    ref.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            r = ref(**inputs, output_hidden_states=True, output_attentions=True)
            o = ours(**inputs, output_hidden_states=True, output_attentions=True)
    finally:
        ref.set_attn_implementation(implementation)
    compared = assert_outputs_close(r, o)
    for key in ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "cross_attentions"):
        assert key in compared, key


# -- the LM: encoder, decoder, logits, loss -----------------------------------------------------------------
def test_logits_encoder_and_decoder_outputs_on_padded_batches(lm_pair):
    ref, ours, _ = lm_pair
    inputs = {**encoder_batch(), **decoder_batch()}
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    assert isinstance(o, Seq2SeqLMOutput)
    assert {"logits", "encoder_last_hidden_state"} <= set(assert_outputs_close(r, o))
    compare_eager(ref, ours, inputs)


def test_loss_with_labels_and_decoder_inputs_made_from_them(lm_pair):
    ref, ours, _ = lm_pair
    labels = decoder_batch(seed=3)["decoder_input_ids"][:, 1:].clone()
    labels[1, 4:] = -100
    inputs = {**encoder_batch(), "labels": labels}
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    assert_close(o.loss, r.loss, atol=ATOL, msg="loss")
    assert_close(o.logits, r.logits, atol=ATOL, msg="logits")
    assert o.past_key_values is None  # the cache is off with labels, as in the reference
    made = ours.prepare_decoder_input_ids_from_labels(labels)
    assert torch.equal(made, ref.prepare_decoder_input_ids_from_labels(labels))
    assert made[1, 5] == PAD and made[0, 0] == TINY["decoder_start_token_id"]


def test_decoder_inputs_default_to_the_encoder_inputs_shifted_right(default_pair):
    ref, ours, _ = default_pair
    inputs = encoder_batch()
    with torch.no_grad():
        assert_close(ours(**inputs).logits, ref(**inputs).logits, atol=ATOL)
    with pytest.raises(ValueError, match="decoder_input_ids"):
        ours(inputs_embeds=torch.zeros(1, 3, TINY["d_model"]))


def test_cached_decoding_step_by_step_equals_one_forward(lm_pair):
    ref, ours, _ = lm_pair
    enc, dec = encoder_batch(), decoder_batch()
    ids, mask = dec["decoder_input_ids"], dec["decoder_attention_mask"]
    with torch.no_grad():
        full = ours(**enc, **dec, use_cache=False)
        assert_close(full.logits, ref(**enc, **dec).logits, atol=ATOL)
        encoder_outputs = ours.get_encoder()(**enc)
        cache = EncoderDecoderCache()
        prompt = 3
        out = ours(encoder_outputs=encoder_outputs, attention_mask=enc["attention_mask"],
                   decoder_input_ids=ids[:, :prompt], decoder_attention_mask=mask[:, :prompt],
                   past_key_values=cache, use_cache=True)  # fmt: skip
        steps = [out.logits]
        for t in range(prompt, ids.shape[1]):
            out = ours(encoder_outputs=(encoder_outputs.last_hidden_state,), attention_mask=enc["attention_mask"],
                       decoder_input_ids=ids[:, t : t + 1], decoder_attention_mask=mask[:, : t + 1],
                       past_key_values=cache)  # fmt: skip
            assert out.past_key_values is cache and cache.get_seq_length() == t + 1
            steps.append(out.logits)
    assert_close(torch.cat(steps, dim=1), full.logits, atol=ATOL)


def test_legacy_cache_tuples_and_logits_to_keep(default_pair):
    ref, ours, _ = default_pair
    enc, dec = encoder_batch(), decoder_batch()
    with torch.no_grad():
        first = ours(**enc, decoder_input_ids=dec["decoder_input_ids"][:, :4])
        legacy = first.past_key_values.to_legacy_cache()
        assert len(legacy) == TINY["decoder_layers"] and len(legacy[0]) == 4
        step = ours(**enc, decoder_input_ids=dec["decoder_input_ids"][:, 4:5], past_key_values=legacy,
                    logits_to_keep=1)  # fmt: skip
        full = ref(**enc, decoder_input_ids=dec["decoder_input_ids"][:, :5])
    assert step.logits.shape[1] == 1
    assert_close(step.logits[:, 0], full.logits[:, 4], atol=ATOL)


def test_encoder_outputs_as_tuple_and_return_dict_false(default_pair):
    ref, ours, _ = default_pair
    enc, dec = encoder_batch(), decoder_batch()
    with torch.no_grad():
        encoded = ours.get_encoder()(**enc)
        assert isinstance(encoded, BaseModelOutput)
        out = ours(encoder_outputs=(encoded.last_hidden_state,), attention_mask=enc["attention_mask"], **dec)
        expected = ref(**enc, **dec, return_dict=False)
        got = ours(**enc, **dec, return_dict=False)
    assert_close(out.logits, expected[0], atol=ATOL)
    assert isinstance(got, tuple) and len(got) == len(expected)
    assert_close(got[0], expected[0], atol=ATOL)
    assert_close(got[-1], expected[-1], atol=ATOL)  # the encoder's last hidden state


def test_one_encoder_row_per_group_of_decoder_rows(default_pair):
    """generate()'s beams read their input's encoder row without repeating it: the same as repeating it."""
    _, ours, _ = default_pair
    enc, dec = encoder_batch(), decoder_batch()
    encoded = ours.get_encoder()(**enc)
    ids = dec["decoder_input_ids"].repeat_interleave(2, dim=0)[:, :5]  # two decoder rows per input
    with torch.no_grad():
        repeated = ours(
            encoder_outputs=(encoded.last_hidden_state.repeat_interleave(2, dim=0),),
            attention_mask=enc["attention_mask"].repeat_interleave(2, dim=0), decoder_input_ids=ids,
            output_attentions=True,
        )  # fmt: skip
        cache = EncoderDecoderCache()
        grouped = ours(encoder_outputs=encoded, attention_mask=enc["attention_mask"], decoder_input_ids=ids[:, :4],
                       past_key_values=cache, output_attentions=True)  # fmt: skip
        step = ours(encoder_outputs=encoded, attention_mask=enc["attention_mask"], decoder_input_ids=ids[:, 4:],
                    past_key_values=cache)  # fmt: skip
    assert cache.cross_attention_cache[0][0].shape[0] == 3  # stored once per input, not per decoder row
    assert_close(grouped.logits, repeated.logits[:, :4], atol=ATOL)
    assert_close(step.logits[:, 0], repeated.logits[:, 4], atol=ATOL)
    for ours_map, full_map in zip(grouped.cross_attentions, repeated.cross_attentions, strict=True):
        assert_close(ours_map, full_map[:, :, :4], atol=ATOL)
    with pytest.raises(
        ValueError, match="decoder's 4 rows are not a multiple of the encoder output's 3 rows"
    ):
        ours(encoder_outputs=encoded, attention_mask=enc["attention_mask"], decoder_input_ids=ids[:4])


def test_gradients_in_train_mode_without_dropout(tmp_path):
    ref = reference(dropout=0.0)
    ours = BartForConditionalGeneration.from_pretrained(save(ref, tmp_path))
    ref.train()
    ours.train()
    labels = decoder_batch(seed=5)["decoder_input_ids"]
    inputs = {**encoder_batch(), "labels": labels}
    ref(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(param.grad, ref_grads[name].grad, atol=ATOL, msg=name)


def test_gradient_checkpointing_gives_the_same_loss(default_pair):
    _, _, folder = default_pair
    ours = BartForConditionalGeneration.from_pretrained(folder, dropout=0.0)
    inputs = {**encoder_batch(), "labels": decoder_batch()["decoder_input_ids"]}
    ours.train()
    plain = ours(**inputs).loss
    ours.gradient_checkpointing_enable()
    checkpointed = ours(**inputs).loss
    checkpointed.backward()
    assert_close(checkpointed, plain, atol=ATOL)


# -- the heads -------------------------------------------------------------------------------------------
def test_sequence_classification_pools_the_last_eos(tmp_path):
    ref = reference("ForSequenceClassification", num_labels=3)
    ours = BartForSequenceClassification.from_pretrained(save(ref, tmp_path))
    inputs = encoder_batch()
    inputs["input_ids"][0, 3] = EOS  # a second eos in each row: the last one is read
    inputs["input_ids"][1, 2] = EOS
    inputs["input_ids"][2, 1] = EOS
    inputs["labels"] = torch.tensor([0, 2, 1])
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    assert_close(o.logits, r.logits, atol=ATOL, msg="logits")
    assert_close(o.loss, r.loss, atol=ATOL, msg="loss")

    uneven = encoder_batch()
    uneven["input_ids"][0, 3] = EOS
    with pytest.raises(ValueError, match=r"same number of <eos> tokens.*\[2, 1, 1\]"):
        ours(**uneven)
    none = encoder_batch()
    none["input_ids"] = none["input_ids"].masked_fill(none["input_ids"] == EOS, 5)
    with pytest.raises(ValueError, match="at least one <eos>"):
        ours(**none)
    ours.config.eos_token_id = None
    with pytest.raises(ValueError, match="pools at config.eos_token_id, which is None"):
        ours(**encoder_batch())


def test_question_answering_logits_and_loss(tmp_path):
    ref = reference("ForQuestionAnswering")
    ours = BartForQuestionAnswering.from_pretrained(save(ref, tmp_path))
    assert ours.config.num_labels == 2 and ours.qa_outputs.out_features == 2
    inputs = {
        **encoder_batch(),
        "start_positions": torch.tensor([1, 4, 20]),
        "end_positions": torch.tensor([3, 5, 2]),
    }
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    for key in ("loss", "start_logits", "end_logits"):
        assert_close(o[key], r[key], atol=ATOL, msg=key)


def test_heads_take_the_references_positional_order():
    import inspect

    seq = list(inspect.signature(BartForSequenceClassification.forward).parameters)[1:-1]
    qa = list(inspect.signature(BartForQuestionAnswering.forward).parameters)[1:-1]
    ref_seq = list(inspect.signature(transformers.BartForSequenceClassification.forward).parameters)[1:-1]
    ref_qa = list(inspect.signature(transformers.BartForQuestionAnswering.forward).parameters)[1:-1]
    assert seq == ref_seq and qa == ref_qa


# -- loading and saving ------------------------------------------------------------------------------------
def saved_keys(folder: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return set(f.keys())


@pytest.mark.parametrize(
    ("head", "ours_cls"),
    [("ForConditionalGeneration", BartForConditionalGeneration), ("Model", BartModel),
     ("ForSequenceClassification", BartForSequenceClassification),
     ("ForQuestionAnswering", BartForQuestionAnswering)],
)  # fmt: skip
def test_saved_keys_equal_the_references_and_reload_there(head, ours_cls, tmp_path):
    ref = reference(head)
    expected = saved_keys(save(ref, tmp_path / "ref"))
    ours, info = ours_cls.from_pretrained(tmp_path / "ref", output_loading_info=True)
    assert not any(info.values()), info
    ours.save_pretrained(tmp_path / "ours")
    assert saved_keys(tmp_path / "ours") == expected
    back = getattr(transformers, "Bart" + head).from_pretrained(tmp_path / "ours").eval()
    inputs = encoder_batch()  # the decoder reads them shifted right (the heads pool over the same length)
    with torch.no_grad():
        assert_outputs_close(ref(**inputs), back(**inputs))


def test_bare_checkpoint_into_the_lm_and_back(tmp_path):
    ref = reference("Model")
    ours = BartForConditionalGeneration.from_pretrained(save(ref, tmp_path / "bare"))
    assert torch.equal(ours.final_logits_bias, torch.zeros(1, TINY["vocab_size"]))
    assert ours.lm_head.weight is ours.model.shared.weight is ours.model.encoder.embed_tokens.weight
    inputs = {**encoder_batch(), **decoder_batch()}
    with torch.no_grad():
        assert_close(ours.model(**inputs).last_hidden_state, ref(**inputs).last_hidden_state, atol=ATOL)
    ours.save_pretrained(tmp_path / "lm")
    bare = BartModel.from_pretrained(tmp_path / "lm")
    with torch.no_grad():
        assert_close(bare(**inputs).last_hidden_state, ref(**inputs).last_hidden_state, atol=ATOL)


def test_config_round_trips_and_matches_the_references_defaults(default_pair, tmp_path):
    _, ours, folder = default_pair
    written = json.loads((folder / "config.json").read_text())
    config = BartConfig.from_pretrained(folder)
    config.save_pretrained(tmp_path)
    again = json.loads((tmp_path / "config.json").read_text())
    written.pop("transformers_version")
    assert {key: again.get(key) for key in written} == written  # headway also writes the base fields
    ref_default, our_default = transformers.BartConfig(), BartConfig()
    for name in (
        "num_labels",
        "hidden_size",
        "num_attention_heads",
        "num_hidden_layers",
        "forced_eos_token_id",
        "decoder_start_token_id",
        "is_encoder_decoder",
        "scale_embedding",
        "max_position_embeddings",
    ):
        assert getattr(our_default, name) == getattr(ref_default, name), name
    kept = BartConfig(forced_bos_token_id=0, task_specific_params={"summarization": {"num_beams": 4}})
    assert BartConfig.from_dict(kept.to_dict()).forced_bos_token_id == 0
    assert "forced_bos_token_id" not in our_default.to_dict()
    assert ours.generation_config.forced_eos_token_id == EOS


def test_resize_token_embeddings_resizes_the_logits_bias(default_pair):
    _, _, folder = default_pair
    ours = BartForConditionalGeneration.from_pretrained(folder)
    bias = ours.final_logits_bias.clone()
    ours.resize_token_embeddings(104)
    assert ours.final_logits_bias.shape == (1, 104) and torch.equal(ours.final_logits_bias[:, :99], bias)
    assert (
        ours.lm_head.weight is ours.model.shared.weight
        and ours.model.decoder.embed_tokens.num_embeddings == 104
    )
    with torch.no_grad():
        assert ours(**encoder_batch(), **decoder_batch()).logits.shape[-1] == 104


def test_bad_configs_and_inputs_are_named(default_pair):
    _, ours, _ = default_pair
    with pytest.raises(ValueError, match=r"d_model \(30\) must be a multiple of decoder_attention_heads"):
        BartConfig(d_model=30, encoder_attention_heads=3, decoder_attention_heads=4)
    with pytest.raises(ValueError, match="encoder_layers must be a positive int"):
        BartConfig(encoder_layers=0)
    with pytest.raises(ValueError, match="exceeds the model's maximum of 64"):
        ours(input_ids=torch.full((1, 65), 5), decoder_input_ids=torch.tensor([[2]]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours(input_ids=torch.tensor([[5, 6]]), decoder_input_ids=torch.tensor([[2, 120]]))
    with pytest.raises(ValueError, match="pad_token_id must be set"):
        shift_tokens_right(torch.tensor([[5, 6]]), None, 2)
