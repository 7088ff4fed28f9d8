"""ModernBERT parity with transformers: every head on a padded batch (both poolings), losses, hidden states
and attentions, sliding windows shorter than the input, inputs past 512 tokens, rotary settings, the older
config keys of Hub checkpoints, save round trips, gradients, and the errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file

from headway.models import modernbert as mb
from tests.parity.common import (
    ATOL,
    as_multiple_choice,
    assert_outputs_close,
    compare_saved_model,
    labels_for,
    padded_batch,
)

VOCAB = 99
HEADS = ["Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMultipleChoice"]
POOLED = ["ForSequenceClassification", "ForMultipleChoice"]


def tiny_kwargs(**overrides) -> dict:
    """A 4-layer model whose sliding window (2 tokens each side) is much shorter than the 12-token batch,
    so that padded queries far from the text see no key at all."""
    kwargs = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
              "intermediate_size": 20, "max_position_embeddings": 64, "global_attn_every_n_layers": 2,
              "local_attention": 4, "pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 3, "cls_token_id": 2,
              "sep_token_id": 3, "global_rope_theta": 1000.0, "local_rope_theta": 100.0, "num_labels": 3}
    kwargs.update(overrides)
    return kwargs


def ref_model(head: str, **overrides):
    torch.manual_seed(0)
    if head == "ForQuestionAnswering":
        overrides.setdefault("num_labels", 2)
    return getattr(transformers, "ModernBert" + head)(transformers.ModernBertConfig(**tiny_kwargs(**overrides)))


def ours_class(head: str):
    return getattr(mb, "ModernBert" + head)


def inputs_for(head: str, *, seq_len: int = 12, batch: int = 3, num_labels: int = 3) -> dict[str, torch.Tensor]:
    inputs = padded_batch(VOCAB, pairs=False, seq_len=seq_len, batch=batch)
    task = head.removeprefix("For")
    if task == "MultipleChoice":
        inputs = as_multiple_choice(inputs)
    return {**inputs, **labels_for(task, inputs, num_labels, VOCAB)}


# -- every head -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("every_n", [2, 3])
@pytest.mark.parametrize("head", HEADS)
def test_head_parity(head, every_n, tmp_path):
    """SDPA path, then the eager path with hidden states and attention weights; losses included."""
    ref = ref_model(head, global_attn_every_n_layers=every_n, num_hidden_layers=every_n + 2)
    compared = compare_saved_model(ref, ours_class(head), tmp_path, inputs_for(head))
    assert compared[0] == ("last_hidden_state" if head == "Model" else "loss")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("head", POOLED)
def test_pooling_parity(head, pooling, tmp_path):
    ref = ref_model(head, classifier_pooling=pooling, classifier_dropout=0.1)
    compare_saved_model(ref, ours_class(head), tmp_path, inputs_for(head))


def test_biases_and_other_activations(tmp_path):
    """norm_bias / attention_bias / mlp_bias / classifier_bias on, and other activations."""
    ref = ref_model("ForSequenceClassification", norm_bias=True, attention_bias=True, mlp_bias=True,
                    classifier_bias=True, hidden_activation="gelu_new", classifier_activation="silu")
    compare_saved_model(ref, ours_class("ForSequenceClassification"), tmp_path, inputs_for("ForSequenceClassification"))


@pytest.mark.parametrize("problem_type", ["regression", "multi_label_classification"])
def test_sequence_classification_losses(problem_type, tmp_path):
    num_labels = 1 if problem_type == "regression" else 3
    ref = ref_model("ForSequenceClassification", num_labels=num_labels, problem_type=problem_type)
    inputs = padded_batch(VOCAB, pairs=False)
    inputs["labels"] = torch.rand(3, num_labels) if num_labels > 1 else torch.rand(3)
    compared = compare_saved_model(ref, ours_class("ForSequenceClassification"), tmp_path, inputs)
    assert "loss" in compared


def test_multiple_choice_left_padding(tmp_path):
    """"cls" pooling reads the first token that is not padding."""
    ref = ref_model("ForMultipleChoice")
    inputs = as_multiple_choice({k: v.flip(-1) for k, v in padded_batch(VOCAB, pairs=False).items()})
    compare_saved_model(ref, ours_class("ForMultipleChoice"), tmp_path, {**inputs, "labels": torch.tensor([0, 1, 1])})


def test_sparse_prediction(tmp_path):
    """Only the labelled tokens are decoded; logits are (labelled tokens, vocab)."""
    ref = ref_model("ForMaskedLM", sparse_prediction=True)
    inputs = inputs_for("ForMaskedLM")
    compared = compare_saved_model(ref, ours_class("ForMaskedLM"), tmp_path, inputs)
    assert compared == ["loss", "logits"]
    ours = ours_class("ForMaskedLM").from_pretrained(tmp_path)
    with torch.no_grad():
        assert ours(**inputs).logits.shape == (int((inputs["labels"] != -100).sum()), VOCAB)


def test_inputs_embeds_and_position_ids(tmp_path):
    ref = ref_model("Model").eval()
    ref.save_pretrained(tmp_path)
    ours = mb.ModernBertModel.from_pretrained(tmp_path)
    batch = padded_batch(VOCAB, pairs=False)
    embeds = ref.embeddings.tok_embeddings(batch["input_ids"]).detach()
    positions = torch.arange(3, 15)[None].expand(3, -1)
    with torch.no_grad():
        assert_outputs_close(ref(inputs_embeds=embeds, attention_mask=batch["attention_mask"]),
                             ours(inputs_embeds=embeds, attention_mask=batch["attention_mask"]))
        assert_outputs_close(ref(**batch, position_ids=positions), ours(**batch, position_ids=positions))
        assert_outputs_close(ref(batch["input_ids"]), ours(batch["input_ids"]))  # no mask at all


def test_positional_order_and_tuples(tmp_path):
    ref = ref_model("ForQuestionAnswering").eval()
    ref.save_pretrained(tmp_path)
    ours = mb.ModernBertForQuestionAnswering.from_pretrained(tmp_path)
    batch = padded_batch(VOCAB, pairs=False)
    starts, ends = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    with torch.no_grad():
        ref_out = ref(batch["input_ids"], batch["attention_mask"], None, starts, ends, return_dict=False)
        our_out = ours(batch["input_ids"], batch["attention_mask"], None, starts, ends, return_dict=False)
    assert len(ref_out) == len(our_out) == 3
    for r, o in zip(ref_out, our_out):
        torch.testing.assert_close(o, r, atol=ATOL, rtol=0)


# -- long inputs and rotary settings -------------------------------------------------------------------------
def long_inputs(head: str) -> dict[str, torch.Tensor]:
    inputs = inputs_for(head, seq_len=600, batch=2)
    inputs["attention_mask"][1, 450:] = 0
    if head == "ForTokenClassification":
        inputs["labels"] = inputs["labels"].masked_fill(inputs["attention_mask"] == 0, -100)
    return inputs


def test_inputs_past_512_tokens(tmp_path):
    """600 tokens with an 8-token window: no absolute position table limits the length. The sliding layers
    run block by block (SDPA path); the eager comparison runs them on the whole (T, T) mask."""
    ref = ref_model("ForTokenClassification", max_position_embeddings=640, local_attention=8,
                    global_attn_every_n_layers=3, num_hidden_layers=3)
    inputs = long_inputs("ForTokenClassification")
    blocks = mb.attention_masks(inputs["attention_mask"], ref.config.layer_types, 600, 4, dtype=torch.float32,
                                device=torch.device("cpu"), chunked=True)["sliding_attention"]
    assert [(c.queries.start, c.keys.start, c.keys.stop) for c in blocks[:2]] == [(0, 0, 68), (64, 60, 132)]
    assert blocks[-1].queries == slice(576, 600) and blocks[-1].mask.shape == (2, 1, 24, 28)
    compare_saved_model(ref, ours_class("ForTokenClassification"), tmp_path, inputs)


def test_long_input_gradients(tmp_path):
    """Gradients through the block-by-block sliding layers equal the reference's."""
    ref = ref_model("ForTokenClassification", max_position_embeddings=640, local_attention=8, num_hidden_layers=3)
    ref.save_pretrained(tmp_path)
    ours = mb.ModernBertForTokenClassification.from_pretrained(tmp_path).train()
    inputs = long_inputs("ForTokenClassification")
    ref.train()(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_grads[name].grad, atol=ATOL, rtol=0, msg=name)


