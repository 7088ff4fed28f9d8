"""Parity of mBART, Marian and Pegasus (BART's variants) with the reference.

Tiny random reference models (2 + 2 layers, d_model 32, 4 heads, vocab 99), their weights perturbed so that
norms, biases and ``final_logits_bias`` are not the trivial ones (the sinusoidal tables kept), saved with
``save_pretrained`` and loaded by headway: encoder and decoder hidden states, attention maps, LM logits and
losses within 1e-5 (fp32) on padded batches, the cache step by step against one forward, greedy and 4-beam
generation token for token, the saved keys, checkpoints written by headway read back by the reference, and
what each variant does its own way (mBART's language-code shift and forced language code, Marian's
separate vocabularies and recomputed tables, given decoder embeddings scaled by Marian and Pegasus).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers

from headway.generation.cache import EncoderDecoderCache
from headway.models.marian import MarianConfig, MarianModel, MarianMTModel, sinusoidal_table
from headway.models.mbart import (
    MBartConfig,
    MBartForConditionalGeneration,
    MBartForQuestionAnswering,
    MBartForSequenceClassification,
    MBartModel,
    shift_tokens_right,
)
from headway.models.pegasus import PegasusConfig, PegasusForConditionalGeneration, PegasusModel
from headway.outputs import Seq2SeqLMOutput
from tests.parity.common import ATOL, assert_close, assert_outputs_close

SHAPE = {
    "vocab_size": 99, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
    "decoder_attention_heads": 4, "encoder_ffn_dim": 48, "decoder_ffn_dim": 40, "max_position_embeddings": 64,
}  # fmt: skip
WORDS = (3, 70)  # ordinary tokens are drawn from here; every special id lies outside
LANG_CODES = (95, 96, 97, 98)  # mBART's language codes in the tiny vocabulary


@dataclass(frozen=True)
class Variant:
    family: str  # the reference's class prefix
    lm_head: str
    ours: type
    pad: int
    eos: int
    start: int
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, **more: Any):
        ids = {"pad_token_id": self.pad, "eos_token_id": self.eos, "decoder_start_token_id": self.start,
               "forced_eos_token_id": self.eos}  # fmt: skip
        return getattr(transformers, self.family + "Config")(**{**SHAPE, **ids, **self.overrides, **more})


VARIANTS = {
    "mbart": Variant("MBart", "ForConditionalGeneration", MBartForConditionalGeneration, 1, 2, 2,
                     {"bos_token_id": 0, "scale_embedding": True}),
    "marian": Variant("Marian", "MTModel", MarianMTModel, 98, 0, 98,
                      {"scale_embedding": True, "activation_function": "swish"}),
    "marian-separate": Variant("Marian", "MTModel", MarianMTModel, 76, 0, 76,
                               {"scale_embedding": True, "share_encoder_decoder_embeddings": False,
                                "decoder_vocab_size": 77}),
    "pegasus": Variant("Pegasus", "ForConditionalGeneration", PegasusForConditionalGeneration, 0, 1, 0,
                       {"scale_embedding": True, "activation_function": "relu"}),
}  # fmt: skip


def reference(variant: Variant, head: str | None = None, *, for_generation: bool = False, **more: Any):
    """A reference model of ``variant``. ``for_generation``: large random weights (peaked distributions), the
    residual branches scaled down and an untied head, so that greedy and beam search do not repeat one token
    (a tied random head keeps predicting the token it was fed)."""
    if for_generation:
        more = {"init_std": 0.3, "tie_word_embeddings": False, **more}
    torch.manual_seed(0)
    model = getattr(transformers, variant.family + (head or variant.lm_head))(variant.config(**more))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" not in name or variant.family == "MBart":  # sinusoidal tables stay exact
                p.add_(torch.randn_like(p) * 0.05)
            if for_generation and ("out_proj" in name or "fc2" in name):
                p.mul_(0.1)
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0.0, 0.1)
    return model.eval()


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def lm(request, tmp_path_factory):
    """(variant, reference LM, headway LM, checkpoint folder)."""
    variant = VARIANTS[request.param]
    ref = reference(variant)
    folder = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(folder)
    ours, info = variant.ours.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info
    return variant, ref, ours, folder


def encoder_batch(variant: Variant, seq_len: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three rows ending in eos (mBART: eos and a language code), right-padded by 0, 3 and 6 positions."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(*WORDS, (3, seq_len), generator=g)
    mask = torch.ones(3, seq_len, dtype=torch.long)
    for row in range(3):
        length = seq_len - 3 * row
        ids[row, length - 1] = variant.eos
        if variant.family == "MBart":
            ids[row, length - 2], ids[row, length - 1] = variant.eos, LANG_CODES[row]
        mask[row, length:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, variant.pad), "attention_mask": mask}


def decoder_batch(variant: Variant, seq_len: int = 7, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(*WORDS, (3, seq_len), generator=g)
    ids[:, 0] = variant.start
    mask = torch.ones(3, seq_len, dtype=torch.long)
    mask[2, seq_len - 2 :] = 0
    return {"decoder_input_ids": ids.masked_fill(mask == 0, variant.pad), "decoder_attention_mask": mask}


def labels_for(variant: Variant, seq_len: int = 7, seed: int = 3) -> torch.Tensor:
    """Targets ending in eos (mBART: eos then the target language code), the last row's tail ignored (-100)."""
    labels = torch.randint(*WORDS, (3, seq_len), generator=torch.Generator().manual_seed(seed))
    for row, length in enumerate((seq_len, seq_len, seq_len - 3)):
        labels[row, length - 1] = variant.eos
        if variant.family == "MBart":
            labels[row, length - 2], labels[row, length - 1] = variant.eos, LANG_CODES[0]
        labels[row, length:] = -100
    return labels


