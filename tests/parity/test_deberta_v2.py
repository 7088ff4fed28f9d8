"""DeBERTa-v2 / v3 parity with transformers: several tiny configurations (v3-like, v2-like with the
ConvLayer, c2p only, p2c only, absolute positions only), every head on a padded batch, losses, hidden
states and attentions, relative-position buckets, both masked-LM layouts, save round trips, gradients
and bad-input errors."""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from headway.models import deberta_v2 as deberta
from tests.parity.common import (
    ATOL,
    as_multiple_choice,
    assert_outputs_close,
    compare_saved_model,
    labels_for,
    padded_batch,
)

VOCAB = 99
BASE = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 37, "max_position_embeddings": 64}
CONFIGS = {
    # deberta-v3: shared position projections, log buckets (reached at distance > 4 here), no absolute positions
    "v3": {"relative_attention": True, "position_buckets": 8, "max_relative_positions": -1, "pos_att_type": "p2c|c2p",
           "share_att_key": True, "norm_rel_ebd": "layer_norm", "position_biased_input": False, "type_vocab_size": 0},
    # deberta-v2-xlarge's kind: absolute positions too, token types, embed_proj, the ConvLayer, pos_*_proj
    "v2": {"relative_attention": True, "max_relative_positions": 16, "pos_att_type": ["c2p", "p2c"],
           "position_biased_input": True, "type_vocab_size": 2, "embedding_size": 24, "conv_kernel_size": 3,
           "conv_act": "gelu", "share_att_key": False, "hidden_act": "gelu_new"},
    "c2p": {"relative_attention": True, "position_buckets": 6, "max_relative_positions": 32, "pos_att_type": "c2p",
            "share_att_key": False, "position_biased_input": False},
    # distances past max_relative_positions (4 < 11) are clamped to the table's ends
    "p2c": {"relative_attention": True, "max_relative_positions": 4, "pos_att_type": "p2c", "share_att_key": True,
            "norm_rel_ebd": "layer_norm", "position_biased_input": True, "type_vocab_size": 2},
    "absolute": {"relative_attention": False, "position_biased_input": True, "type_vocab_size": 2,
                 "pos_att_type": None, "conv_kernel_size": 3, "conv_groups": 4},
    # relative embeddings built (and loaded) but no position term reads them; scores scaled by sqrt(d)
    "unread_relative": {"relative_attention": True, "pos_att_type": None, "norm_rel_ebd": "layer_norm",
                        "position_biased_input": True},
}
HEADS = ["Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMaskedLM", "ForMultipleChoice"]


def ref_model(name: str, head: str, **overrides):
    torch.manual_seed(0)
    kwargs = {**BASE, **CONFIGS[name], "num_labels": 2 if head == "ForQuestionAnswering" else 3, **overrides}
    return getattr(transformers, "DebertaV2" + head)(transformers.DebertaV2Config(**kwargs))


def inputs_for(head: str, config) -> dict[str, torch.Tensor]:
    batch = padded_batch(config.vocab_size, pairs=config.type_vocab_size > 0)
    task = head.removeprefix("For")
    if task == "MultipleChoice":
        batch = as_multiple_choice(batch)
    return {**batch, **labels_for(task, batch, config.num_labels, config.vocab_size)}


def load(cls_name: str, folder):
    return getattr(deberta, "DebertaV2" + cls_name).from_pretrained(folder)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", CONFIGS)
def test_head_parity(name, head, tmp_path):
    ref = ref_model(name, head)
    compared = compare_saved_model(ref, getattr(deberta, "DebertaV2" + head), tmp_path, inputs_for(head, ref.config))
    assert "loss" in compared or head == "Model"


@pytest.mark.parametrize("name", ["v3", "p2c"])
def test_masked_lm_authors_layout(name, tmp_path):
    """legacy=False: lm_predictions.lm_head, decoding with the word embeddings themselves."""
    ref = ref_model(name, "ForMaskedLM", legacy=False)
    compare_saved_model(ref, deberta.DebertaV2ForMaskedLM, tmp_path, inputs_for("ForMaskedLM", ref.config))