def test_window_covering_the_input(tmp_path):
    """A window wider than the input: sliding layers see everything (the reference skips the mask)."""
    ref = ref_model("Model", local_attention=64)
    compare_saved_model(ref, mb.ModernBertModel, tmp_path, padded_batch(VOCAB, pairs=False))


def test_linear_rope_scaling(tmp_path):
    ref = ref_model("Model", rope_scaling={"rope_type": "linear", "factor": 4.0})
    assert ref.config.rope_parameters["full_attention"]["factor"] == 4.0
    compare_saved_model(ref, mb.ModernBertModel, tmp_path, padded_batch(VOCAB, pairs=False))


def test_unsupported_rope_type_is_named():
    config = mb.ModernBertConfig(**tiny_kwargs(rope_parameters={
        "full_attention": {"rope_type": "yarn", "rope_theta": 1000.0, "factor": 2.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}}))
    with pytest.raises(ValueError, match=r"rope_parameters\['full_attention'\] asks for rope_type 'yarn'.*"
                                         r"supported: \['default', 'linear'\]"):
        mb.ModernBertModel(config)


# -- bad input -----------------------------------------------------------------------------------------------
def test_too_long_input_names_length_and_limit():
    model = mb.ModernBertModel(mb.ModernBertConfig(**tiny_kwargs())).eval()
    with pytest.raises(ValueError, match="Sequence length 65 exceeds the model's maximum of 64 positions"):
        model(torch.full((1, 65), 7))
    with pytest.raises(ValueError, match="Sequence length 65 exceeds"):
        model(inputs_embeds=torch.zeros(1, 65, 32))
    assert model(torch.full((1, 64), 7)).last_hidden_state.shape == (1, 64, 32)  # the longest that fits


