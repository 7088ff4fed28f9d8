"""Parity of the T5 family with the reference (transformers 5.23).

Tiny random reference models (2 encoder and 3 decoder layers, d_model 32, 4 heads, 8 position buckets up
to distance 20, so the 24-token inputs reach the logarithmic buckets) in two shapes: original T5 (ReLU
feed-forward, head tied to the embeddings, decoder output scaled by d_model**-0.5) and T5 v1.1 / Flan-T5
(gated-GELU, a head of its own, no scaling). Weights are perturbed so norms are not all ones. Saved with
``save_pretrained`` and loaded by headway: encoder and decoder states, logits, losses, hidden states and
attention maps within 1e-5 (fp32) on padded batches, cached decoding step by step, each head, the
state-dict keys, and the save in the other direction.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors import safe_open

from headway.generation.cache import EncoderDecoderCache
from headway.models import t5
from tests.parity.common import ATOL, assert_close, assert_outputs_close

TINY = {
    "vocab_size": 99, "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_decoder_layers": 3,
    "num_heads": 4, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 20,
    "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1,
}  # fmt: skip
VARIANTS = {
    "t5": {"feed_forward_proj": "relu", "tie_word_embeddings": True},
    "v1_1": {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False},
}
EOS = 1


def reference(variant: str, cls: str = "T5ForConditionalGeneration", **overrides):
    """A tiny reference model, weights perturbed; v1.1 gets an lm_head of its own (transformers 5.23 ties
    it whatever the config says when building, but loads it untied from a checkpoint that holds one)."""
    config = transformers.T5Config(**{**TINY, **VARIANTS[variant], **overrides})
    torch.manual_seed(0)
    model = getattr(transformers, cls)(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        if variant == "v1_1" and hasattr(model, "lm_head"):
            model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight) * 0.2)
    return model.eval()


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def lm_pair(request, tmp_path_factory):
    """(variant, reference, headway, folder) of T5ForConditionalGeneration."""
    folder = tmp_path_factory.mktemp(f"t5-{request.param}")
    ref = reference(request.param)
    ref.save_pretrained(folder)
    return request.param, ref, t5.T5ForConditionalGeneration.from_pretrained(folder), folder


def encoder_batch(padding: str = "mixed", *, batch: int = 3, seq_len: int = 24, seed: int = 0) -> dict:
    """Tokens from [2, vocab) ending in eos; row 1 right-padded by 5, row 2 left-padded by 7 (pad id 0)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, TINY["vocab_size"], (batch, seq_len), generator=g)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    if batch > 1:
        mask[1, seq_len - 5 :] = 0
    if batch > 2 and padding == "mixed":
        mask[2, :7] = 0
    last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # each row's last real position
    ids[torch.arange(batch), last] = EOS
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def decoder_batch(*, batch: int = 3, seq_len: int = 10, seed: int = 1) -> dict:
    """Decoder inputs starting with the start token; row 1 right-padded by 3."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, TINY["vocab_size"], (batch, seq_len), generator=g)
    ids[:, 0] = TINY["decoder_start_token_id"]
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    if batch > 1:
        mask[1, seq_len - 3 :] = 0
    return {"decoder_input_ids": ids.masked_fill(mask == 0, 0), "decoder_attention_mask": mask}


def labels_for(batch: int = 3, seq_len: int = 9, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, TINY["vocab_size"], (batch, seq_len), generator=g)
    labels[1, seq_len - 3 :] = -100
    return labels


def compare_both_paths(ref, ours, inputs: dict) -> None:
    """Outputs on the default (SDPA) path, then hidden states and attention maps through the reference's
    eager path (the only one returning attention weights)."""
    with torch.no_grad():
        compared = assert_outputs_close(ref(**inputs), ours(**inputs))
        ref.set_attn_implementation("eager")
        try:
            ref_out = ref(**inputs, output_hidden_states=True, output_attentions=True)
        finally:
            ref.set_attn_implementation("sdpa")
        our_out = ours(**inputs, output_hidden_states=True, output_attentions=True)
        compared += assert_outputs_close(ref_out, our_out)
    assert {"encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions"} <= set(compared)


# -- the language model ------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["mixed", "right"])
def test_lm_logits_and_states_on_padded_batches(lm_pair, padding):
    _, ref, ours, _ = lm_pair
    compare_both_paths(ref, ours, {**encoder_batch(padding), **decoder_batch()})


def test_loss_with_labels_and_decoder_inputs_from_labels(lm_pair):
    _, ref, ours, _ = lm_pair
    inputs = {**encoder_batch(), "labels": labels_for()}
    with torch.no_grad():
        ref_out, our_out = ref(**inputs), ours(**inputs)
    assert_close(our_out.loss, ref_out.loss)
    assert_close(our_out.logits, ref_out.logits)
    labels = inputs["labels"]
    shifted = ours.prepare_decoder_input_ids_from_labels(labels)
    assert torch.equal(shifted, ref.prepare_decoder_input_ids_from_labels(labels))
    assert shifted[1, -1] == TINY["pad_token_id"] and shifted[0, 0] == TINY["decoder_start_token_id"]


def test_variant_settings(lm_pair):
    variant, _, ours, _folder = lm_pair
    tied = variant == "t5"
    assert (ours.lm_head.weight is ours.shared.weight) is tied
    assert ours.config.scale_decoder_outputs is tied
    assert ours.config.is_gated_act is (variant == "v1_1")
    assert ours.encoder.embed_tokens is ours.shared and ours.decoder.embed_tokens is ours.shared


def test_cached_decoding_step_by_step_equals_one_forward(lm_pair):
    _, _, ours, _ = lm_pair
    enc, dec = encoder_batch(), decoder_batch(seq_len=12)
    ids, mask = dec["decoder_input_ids"], torch.ones_like(dec["decoder_input_ids"])
    with torch.no_grad():
        full = ours(**enc, decoder_input_ids=ids, use_cache=False)
        assert full.past_key_values is None
        encoder_outputs = ours.get_encoder()(**enc)
        cache = EncoderDecoderCache()
        step = ours(
            encoder_outputs=encoder_outputs,
            attention_mask=enc["attention_mask"],
            decoder_input_ids=ids[:, :4],
            past_key_values=cache,
            use_cache=True,
        )
        logits = [step.logits]
        for t in range(4, ids.shape[1]):  # one token at a time, the bias read at the true position t
            step = ours(
                encoder_outputs=encoder_outputs,
                attention_mask=enc["attention_mask"],
                decoder_input_ids=ids[:, t : t + 1],
                decoder_attention_mask=mask[:, : t + 1],
                past_key_values=step.past_key_values,
                logits_to_keep=1,
            )
            logits.append(step.logits)
    assert step.past_key_values is cache and cache.get_seq_length() == ids.shape[1]
    assert_close(torch.cat(logits, dim=1), full.logits)
    assert_close(full.encoder_last_hidden_state, encoder_outputs.last_hidden_state)


def test_encoder_outputs_as_tuple_and_return_dict_false(lm_pair):
    _, _, ours, _ = lm_pair
    enc, dec = encoder_batch(), decoder_batch()
    with torch.no_grad():
        out = ours(**enc, **dec)
        hidden = ours.get_encoder()(**enc).last_hidden_state
        again = ours(attention_mask=enc["attention_mask"], encoder_outputs=(hidden,), **dec)
        as_tuple = ours(**enc, **dec, use_cache=False, return_dict=False)
    assert_close(again.logits, out.logits)
    assert len(as_tuple) == 2 and torch.equal(as_tuple[0], out.logits)


def test_one_encoder_row_per_group_of_decoder_rows(lm_pair):
    """generate()'s beams read their input's encoder row without repeating it: the same as repeating it."""
    _, _, ours, _ = lm_pair
    enc, dec = encoder_batch(), decoder_batch()
    ids = dec["decoder_input_ids"].repeat_interleave(2, dim=0)[:, :5]  # two decoder rows per input
    with torch.no_grad():
        encoded = ours.get_encoder()(**enc)
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
    assert_close(grouped.logits, repeated.logits[:, :4])
    assert_close(step.logits[:, 0], repeated.logits[:, 4])
    for ours_map, full_map in zip(grouped.cross_attentions, repeated.cross_attentions, strict=True):
        assert_close(ours_map, full_map[:, :, :4])
    with pytest.raises(
        ValueError, match="decoder's 4 rows are not a multiple of the encoder output's 3 rows"
    ):
        ours(encoder_outputs=encoded, attention_mask=enc["attention_mask"], decoder_input_ids=ids[:4])


def test_gradients_in_train_mode(tmp_path):
    """Train mode (dropout 0 so both draw nothing): every parameter's gradient equals the reference's."""
    ref = reference("v1_1", dropout_rate=0.0)
    ref.save_pretrained(tmp_path)
    ours = t5.T5ForConditionalGeneration.from_pretrained(tmp_path)
    inputs = {**encoder_batch(), "labels": labels_for()}
    for model in (ref, ours):
        model.train()
        model(**inputs).loss.backward()
    ours_params = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert_close(ours_params[name].grad, p.grad, msg=name)


# -- the bare model, the encoder, the heads ------------------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bare_model_and_encoder_model(variant, tmp_path):
    for cls, inputs in (
        ("T5Model", {**encoder_batch(), **decoder_batch()}),
        ("T5EncoderModel", encoder_batch()),
    ):
        ref = reference(variant, cls)
        ref.save_pretrained(tmp_path / cls)
        ours = getattr(t5, cls).from_pretrained(tmp_path / cls)
        if cls == "T5EncoderModel":
            with torch.no_grad():
                ref.set_attn_implementation("eager")
                kwargs = {"output_hidden_states": True, "output_attentions": True}
                assert_outputs_close(ref(**inputs, **kwargs), ours(**inputs, **kwargs))
        else:
            compare_both_paths(ref, ours, inputs)


def test_lm_checkpoint_into_the_encoder_model(lm_pair):
    _, ref, _, folder = lm_pair
    ours, info = t5.T5EncoderModel.from_pretrained(folder, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    with torch.no_grad():
        assert_close(
            ours(**encoder_batch()).last_hidden_state, ref.get_encoder()(**encoder_batch()).last_hidden_state
        )


HEADS = {  # reference class -> (labels, fields compared)
    "T5ForSequenceClassification": (
        {"labels": torch.tensor([0, 2, 1])},
        ("logits", "loss", "decoder_hidden_states", "encoder_last_hidden_state"),
    ),
    "T5ForTokenClassification": (
        {"labels": torch.randint(0, 3, (3, 24), generator=torch.Generator().manual_seed(3))},
        ("logits", "loss", "hidden_states", "attentions"),
    ),
    "T5ForQuestionAnswering": (
        {"start_positions": torch.tensor([1, 5, 30]), "end_positions": torch.tensor([3, 6, 9])},
        ("start_logits", "end_logits", "loss", "decoder_hidden_states", "cross_attentions"),
    ),
}


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_task_heads(variant, head, tmp_path):
    ref = reference(variant, head, num_labels=3 if head != "T5ForQuestionAnswering" else 2)
    ref.save_pretrained(tmp_path)
    ours, info = getattr(t5, head).from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    labels, fields = HEADS[head]
    inputs = {**encoder_batch(), **labels}
    with torch.no_grad():
        ref.set_attn_implementation("eager")
        kwargs = {"output_hidden_states": True, "output_attentions": True}
        ref_out, our_out = ref(**inputs, **kwargs), ours(**inputs, **kwargs)
    for field in fields:
        ref_value, our_value = ref_out[field], our_out[field]
        for r, o in zip(*((v,) if isinstance(v, torch.Tensor) else v for v in (ref_value, our_value))):
            assert_close(o, r, msg=field)
    if head != "T5ForTokenClassification":  # the reference's Seq2Seq output class, field for field
        assert type(our_out).__name__ == type(ref_out).__name__
    # saved by headway, read back by the reference
    ours.save_pretrained(tmp_path / "ours")
    back = getattr(transformers, head).from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        for field in fields[:2]:
            assert_close(back(**inputs)[field], ref_out[field], msg=f"reloaded {field}")


def test_sequence_classification_needs_one_eos_count(tmp_path):
    ref = reference("t5", "T5ForSequenceClassification", num_labels=2)
    ref.save_pretrained(tmp_path)
    ours = t5.T5ForSequenceClassification.from_pretrained(tmp_path)
    inputs = encoder_batch()
    inputs["input_ids"][0, 3] = EOS  # row 0 now has two
    with pytest.raises(
        ValueError, match=r"same number of <eos> tokens \(eos_token_id 1\); the rows hold \[2, 1, 1\]"
    ):
        ours(**inputs)
    with pytest.raises(ValueError, match="at least one <eos> token"):
        ours(input_ids=torch.full((2, 4), 5))


# -- weights on disk ----------------------------------------------------------------------------------------
def test_state_dict_keys_are_the_references(lm_pair, tmp_path):
    variant, ref, ours, folder = lm_pair
    assert list(ours.state_dict()) == list(ref.state_dict())
    # headway's save holds the same tensors under the same names as the reference's (tied ones once)
    ours.save_pretrained(tmp_path)
    with (
        safe_open(folder / "model.safetensors", "pt") as a,
        safe_open(tmp_path / "model.safetensors", "pt") as b,
    ):
        keys = sorted(a.keys())
        assert keys == sorted(b.keys())
        assert ("lm_head.weight" in keys) is (variant == "v1_1")
        for key in keys:
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
    for key in (
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.2.layer.1.EncDecAttention.q.weight",
        "encoder.final_layer_norm.weight",
    ):
        assert key in ours.state_dict()
    assert "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight" not in ours.state_dict()


def test_question_answering_keys_are_the_references_under_transformer(tmp_path):
    ref = reference("t5", "T5ForQuestionAnswering")
    ours = t5.T5ForQuestionAnswering(t5.T5Config(**{**TINY, **VARIANTS["t5"]}))
    expected = [k if k.startswith("qa_outputs") else f"transformer.{k}" for k in ref.state_dict()]
    assert sorted(ours.state_dict()) == sorted(expected)


def test_headway_save_reloads_in_the_reference(lm_pair, tmp_path):
    variant, ref, ours, _ = lm_pair
    ours.save_pretrained(tmp_path)
    back, info = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert (back.lm_head.weight is back.shared.weight) is (variant == "t5")
    assert back.config.scale_decoder_outputs is (variant == "t5")
    inputs = {**encoder_batch(), "labels": labels_for()}
    with torch.no_grad():
        assert_outputs_close(ref(**inputs), back.eval()(**inputs))


# -- generation -------------------------------------------------------------------------------------------
GENERATION = {
    "greedy": {"max_new_tokens": 12, "min_new_tokens": 6},
    "beam": {"num_beams": 4, "max_new_tokens": 12, "min_new_tokens": 4, "no_repeat_ngram_size": 2,
             "length_penalty": 0.7, "early_stopping": True},
    "beam-returns": {"num_beams": 4, "num_return_sequences": 2, "max_new_tokens": 10, "length_penalty": 1.5},
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def generation_pair(request, tmp_path_factory):
    """(reference, headway) with as many decoder as encoder layers: the reference's generate sizes its
    cache by the encoder's layer count, and fails on a deeper decoder."""
    folder = tmp_path_factory.mktemp(f"t5-gen-{request.param}")
    ref = reference(request.param, num_decoder_layers=TINY["num_layers"])
    ref.save_pretrained(folder)
    return ref, t5.T5ForConditionalGeneration.from_pretrained(folder)