# -- the LM: encoder, decoder, logits, loss -----------------------------------------------------------------
def test_logits_hidden_states_and_attentions_on_padded_batches(lm):
    variant, ref, ours, _ = lm
    inputs = {**encoder_batch(variant), **decoder_batch(variant)}
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    assert isinstance(o, Seq2SeqLMOutput)
    assert o.logits.shape[-1] == variant.overrides.get("decoder_vocab_size", SHAPE["vocab_size"])
    assert {"logits", "encoder_last_hidden_state"} <= set(assert_outputs_close(r, o))
    implementation = ref.config._attn_implementation
    ref.set_attn_implementation("eager")  # the reference's path that returns attention weights
    try:
        with torch.no_grad():
            r = ref(**inputs, output_hidden_states=True, output_attentions=True)
            o = ours(**inputs, output_hidden_states=True, output_attentions=True)
    finally:
        ref.set_attn_implementation(implementation)
    compared = assert_outputs_close(r, o)
    for key in ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "cross_attentions"):
        assert key in compared, key


def test_loss_with_labels_and_decoder_inputs_made_from_them(lm):
    variant, ref, ours, _ = lm
    labels = labels_for(variant)
    inputs = {**encoder_batch(variant), "labels": labels}
    with torch.no_grad():
        r, o = ref(**inputs), ours(**inputs)
    assert_close(o.loss, r.loss, atol=ATOL, msg="loss")
    assert_close(o.logits, r.logits, atol=ATOL, msg="logits")
    made = ours.prepare_decoder_input_ids_from_labels(labels)
    assert torch.equal(made, ref.prepare_decoder_input_ids_from_labels(labels))
    first = LANG_CODES[0] if variant.family == "MBart" else variant.start
    assert (made[:, 0] == first).all() and made[2, -1] == variant.pad


def test_given_embeddings_for_encoder_and_decoder(lm):
    """Marian's and Pegasus's decoders scale given ``decoder_inputs_embeds`` (their encoders and mBART don't)."""
    variant, ref, ours, _ = lm
    enc, dec = encoder_batch(variant), decoder_batch(variant)
    with torch.no_grad():
        inputs = {
            "inputs_embeds": ours.get_encoder().embed_tokens(enc["input_ids"]),
            "attention_mask": enc["attention_mask"],
            "decoder_inputs_embeds": ours.get_decoder().embed_tokens(dec["decoder_input_ids"]),
            "decoder_attention_mask": dec["decoder_attention_mask"],
        }
        assert_close(ours(**inputs).logits, ref(**inputs).logits, atol=ATOL)