@pytest.mark.parametrize("length", [1, 2, 5, 17, 130, 513, 700])
@pytest.mark.parametrize("buckets,max_distance", [(256, 512), (8, 64), (-1, 16), (6, 64)])
def test_relative_rows_equal_reference_buckets(buckets, max_distance, length):
    """The per-distance rows read by c2p and p2c equal the reference's (T, T) bucket indices."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import build_relative_position

    span = buckets if buckets > 0 else max_distance
    x = torch.zeros(length, 1)
    rel = build_relative_position(x, x, bucket_size=buckets, max_position=max_distance)[0]  # (T, T)
    reached, c2p, p2c = deberta._relative_rows(length, buckets, max_distance, span)
    first = reached.start
    assert reached.stop == first + 1 + max(*c2p, *p2c)
    column = length - 1 - (torch.arange(length)[:, None] - torch.arange(length)[None])  # skew column of (i, j)
    assert torch.equal(torch.tensor(c2p)[column] + first, (rel + span).clamp(0, 2 * span - 1))
    assert torch.equal(torch.tensor(p2c)[column] + first, (span - rel).clamp(0, 2 * span - 1))


def test_skew_is_the_relative_gather():
    scores = torch.randn(2, 3, 7, 13)
    i, j = torch.arange(7)[:, None], torch.arange(7)[None]
    torch.testing.assert_close(deberta.skew(scores), scores[..., i, 6 + j - i], rtol=0, atol=0)


@pytest.mark.parametrize("case", ["single", "regression", "multi_label", "single_label_type",
                                  "single_skips_negative", "soft_labels", "problem_type_left_unset"])
def test_sequence_classification_losses(case, tmp_path):
    """With problem_type unset the reference's own DeBERTa loss (rows labelled < 0 skipped, (B, num_labels)
    labels taken as soft targets, problem_type left unset); the shared ones when it is set."""
    num_labels = 1 if case == "regression" else 3
    problem = {"multi_label": "multi_label_classification", "single_label_type": "single_label_classification"}
    ref = ref_model("v3", "ForSequenceClassification", num_labels=num_labels, problem_type=problem.get(case)).eval()
    ref.save_pretrained(tmp_path)
    ours = load("ForSequenceClassification", tmp_path)
    batch = padded_batch(VOCAB, pairs=False)
    g = torch.Generator().manual_seed(3)
    labels = {
        "single": torch.tensor([0, 2, 1]),
        "problem_type_left_unset": torch.tensor([0, 2, 1]),
        "single_skips_negative": torch.tensor([0, -1, 2]),
        "regression": torch.randn(3, generator=g),
        "soft_labels": torch.softmax(torch.randn(3, 3, generator=g), -1),
        "multi_label": torch.randint(0, 2, (3, 3), generator=g).float(),
        "single_label_type": torch.tensor([2, 2, 0]),
    }[case]
    with torch.no_grad():
        ref_out, our_out = ref(**batch, labels=labels), ours(**batch, labels=labels)
    torch.testing.assert_close(our_out.loss, ref_out.loss, atol=ATOL, rtol=0)
    if case == "problem_type_left_unset":
        assert ours.config.problem_type is ref.config.problem_type is None


@pytest.mark.parametrize("case", ["single_skips_negative", "soft_labels", "regression", "all_unlabelled"])
def test_deberta_loss_function(case):
    """``sequence_loss`` itself against the reference's loss, whatever the shared head does with it."""
    ref = ref_model("v3", "ForSequenceClassification", num_labels=1 if case == "regression" else 3).eval()
    config = deberta.DebertaV2Config(**ref.config.to_dict())
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, ref.config.num_labels, generator=g)
    labels = {"single_skips_negative": torch.tensor([0, -1, 2]), "regression": torch.randn(3, generator=g),
              "soft_labels": torch.softmax(torch.randn(3, 3, generator=g), -1),
              "all_unlabelled": torch.tensor([-1, -1, -1])}[case]
    ref.classifier.forward = lambda pooled: logits  # the reference's loss on these logits
    with torch.no_grad():
        expected = ref(**padded_batch(VOCAB, pairs=False), labels=labels).loss
    torch.testing.assert_close(deberta.sequence_loss(logits, labels, config), expected, atol=ATOL, rtol=0)
    assert config.problem_type is None