def test_out_of_vocabulary_ids_are_named():
    model = mb.ModernBertModel(mb.ModernBertConfig(**tiny_kwargs())).eval()
    with pytest.raises(ValueError, match=r"token ids \[99, 120\] outside the vocabulary \[0, 99\)"):
        model(torch.tensor([[5, 99, 120, 6]]))
    with pytest.raises(ValueError, match=r"token ids \[-1\]"):
        model(torch.tensor([[5, -1]]))


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="classifier_pooling must be 'cls' or 'mean', got 'max'"):
        mb.ModernBertConfig(classifier_pooling="max")
    with pytest.raises(ValueError, match="layer_types must name 4 layers"):
        mb.ModernBertConfig(**tiny_kwargs(layer_types=["full_attention"] * 3))
    with pytest.raises(ValueError, match="'global'"):
        mb.ModernBertConfig(**tiny_kwargs(layer_types=["global"] * 4))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, seq_len\)"):
        mb.ModernBertModel(mb.ModernBertConfig(**tiny_kwargs()))(torch.ones(1, 4, dtype=torch.long),
                                                                   torch.ones(1, 1, 4, 4))


# -- configs -----------------------------------------------------------------------------------------------------
HUB_STYLE = {  # answerdotai/ModernBERT-base's config.json, shrunk: the older keys of the released checkpoints
    "architectures": ["ModernBertForMaskedLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 2, "classifier_activation": "gelu", "classifier_bias": False, "classifier_dropout": 0.0,
    "classifier_pooling": "mean", "cls_token_id": 2, "decoder_bias": True, "deterministic_flash_attn": False,
    "embedding_dropout": 0.0, "eos_token_id": 3, "global_attn_every_n_layers": 3, "global_rope_theta": 160000.0,
    "gradient_checkpointing": False, "hidden_activation": "gelu", "hidden_size": 32,
    "initializer_cutoff_factor": 2.0, "initializer_range": 0.02, "intermediate_size": 20,
    "layer_norm_eps": 1e-05, "local_attention": 4, "local_rope_theta": 10000.0, "max_position_embeddings": 64,
    "mlp_bias": False, "mlp_dropout": 0.0, "model_type": "modernbert", "norm_bias": False, "norm_eps": 1e-05,
    "num_attention_heads": 4, "num_hidden_layers": 5, "pad_token_id": 1, "position_embedding_type": "absolute",
    "reference_compile": True, "sep_token_id": 3, "sparse_pred_ignore_index": -100, "sparse_prediction": False,
    "torch_dtype": "float32", "transformers_version": "4.47.0.dev0", "vocab_size": VOCAB,
}
NOT_COMPARED = {"transformers_version", "_name_or_path", "architectures", "dtype"}


def _comparable(config) -> dict:
    """The config as JSON would hold it (label keys as strings), less what names the writer or the file."""
    return {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k not in NOT_COMPARED}


def test_hub_style_config_reads_as_the_reference(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(HUB_STYLE))
    ref = transformers.ModernBertConfig.from_pretrained(tmp_path)
    ours = mb.ModernBertConfig.from_pretrained(tmp_path)
    assert ours.layer_types == ref.layer_types == ["full_attention", "sliding_attention", "sliding_attention",
                                                   "full_attention", "sliding_attention"]
    assert ours.rope_parameters == ref.rope_parameters
    assert ours.rope_parameters["full_attention"] == {"rope_type": "default", "rope_theta": 160000.0}
    assert ours.sliding_window == ref.sliding_window == 2
    assert ours.global_attn_every_n_layers == 3 and not hasattr(ours, "global_rope_theta")
    assert "reference_compile" not in ours.to_dict()
    theirs = _comparable(ref)
    mine = _comparable(ours)
    assert {k: mine[k] for k in theirs} == theirs


def test_config_round_trip_through_both_libraries(tmp_path):
    """Hub-style keys -> headway -> config.json -> the reference: the same config as reading the original."""
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "config.json").write_text(json.dumps(HUB_STYLE))
    original = transformers.ModernBertConfig.from_pretrained(tmp_path / "hub")
    mb.ModernBertConfig.from_pretrained(tmp_path / "hub").save_pretrained(tmp_path / "ours")
    reread = transformers.ModernBertConfig.from_pretrained(tmp_path / "ours")
    theirs, again = _comparable(original), _comparable(reread)
    assert {k: again[k] for k in theirs} == theirs
    # Extra keys are headway's base-config fields at their defaults; they change nothing in the reference.
    extra = {k: again[k] for k in again.keys() - theirs.keys()}
    assert all(v in (None, False, 0, "") for v in extra.values()), extra
    # ... and back: headway reads the reference's new-style config.json to the same config.
    original.save_pretrained(tmp_path / "ref")
    assert mb.ModernBertConfig.from_pretrained(tmp_path / "ref") == mb.ModernBertConfig.from_pretrained(tmp_path / "ours")