def test_cached_decoding_step_by_step_equals_one_forward(lm):
    variant, ref, ours, _ = lm
    enc, dec = encoder_batch(variant), decoder_batch(variant)
    ids, mask = dec["decoder_input_ids"], dec["decoder_attention_mask"]
    with torch.no_grad():
        full = ours(**enc, **dec, use_cache=False)
        assert_close(full.logits, ref(**enc, **dec).logits, atol=ATOL)
        encoder_outputs = ours.get_encoder()(**enc)
        cache = EncoderDecoderCache()
        out = ours(encoder_outputs=encoder_outputs, attention_mask=enc["attention_mask"],
                   decoder_input_ids=ids[:, :3], decoder_attention_mask=mask[:, :3], past_key_values=cache,
                   use_cache=True)  # fmt: skip
        steps = [out.logits]
        for t in range(3, ids.shape[1]):
            out = ours(encoder_outputs=encoder_outputs, attention_mask=enc["attention_mask"],
                       decoder_input_ids=ids[:, t : t + 1], decoder_attention_mask=mask[:, : t + 1],
                       past_key_values=cache)  # fmt: skip
            assert out.past_key_values is cache and cache.get_seq_length() == t + 1
            steps.append(out.logits)
    assert_close(torch.cat(steps, dim=1), full.logits, atol=ATOL)


@pytest.fixture(scope="module")
def generating(lm, tmp_path_factory):
    """(variant, reference LM, headway LM) built for generation, with an untied head."""
    variant = lm[0]
    ref = reference(variant, for_generation=True)
    folder = tmp_path_factory.mktemp("generating")
    ref.save_pretrained(folder)
    return variant, ref, variant.ours.from_pretrained(folder)


@pytest.mark.parametrize("num_beams", [1, 4])
def test_generation_is_token_identical(generating, num_beams):
    variant, ref, ours = generating
    batch = encoder_batch(variant)
    settings = {"max_new_tokens": 10, "num_beams": num_beams}
    with torch.no_grad():
        assert_close(
            ours(**batch, **decoder_batch(variant)).logits, ref(**batch, **decoder_batch(variant)).logits
        )
        expected = ref.generate(**batch, **settings)
        got = ours.generate(**batch, **settings)
    assert got.shape == expected.shape and torch.equal(got, expected), (got, expected)
    assert (got[:, 0] == variant.start).all()
    assert min(len(set(row[1:].tolist())) for row in got) > 3  # the random model does not repeat one token