@pytest.mark.parametrize("name,head", [("v3", "ForSequenceClassification"), ("v3", "ForMaskedLM"),
                                       ("v2", "ForTokenClassification"), ("v2", "ForMaskedLM"),
                                       ("c2p", "ForQuestionAnswering"), ("p2c", "ForMultipleChoice")])
def test_training_mode_gradients_match(name, head, tmp_path):
    """Dropout off, train mode: the loss's gradients equal the reference's, padding queries included
    (the masked-LM labels fall on padding too)."""
    ref = ref_model(name, head, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ref.save_pretrained(tmp_path)
    ours = load(head, tmp_path)
    ref.train()
    ours.train()
    inputs = inputs_for(head, ref.config)
    ref_loss, our_loss = ref(**inputs).loss, ours(**inputs).loss
    torch.testing.assert_close(our_loss, ref_loss, atol=ATOL, rtol=0)
    ref_loss.backward()
    our_loss.backward()
    ref_params = dict(ref.named_parameters(remove_duplicate=False))
    for param_name, param in ours.named_parameters():
        assert param.grad is not None, param_name
        torch.testing.assert_close(param.grad, ref_params[param_name].grad, atol=ATOL, rtol=0, msg=param_name)


def test_gradient_checkpointing_gives_same_gradients(tmp_path):
    ref_model("v2", "ForSequenceClassification").save_pretrained(tmp_path)
    grads = []
    for checkpointing in (False, True):
        model = deberta.DebertaV2ForSequenceClassification.from_pretrained(
            tmp_path, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(**inputs_for("ForSequenceClassification", model.config)).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("name", ["v3", "v2"])
def test_inputs_embeds_and_tuple_output(name, tmp_path):
    ref = ref_model(name, "Model").eval()
    ref.save_pretrained(tmp_path)
    ours = load("Model", tmp_path)
    batch = padded_batch(VOCAB, pairs=False)
    embeds = ref.embeddings.word_embeddings(batch["input_ids"]).detach()
    with torch.no_grad():
        assert_outputs_close(ref(inputs_embeds=embeds, attention_mask=batch["attention_mask"]),
                             ours(inputs_embeds=embeds, attention_mask=batch["attention_mask"]))
        assert_outputs_close(ref(batch["input_ids"]), ours(batch["input_ids"]))  # no mask at all
        as_tuple = ours(**batch, return_dict=False, output_hidden_states=True)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2 and len(as_tuple[1]) == 3


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", ["v3", "v2"])
def test_save_pretrained_round_trip(name, head, tmp_path):
    """headway's save loads back identically in headway, and in transformers with no key reported."""
    ref = ref_model(name, head).eval()
    ref.save_pretrained(tmp_path / "ref")
    ours = load(head, tmp_path / "ref")
    ours.save_pretrained(tmp_path / "ours")
    again = load(head, tmp_path / "ours")
    first, second = ours.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    back, info = getattr(transformers, "DebertaV2" + head).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    inputs = inputs_for(head, ref.config)
    with torch.no_grad():
        assert_outputs_close(back(**inputs), again(**inputs))


def test_legacy_default_matches_reference():
    assert deberta.DebertaV2Config().legacy is transformers.DebertaV2Config().legacy is True


def _checkpoint_like_the_hub(ref, folder):
    """The reference's weights plus what real checkpoints also carry: v3's unused absolute position table
    and its replaced-token-detection head."""
    ref.save_pretrained(folder)
    state = load_file(folder / "model.safetensors")
    state.setdefault("deberta.embeddings.position_embeddings.weight", torch.zeros(64, 32))
    state["mask_predictions.dense.weight"] = torch.zeros(32, 32)
    state["mask_predictions.classifier.bias"] = torch.zeros(1)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize("saved_legacy", [True, False])
@pytest.mark.parametrize("loaded_legacy", [True, False])
def test_masked_lm_layouts_load_hub_key_names(saved_legacy, loaded_legacy, tmp_path):
    """Each layout loads its own keys (cls.predictions.* / lm_predictions.lm_head.*); the other layout's
    keys are reported unused and the head newly initialised, as the reference reports them."""
    ref = ref_model("v3", "ForMaskedLM", legacy=saved_legacy).eval()
    _checkpoint_like_the_hub(ref, tmp_path / "ckpt")
    ours, info = deberta.DebertaV2ForMaskedLM.from_pretrained(tmp_path / "ckpt", legacy=loaded_legacy,
                                                              output_loading_info=True)
    back, ref_info = transformers.DebertaV2ForMaskedLM.from_pretrained(tmp_path / "ckpt", legacy=loaded_legacy,
                                                                       output_loading_info=True)
    prefix = "cls.predictions" if loaded_legacy else "lm_predictions.lm_head"
    other = "lm_predictions" if loaded_legacy else "cls.predictions"
    if saved_legacy == loaded_legacy:
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        inputs = inputs_for("ForMaskedLM", ref.config)
        with torch.no_grad():
            assert_outputs_close(back(**inputs), ours(**inputs))
    else:
        assert info["missing_keys"] and all(k.startswith(prefix) for k in info["missing_keys"])
        assert set(info["missing_keys"]) <= set(ref_info["missing_keys"])
        assert info["unexpected_keys"] and all(k.startswith(other) for k in info["unexpected_keys"])
        assert set(info["unexpected_keys"]) <= set(ref_info["unexpected_keys"])


def test_tied_legacy_decoder(tmp_path):
    ref_model("v2", "ForMaskedLM").save_pretrained(tmp_path)
    ours = load("ForMaskedLM", tmp_path)
    predictions = ours.cls.predictions
    assert predictions.decoder.weight is ours.deberta.embeddings.word_embeddings.weight
    assert predictions.decoder.bias is predictions.bias
    untied = deberta.DebertaV2ForMaskedLM(deberta.DebertaV2Config(**{**BASE, "tie_word_embeddings": False}))
    assert untied.cls.predictions.decoder.bias is not untied.cls.predictions.bias


def test_config_round_trip_and_defaults(tmp_path):
    ours, ref = deberta.DebertaV2Config(), transformers.DebertaV2Config()
    assert ours.model_type == ref.model_type
    for key, value in ref.to_dict().items():
        if key not in ("transformers_version", "_name_or_path", "dtype"):
            assert getattr(ours, key) == value, key
    config = deberta.DebertaV2Config(**BASE, **CONFIGS["v3"], custom_key=7)
    assert config.pos_att_type == ["p2c", "c2p"] and config.embedding_size == 32
    config.save_pretrained(tmp_path)
    assert deberta.DebertaV2Config.from_pretrained(tmp_path) == config
    assert deberta.DebertaV2Config.from_pretrained(tmp_path).custom_key == 7
    assert transformers.DebertaV2Config.from_pretrained(tmp_path).pos_att_type == ["p2c", "c2p"]


def test_unsupported_pos_att_type_is_named():
    with pytest.raises(ValueError, match=r"\['p2p'\].*'c2p', 'p2c'"):
        deberta.DebertaV2Config(pos_att_type="c2p|p2p")


def test_too_long_input_raises_when_positions_are_absolute():
    model = deberta.DebertaV2Model(deberta.DebertaV2Config(**BASE, **CONFIGS["v2"])).eval()
    with pytest.raises(ValueError, match="Sequence length 65 exceeds the model's maximum of 64"):
        model(torch.full((1, 65), 7))
    model(torch.full((1, 64), 7))
    relative_only = deberta.DebertaV2Model(deberta.DebertaV2Config(**BASE, **CONFIGS["v3"])).eval()
    relative_only(torch.full((1, 65), 7))  # relative positions alone have no length limit, as in the reference


def test_out_of_vocabulary_ids_are_named():
    model = deberta.DebertaV2Model(deberta.DebertaV2Config(**BASE, **CONFIGS["v3"])).eval()
    with pytest.raises(ValueError, match=r"token ids \[99\] outside the vocabulary \[0, 99\)"):
        model(torch.tensor([[5, 99, 6]]))