def test_hub_style_checkpoint_loads(tmp_path):
    """A checkpoint saved with a Hub-style config.json (older keys) gives the reference's numbers."""
    (tmp_path / "config.json").write_text(json.dumps(HUB_STYLE))
    config = transformers.ModernBertConfig.from_pretrained(tmp_path)
    torch.manual_seed(0)
    ref = transformers.ModernBertForMaskedLM(config).eval()
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in ref.state_dict().items() if k != "decoder.weight"},
              tmp_path / "model.safetensors")
    ours, info = mb.ModernBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    inputs = inputs_for("ForMaskedLM")
    with torch.no_grad():
        assert_outputs_close(ref(**inputs), ours(**inputs))


def test_config_defaults_match_reference():
    ref, ours = transformers.ModernBertConfig(), mb.ModernBertConfig()
    theirs, mine = _comparable(ref), _comparable(ours)
    assert {k: mine[k] for k in theirs} == theirs


# -- saving, tying, gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("head", HEADS)
def test_save_round_trip_and_reference_loads_ours(head, tmp_path):
    ref = ref_model(head)
    ref.save_pretrained(tmp_path / "ref")
    ours = ours_class(head).from_pretrained(tmp_path / "ref")
    ours.save_pretrained(tmp_path / "ours")
    assert load_file(tmp_path / "ours" / "model.safetensors").keys() == load_file(
        tmp_path / "ref" / "model.safetensors").keys()
    again = ours_class(head).from_pretrained(tmp_path / "ours")
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    reloaded, info = getattr(transformers, "ModernBert" + head).from_pretrained(tmp_path / "ours",
                                                                                output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    inputs = inputs_for(head, num_labels=reloaded.config.num_labels)
    with torch.no_grad():
        assert_outputs_close(reloaded.eval()(**inputs), again(**inputs))


def test_tied_decoder_and_base_checkpoint_into_heads(tmp_path):
    ref_model("Model").save_pretrained(tmp_path)
    mlm, info = mb.ModernBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert mlm.decoder.weight is mlm.model.embeddings.tok_embeddings.weight
    assert set(info["missing_keys"]) == {"head.dense.weight", "head.norm.weight", "decoder.bias"}
    _, ref_info = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == set(ref_info["missing_keys"])
    fresh = mb.ModernBertForMaskedLM(mb.ModernBertConfig(**tiny_kwargs()))
    assert fresh.decoder.weight is fresh.model.embeddings.tok_embeddings.weight


def test_random_init_follows_the_reference_scheme():
    model = mb.ModernBertForSequenceClassification(mb.ModernBertConfig(**tiny_kwargs(num_hidden_layers=8)))
    cutoff = 2.0 * 0.02
    assert model.model.layers[1].attn.Wqkv.weight.abs().max() <= cutoff
    assert model.model.layers[1].attn.Wo.weight.abs().max() <= cutoff / 4  # out: std / sqrt(2 * layers)
    assert model.classifier.weight.abs().max() <= 2.0 * 32 ** -0.5
    assert model.classifier.weight.std() > 0.1  # final_out: hidden_size ** -0.5, not initializer_range
    assert isinstance(model.model.layers[0].attn_norm, torch.nn.Identity)
    assert model.model.layers[1].attn_norm.bias is None  # norm_bias False


@pytest.mark.parametrize("checkpointing", [False, True])
def test_training_mode_gradients_match(checkpointing, tmp_path):
    """Train mode with dropout off: every parameter's gradient equals the reference's."""
    ref = ref_model("ForSequenceClassification", classifier_pooling="mean")
    ref.save_pretrained(tmp_path)
    ours = mb.ModernBertForSequenceClassification.from_pretrained(tmp_path)
    if checkpointing:
        ours.gradient_checkpointing_enable()
        assert ours.model.gradient_checkpointing
    ref.train()
    ours.train()
    batch = {**padded_batch(VOCAB, pairs=False), "labels": torch.tensor([0, 2, 1])}
    ref_loss, our_loss = ref(**batch).loss, ours(**batch).loss
    torch.testing.assert_close(our_loss, ref_loss, atol=ATOL, rtol=0)
    ref_loss.backward()
    our_loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, ref_grads[name].grad, atol=ATOL, rtol=0, msg=name)