@pytest.mark.parametrize("settings", sorted(GENERATION))
def test_generation_is_token_identical(generation_pair, settings):
    ref, ours = generation_pair
    kwargs = {
        **encoder_batch(),
        **GENERATION[settings],
        "return_dict_in_generate": True,
        "output_scores": True,
    }
    with torch.no_grad():
        ref_out, our_out = ref.generate(**kwargs), ours.generate(**kwargs)
    assert torch.equal(our_out.sequences, ref_out.sequences)
    assert (our_out.sequences[:, 0] == TINY["decoder_start_token_id"]).all()
    if "num_beams" in GENERATION[settings]:
        assert_close(our_out.sequences_scores, ref_out.sequences_scores)


# -- configuration ------------------------------------------------------------------------------------------
def test_config_reads_and_writes_the_references(lm_pair):
    variant, _, ours, folder = lm_pair
    written = json.loads((folder / "config.json").read_text())
    ours_dict = ours.config.to_dict()
    for key, value in written.items():
        if key == "tie_word_embeddings":  # the reference writes true; the checkpoint's own head unties it
            assert ours_dict[key] is (variant == "t5")
        elif key != "transformers_version":
            assert ours_dict[key] == value, key
    assert ours.config.hidden_size == 32 and ours.config.num_attention_heads == 4
    assert ours.config.num_hidden_layers == 2 and ours.config.head_dim == 8