def test_gradients_in_train_mode_without_dropout(lm, tmp_path):
    variant, _, _, _ = lm
    ref = reference(variant, dropout=0.0)
    ref.save_pretrained(tmp_path)
    ours = variant.ours.from_pretrained(tmp_path)
    ref.train()
    ours.train()
    inputs = {**encoder_batch(variant), "labels": labels_for(variant)}
    ref(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    ref_params = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        if ref_params[name].grad is None:  # the sinusoidal tables take no gradient
            assert param.grad is None, name
        else:
            assert_close(param.grad, ref_params[name].grad, atol=ATOL, msg=name)


# -- loading and saving ------------------------------------------------------------------------------------
def saved_keys(folder: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return set(f.keys())


HEADS = [
    ("mbart", "Model", MBartModel), ("mbart", "ForConditionalGeneration", MBartForConditionalGeneration),
    ("mbart", "ForSequenceClassification", MBartForSequenceClassification),
    ("mbart", "ForQuestionAnswering", MBartForQuestionAnswering),
    ("marian", "Model", MarianModel), ("marian", "MTModel", MarianMTModel),
    ("marian-separate", "Model", MarianModel), ("marian-separate", "MTModel", MarianMTModel),
    ("pegasus", "Model", PegasusModel), ("pegasus", "ForConditionalGeneration", PegasusForConditionalGeneration),
]  # fmt: skip


@pytest.mark.parametrize(("name", "head", "ours_cls"), HEADS, ids=[f"{n}-{h}" for n, h, _ in HEADS])
def test_saved_keys_equal_the_references_and_reload_there(name, head, ours_cls, tmp_path):
    variant = VARIANTS[name]
    ref = reference(variant, head)
    ref.save_pretrained(tmp_path / "ref")
    expected = saved_keys(tmp_path / "ref")
    ours, info = ours_cls.from_pretrained(tmp_path / "ref", output_loading_info=True)
    assert not any(info.values()), info
    ours.save_pretrained(tmp_path / "ours")
    assert saved_keys(tmp_path / "ours") == expected
    back = getattr(transformers, variant.family + head).from_pretrained(tmp_path / "ours").eval()
    inputs = encoder_batch(variant)
    if variant.family != "MBart":  # Marian and Pegasus make no decoder inputs from input_ids
        inputs |= decoder_batch(variant)
    with torch.no_grad():
        expected_out, got = ref(**inputs), ours(**inputs)
        # the shared heads' outputs (BART's too) hold the head's fields, not the encoder's
        compared = assert_outputs_close(
            {k: v for k, v in expected_out.items() if got.get(k) is not None}, got
        )
        assert compared and compared[0] in ("last_hidden_state", "logits", "start_logits"), compared
        assert_outputs_close(expected_out, back(**inputs))


@pytest.mark.parametrize(
    ("config_cls", "family"), [(MBartConfig, "MBart"), (MarianConfig, "Marian"), (PegasusConfig, "Pegasus")]
)
def test_config_defaults_match_the_reference_and_round_trip(config_cls, family, tmp_path):
    ref_default, ours = getattr(transformers, family + "Config")(), config_cls()
    names = ["num_labels", "hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size",
             "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "forced_eos_token_id",
             "is_encoder_decoder", "scale_embedding", "max_position_embeddings", "activation_function",
             "tie_word_embeddings"]  # fmt: skip
    if family == "Marian":
        names += ["decoder_vocab_size", "share_encoder_decoder_embeddings"]
    for name in names:
        assert getattr(ours, name) == getattr(ref_default, name, None), name  # Pegasus has no bos_token_id
    ref_default.save_pretrained(tmp_path)
    loaded = config_cls.from_pretrained(tmp_path)
    assert type(loaded) is config_cls and loaded.model_type == family.lower()
    assert config_cls.from_dict(loaded.to_dict()) == loaded


# -- mBART: the language-code shift and the forced target language ----------------------------------------
def test_mbart_shift_wraps_the_last_non_pad_token_to_the_front():
    from transformers.models.mbart.modeling_mbart import shift_tokens_right as reference_shift

    labels = torch.tensor([[5, 6, 2, 97, -100, -100], [7, 8, 9, 10, 2, 96], [11, 2, 95, 1, 1, 1]])
    expected = reference_shift(labels.clone(), 1)
    got = shift_tokens_right(labels, 1)
    assert torch.equal(got, expected) and got[:, 0].tolist() == [97, 96, 95]
    assert torch.equal(shift_tokens_right(labels[:1], 1), reference_shift(labels[:1].clone(), 1))
    with pytest.raises(ValueError, match=r"rows \[1\] hold only padding"):
        shift_tokens_right(torch.tensor([[5, 2, 97], [1, 1, 1]]), 1)
    with pytest.raises(ValueError, match="pad_token_id must be set"):
        shift_tokens_right(labels, None)


def test_mbart_decodes_its_shifted_inputs_without_decoder_inputs(lm):
    variant, ref, ours, _ = lm
    if variant.family != "MBart":
        with pytest.raises(ValueError, match="does not make decoder inputs from input_ids"):
            ours(**encoder_batch(variant))
        return
    with torch.no_grad():
        assert_close(ours(**encoder_batch(variant)).logits, ref(**encoder_batch(variant)).logits, atol=ATOL)


def test_mbart_forced_target_language_generates_identically(tmp_path):
    variant = VARIANTS["mbart"]
    ref = reference(variant, for_generation=True)
    code = LANG_CODES[2]
    batch = encoder_batch(variant)
    with torch.no_grad():  # as a generate() argument
        ours = MBartForConditionalGeneration.from_pretrained(_saved(ref, tmp_path / "plain"))
        for num_beams in (1, 4):
            settings = {"forced_bos_token_id": code, "max_new_tokens": 8, "num_beams": num_beams}
            expected, got = ref.generate(**batch, **settings), ours.generate(**batch, **settings)
            assert torch.equal(got, expected), (got, expected)
            assert (got[:, 1] == code).all()
    # From the checkpoint's generation_config.json, with mbart-large-cc25's config: no decoder_start_token_id
    # (generation starts from bos_token_id, as in the reference).
    ref = reference(variant, for_generation=True, decoder_start_token_id=None)
    ref.generation_config.forced_bos_token_id = code
    ours = MBartForConditionalGeneration.from_pretrained(_saved(ref, tmp_path / "forced"))
    assert ours.config.decoder_start_token_id is None
    with torch.no_grad():
        expected, got = ref.generate(**batch, max_new_tokens=8), ours.generate(**batch, max_new_tokens=8)
    assert torch.equal(got, expected), (got, expected)
    assert (got[:, 0] == 0).all() and (got[:, 1] == code).all()


def _saved(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


def test_mbart_heads_take_the_references_positional_order():
    for ours, theirs in ((MBartForSequenceClassification, transformers.MBartForSequenceClassification),
                         (MBartForQuestionAnswering, transformers.MBartForQuestionAnswering)):  # fmt: skip
        assert (
            list(inspect.signature(ours.forward).parameters)[1:-1]
            == list(inspect.signature(theirs.forward).parameters)[1:-1]
        )


# -- Marian: sinusoidal tables, separate vocabularies -------------------------------------------------------
@pytest.mark.parametrize("dim", [32, 7])
def test_sinusoidal_table_equals_the_references(dim):
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    theirs = MarianSinusoidalPositionalEmbedding(50, dim).create_weight()
    assert torch.equal(sinusoidal_table(50, dim).float(), theirs)
    built = MarianMTModel.from_config(MarianConfig(**{**SHAPE, "d_model": dim * 4, "max_position_embeddings": 50,
                                                      "pad_token_id": 98, "decoder_start_token_id": 98}))  # fmt: skip
    assert torch.equal(built.model.decoder.embed_positions.weight, sinusoidal_table(50, dim * 4).float())


@pytest.mark.parametrize("lm", ["marian", "marian-separate"], indirect=True)
def test_marian_tables_are_recomputed_when_the_checkpoint_lacks_them(lm, tmp_path):
    _, ref, ours, folder = lm
    assert not any("embed_positions" in key for key in saved_keys(folder))
    for stack in (ours.model.encoder, ours.model.decoder):
        assert torch.equal(stack.embed_positions.weight, ref.model.encoder.embed_positions.weight)
        assert not stack.embed_positions.weight.requires_grad
    bare = MarianModel.from_pretrained(folder)  # the bare model saves its tables; they load into the LM
    bare.save_pretrained(tmp_path / "bare")
    assert {"encoder.embed_positions.weight", "decoder.embed_positions.weight"} <= saved_keys(
        tmp_path / "bare"
    )
    again, info = MarianMTModel.from_pretrained(tmp_path / "bare", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert torch.equal(again.model.decoder.embed_positions.weight, ref.model.decoder.embed_positions.weight)


@pytest.mark.parametrize("lm", ["marian-separate"], indirect=True)
def test_marian_separate_vocabularies(lm):
    _, _, ours, _ = lm
    model = ours.model
    assert not hasattr(model, "shared")
    assert model.encoder.embed_tokens.num_embeddings == 99 and model.decoder.embed_tokens.num_embeddings == 77
    assert ours.lm_head.weight is model.decoder.embed_tokens.weight
    assert ours.final_logits_bias.shape == (1, 77)
    assert model.get_input_embeddings() is model.encoder.embed_tokens
    assert model.get_decoder_input_embeddings() is model.decoder.embed_tokens
    with pytest.raises(NotImplementedError, match="separate source and target vocabularies"):
        ours.resize_token_embeddings(120)


@pytest.mark.parametrize("lm", ["marian"], indirect=True)
def test_marian_shared_vocabulary_resizes_with_its_bias(lm):
    _, _, _, folder = lm
    ours = MarianMTModel.from_pretrained(folder)
    assert ours.lm_head.weight is ours.model.shared.weight is ours.model.decoder.embed_tokens.weight
    with pytest.raises(ValueError, match="separate vocabularies"):
        ours.model.get_decoder_input_embeddings()
    ours.resize_token_embeddings(104)
    assert ours.final_logits_bias.shape == (1, 104) and ours.config.decoder_vocab_size == 104
    assert ours.lm_head.weight is ours.model.decoder.embed_tokens.weight


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="decoder_vocab_size must be a positive int"):
        MarianConfig(decoder_vocab_size=-3)
    with pytest.raises(ValueError, match=r"d_model \(30\) must be a multiple"):
        PegasusConfig(d_model=30)