def test_config_derived_fields_and_round_trip(tmp_path):
    v11 = t5.T5Config(
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        task_specific_params={"summarization": {"prefix": "summarize: ", "num_beams": 4}},
    )
    assert v11.dense_act_fn == "gelu_new" and v11.is_gated_act and v11.scale_decoder_outputs is False
    assert v11.num_decoder_layers == 6 and v11.decoder_start_token_id == 0
    v11.save_pretrained(tmp_path)
    again = t5.T5Config.from_pretrained(tmp_path)
    assert again == v11 and again.task_specific_params["summarization"]["num_beams"] == 4
    # read by the reference as written
    ref = transformers.T5Config.from_pretrained(tmp_path)
    assert ref.scale_decoder_outputs is False and ref.is_gated_act and ref.dense_act_fn == "gelu_new"
    # an explicit scale_decoder_outputs (what the reference writes) wins over the tie
    assert t5.T5Config(tie_word_embeddings=True, scale_decoder_outputs=False).scale_decoder_outputs is False
    assert t5.T5Config(feed_forward_proj="gated-silu").dense_act_fn == "silu"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"feed_forward_proj": "gated-gelu-x"}, "feed_forward_proj must be"),
    ({"feed_forward_proj": "relux"}, "feed_forward_proj must be"),
    ({"feed_forward_proj": "maybe-relu"}, "feed_forward_proj must be"),
    ({"d_kv": 0}, "d_kv must be a positive int, got 0"),
    ({"num_decoder_layers": -1}, "num_decoder_layers must be a positive int"),
    ({"relative_attention_num_buckets": 2}, "relative_attention_num_buckets must be at least 4.*got 2 and 128"),
    ({"relative_attention_max_distance": 16}, "more than half of it.*got 32 and 16"),
])  # fmt: skip
def test_config_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        t5.T5Config(**kwargs)


# -- errors and the reference's v1.1 quirk ------------------------------------------------------------------
def test_errors_name_what_is_missing(lm_pair):
    _, _, ours, _ = lm_pair
    enc = encoder_batch()
    with pytest.raises(ValueError, match="needs decoder_input_ids, decoder_inputs_embeds or labels"):
        ours(**enc)
    with pytest.raises(ValueError, match="logits_to_keep=1"):
        ours(**enc, labels=labels_for(), logits_to_keep=1)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, seq_len\) = \(3, 10\)"):
        ours(
            **enc,
            decoder_input_ids=decoder_batch()["decoder_input_ids"],
            decoder_attention_mask=torch.ones(3, 4),
        )
    hidden = ours.get_encoder()(**enc).last_hidden_state
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, seq_len\) = \(3, 24\)"):
        ours(encoder_outputs=(hidden,), attention_mask=enc["attention_mask"][:, :20], **decoder_batch())
    with pytest.raises(ValueError, match="use_cache=True needs the decoder"):
        ours.get_encoder()(**enc, use_cache=True)
    config = t5.T5Config(**{**TINY, "decoder_start_token_id": None})
    with pytest.raises(ValueError, match="decoder_start_token_id must be set"):
        t5.T5ForConditionalGeneration(config)(**enc, labels=labels_for())


def test_reference_built_v1_1_keeps_its_tied_head_unscaled(tmp_path):
    """transformers 5.23 builds a ``tie_word_embeddings=False`` T5 with its head tied, unscaled, and saves
    ``tie_word_embeddings: true, scale_decoder_outputs: false``: headway reads it the same way."""
    config = transformers.T5Config(**{**TINY, **VARIANTS["v1_1"]})
    torch.manual_seed(0)
    ref = transformers.T5ForConditionalGeneration(config).eval()
    ref.save_pretrained(tmp_path)
    ours = t5.T5ForConditionalGeneration.from_pretrained(tmp_path)
    assert ours.lm_head.weight is ours.shared.weight and ours.config.scale_decoder_outputs is False
    inputs = {**encoder_batch(), "labels": labels_for()}
    with torch.no_grad():
        assert_outputs_close(ref(**inputs), ours(**inputs))
    assert ATOL == 1e-5
