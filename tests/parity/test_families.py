"""Parity with transformers for every encoder family: one table of families, one set of checks run on each.

Each row of ``FAMILIES`` describes a family by data: the class-name prefix that headway and transformers
share ("Roberta" -> ``RobertaConfig``, ``RobertaModel``, ``RobertaForMaskedLM`` in both libraries), the
keyword arguments of a tiny random transformers config, the heads the family offers, its padding id,
whether it takes ``token_type_ids``, the attribute holding the encoder inside a head model, the config
overrides that turn every dropout off, the config fields whose defaults must equal the reference's, and
the few ways its checkpoints load differently (the ``Family`` fields say what each one means).

Every check below runs on every row (and, where it says so, every head of the row): each head on a
right-padded batch with its loss, hidden states and attentions; ``return_dict=False`` tuples; a base
checkpoint loaded into a head model (the head newly initialised and named in the warning) and a head
checkpoint into the bare model (one head per checkpoint layout); the Auto classes; the tied masked-LM decoder; save round trips read by
both libraries; gradients in train mode (dropout off, with and without gradient checkpointing) and in eval
mode; the problem types of sequence classification; inputs without a mask, with ``inputs_embeds``; config
defaults. Reference models are built once per (family, head, overrides) and shared by the checks
(``References``): the table runs ~75% more checks than the per-family files it replaced in ~10% more time.

Adding a family (DeBERTa-v2, ModernBERT, ...)
---------------------------------------------
1. Append a ``Family(...)`` row to ``FAMILIES``: ``name`` (the class-name prefix), ``config_kwargs`` (a
   tiny config: hidden size 32, 2 layers, 4 heads, ``max_position_embeddings=64``; ``vocab_size`` and
   ``num_labels`` are set by the table), ``heads`` if it lacks one of ``ALL_HEADS`` or has more (e.g.
   ``"ForPreTraining"``), ``pad_token_id``, ``token_type_ids``, ``base_prefix``, ``no_dropout``,
   ``config_fields``, ``mlm_bias``, and the loading quirks ``missing_aliases`` / ``reports_unused_pooler``.
   Nothing else in this file changes: ``pytest tests/parity/test_families.py -k <Name>`` runs every check.
2. A check that does not hold for the new family is a finding: fix the model, or (if the reference
   behaves the same way) describe the difference with a new ``Family`` field whose default keeps the
   other rows as they are -- never an ``if row.name == ...`` inside a check.
3. Behaviour only that family has (a position scheme, a checkpoint layout, a length limit) goes in a short
   ``tests/parity/test_<family>.py``, which can reuse the row: ``from tests.parity.test_families import
   family`` then ``family("Name").config(...)`` / ``.batch()`` / ``.inputs(head)``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from safetensors.torch import load_file

import headway
from tests.parity.common import (
    ATOL,
    as_multiple_choice,
    assert_close,
    assert_outputs_close,
    compare_models,
    labels_for,
    padded_batch,
)

VOCAB = 99
ALL_HEADS = ("Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
             "ForMaskedLM", "ForMultipleChoice")
BERT_SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
              "max_position_embeddings": 64}
BERT_NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
BERT_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
               "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id",
               "eos_token_id", "classifier_dropout", "tie_word_embeddings")


@dataclass(frozen=True)
class Family:
    """One row of the table: what the generic checks need to know about a family."""

    name: str  # class-name prefix in both libraries: name + "Config", name + "Model", name + "ForMaskedLM", ...
    config_kwargs: dict[str, Any]  # a tiny random config (without vocab_size and num_labels)
    pad_token_id: int
    token_type_ids: bool  # whether the batches carry token_type_ids (sentence pairs)
    base_prefix: str  # the encoder's attribute in a head model: "bert", "roberta", ...
    no_dropout: dict[str, float]  # config overrides that turn every dropout off
    config_fields: tuple[str, ...]  # fields whose defaults must equal the reference config's
    heads: tuple[str, ...] = ALL_HEADS
    # Path of the bias that the masked-LM decoder shares (None: the decoder keeps its own).
    mlm_bias: str | None = None
    # Second names under which the reference also reports a shared tensor missing (headway names it once).
    missing_aliases: frozenset[str] = frozenset()
    # True: a base checkpoint's pooler that a head does not use is reported as unexpected, as the reference
    # does; False: headway drops it silently (the reference still lists it).
    reports_unused_pooler: bool = False
    # False: with problem_type unset, the family's own loss leaves it unset (DeBERTa's soft-label loss).
    records_problem_type: bool = True
    # Path of the token embeddings inside the encoder (the tied decoder's weight).
    input_embeddings: str = "embeddings.word_embeddings"
    # Heads whose train-mode gradients are compared (eval-mode ones: classification and masked LM).
    gradient_heads: tuple[str, ...] = ("ForSequenceClassification", "ForTokenClassification", "ForMaskedLM")

    def config(self, head: str = "Model", **overrides: Any) -> Any:
        """The tiny transformers config for ``head`` (question answering: two labels, start and end)."""
        kwargs = {"vocab_size": VOCAB, "num_labels": 2 if head == "ForQuestionAnswering" else 3,
                  **self.config_kwargs, **overrides}
        return getattr(transformers, self.name + "Config")(**kwargs)

    def ref_class(self, head: str) -> type:
        return getattr(transformers, self.name + head)

    def our_class(self, head: str) -> type:
        return getattr(headway, self.name + head)

    def batch(self, **kwargs: Any) -> dict[str, torch.Tensor]:
        """A right-padded batch in the family's padding id, with token_type_ids if it takes them."""
        return padded_batch(VOCAB, pairs=self.token_type_ids, pad_token_id=self.pad_token_id, **kwargs)

    def inputs(self, head: str) -> dict[str, torch.Tensor]:
        """The batch shaped for ``head`` with the labels that make it compute its loss."""
        batch = self.batch()
        task = head.removeprefix("For")
        if task == "MultipleChoice":
            batch = as_multiple_choice(batch)
        num_labels = 2 if head == "ForQuestionAnswering" else 3
        return {**batch, **labels_for(task, batch, num_labels, VOCAB)}


FAMILIES = [
    Family("Bert", BERT_SIZES, pad_token_id=0, token_type_ids=True, base_prefix="bert",
           no_dropout=BERT_NO_DROPOUT, config_fields=BERT_FIELDS,
           heads=(*ALL_HEADS[:5], "ForPreTraining", "ForMultipleChoice"),
           mlm_bias="cls.predictions.bias", missing_aliases=frozenset({"cls.predictions.decoder.bias"})),
    Family("Roberta", BERT_SIZES, pad_token_id=1, token_type_ids=True, base_prefix="roberta",
           no_dropout=BERT_NO_DROPOUT, config_fields=BERT_FIELDS,
           mlm_bias="lm_head.bias", missing_aliases=frozenset({"lm_head.decoder.bias"})),
    Family("XLMRoberta", BERT_SIZES, pad_token_id=1, token_type_ids=True, base_prefix="roberta",
           no_dropout=BERT_NO_DROPOUT, config_fields=BERT_FIELDS,
           mlm_bias="lm_head.bias", missing_aliases=frozenset({"lm_head.decoder.bias"})),
    Family("DistilBert", {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37, "max_position_embeddings": 64},
           pad_token_id=0, token_type_ids=False, base_prefix="distilbert",
           no_dropout={"dropout": 0.0, "attention_dropout": 0.0, "seq_classif_dropout": 0.0, "qa_dropout": 0.0},
           config_fields=("vocab_size", "max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads",
                          "dim", "hidden_dim", "dropout", "attention_dropout", "activation", "initializer_range",
                          "qa_dropout", "seq_classif_dropout", "pad_token_id", "tie_word_embeddings",
                          "hidden_size", "num_attention_heads", "num_hidden_layers")),
    Family("MPNet", BERT_SIZES, pad_token_id=1, token_type_ids=False, base_prefix="mpnet",
           no_dropout=BERT_NO_DROPOUT,
           config_fields=("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                          "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
                          "max_position_embeddings", "initializer_range", "layer_norm_eps",
                          "relative_attention_num_buckets", "pad_token_id", "bos_token_id", "eos_token_id",
                          "tie_word_embeddings"),
           mlm_bias="lm_head.bias", missing_aliases=frozenset({"lm_head.decoder.bias"}), reports_unused_pooler=True),
    # DeBERTa-v3's shape; tests/parity/test_deberta_v2.py covers the other configurations.
    Family("DebertaV2", {**BERT_SIZES, "relative_attention": True, "position_buckets": 8, "pos_att_type": "p2c|c2p",
                         "share_att_key": True, "norm_rel_ebd": "layer_norm", "position_biased_input": False,
                         "type_vocab_size": 0},
           pad_token_id=0, token_type_ids=False, base_prefix="deberta", no_dropout=BERT_NO_DROPOUT,
           config_fields=(*(f for f in BERT_FIELDS if f != "classifier_dropout"), "relative_attention",
                          "max_relative_positions", "position_biased_input", "pos_att_type", "pooler_dropout",
                          "pooler_hidden_act", "pooler_hidden_size", "legacy"),
           mlm_bias="cls.predictions.bias", missing_aliases=frozenset({"cls.predictions.decoder.bias"}),
           records_problem_type=False),
    # ModernBERT: every other layer global, a 2-token window on each side shorter than the 12-token batch;
    # tests/parity/test_modernbert.py covers the rest (poolings, long inputs, rotary settings, older config keys).
    Family("ModernBert", {**BERT_SIZES, "global_attn_every_n_layers": 2, "local_attention": 4, "pad_token_id": 1,
                          "bos_token_id": 2, "eos_token_id": 3, "cls_token_id": 2, "sep_token_id": 3},
           pad_token_id=1, token_type_ids=False, base_prefix="model", input_embeddings="embeddings.tok_embeddings",
           no_dropout={"embedding_dropout": 0.0, "attention_dropout": 0.0, "mlp_dropout": 0.0,
                       "classifier_dropout": 0.0},
           config_fields=("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "hidden_activation", "max_position_embeddings", "initializer_range",
                          "initializer_cutoff_factor", "norm_eps", "norm_bias", "pad_token_id", "eos_token_id",
                          "bos_token_id", "cls_token_id", "sep_token_id", "attention_bias", "attention_dropout",
                          "layer_types", "rope_parameters", "local_attention", "sliding_window", "embedding_dropout",
                          "mlp_bias", "mlp_dropout", "decoder_bias", "classifier_pooling", "classifier_dropout",
                          "classifier_bias", "classifier_activation", "deterministic_flash_attn", "sparse_prediction",
                          "sparse_pred_ignore_index", "tie_word_embeddings")),
]


def family(name: str) -> Family:
    """The row named ``name`` (for the family-specific test files)."""
    for row in FAMILIES:
        if row.name == name:
            return row
    raise KeyError(f"no family {name!r} in FAMILIES: {[row.name for row in FAMILIES]}")


def by_family(rows: list[Family] = FAMILIES) -> Any:
    return pytest.mark.parametrize("row", rows, ids=[row.name for row in rows])


def by_head(select: Any = None, *, rows: list[Family] = FAMILIES) -> Any:
    """Parametrise over (row, head) for every head of every row that ``select(row, head)`` keeps."""
    cases = [pytest.param(row, head, id=f"{row.name}-{head}") for row in rows for head in row.heads
             if select is None or select(row, head)]
    return pytest.mark.parametrize("row,head", cases)


class References:
    """Tiny random reference models, each (row, head, overrides) built once per module and saved the first
    time its folder is asked for.

    Building is cheaper than loading, and a copy cheaper than either. Checks read the folders and never
    write into them (they save into their own ``tmp_path``). ``pair`` hands the same two models to every
    check that only runs forwards on them (under no_grad, with the row's inputs); a check that trains,
    edits a config or changes weights takes its own copies (``model``, ``both``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[tuple, Any] = {}
        self.folders: dict[tuple, Path] = {}
        self.pairs: dict[tuple, tuple[Any, Any]] = {}

    def _get(self, row: Family, head: str, overrides: dict[str, Any]) -> tuple[tuple, Any]:
        key = (row.name, head, tuple(sorted(overrides.items())))
        if key not in self.built:
            torch.manual_seed(0)
            self.built[key] = row.ref_class(head)(row.config(head, **overrides)).eval()
        return key, self.built[key]

    def folder(self, row: Family, head: str, **overrides: Any) -> Path:
        """The folder of the reference's checkpoint."""
        key, model = self._get(row, head, overrides)
        if key not in self.folders:
            self.folders[key] = self.root / f"{row.name}{head}-{len(self.folders)}"
            model.save_pretrained(self.folders[key])
        return self.folders[key]

    def model(self, row: Family, head: str, **overrides: Any) -> Any:
        """A fresh copy of the reference model, in eval mode."""
        return copy.deepcopy(self._get(row, head, overrides)[1])

    def both(self, row: Family, head: str, **overrides: Any) -> tuple[Any, Any]:
        """The reference model, and headway's loaded from the reference's checkpoint."""
        folder = self.folder(row, head, **overrides)
        return self.model(row, head, **overrides), row.our_class(head).from_pretrained(folder)

    def pair(self, row: Family, head: str) -> tuple[Any, Any]:
        """``both(row, head)``, shared: run forwards only (see the class docstring)."""
        if (row.name, head) not in self.pairs:
            self.pairs[row.name, head] = self.both(row, head)
        return self.pairs[row.name, head]


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> References:
    return References(tmp_path_factory.mktemp("references"))


def assert_same_gradients(ours, ref, atol: float = ATOL) -> None:
    """Every headway parameter's gradient equals the reference's (tied parameters under all their names)."""
    ref_params = dict(ref.named_parameters(remove_duplicate=False))
    for name, param in ours.named_parameters():
        assert param.grad is not None, f"{name} has no gradient"
        assert_close(param.grad, ref_params[name].grad, atol=atol, msg=name)


def warnings_text(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# -- forward parity --------------------------------------------------------------------------------------


@by_head()
def test_head_parity(row, head, refs):
    """Padded batch, every output field (loss included), then hidden states and attentions (eager): the
    reference saved by transformers, loaded by headway (``compare_saved_model`` without its save)."""
    compared = compare_models(*refs.pair(row, head), row.inputs(head))
    if head != "Model":
        assert "loss" in compared


def assert_tuples_close(ours: Any, ref: tuple, what: str) -> None:
    assert type(ours) is tuple, f"{what}: return_dict=False returned {type(ours).__name__}, not a tuple"
    assert len(ours) == len(ref), f"{what}: {len(ours)} elements, the reference returns {len(ref)}"
    for i, (o, r) in enumerate(zip(ours, ref)):
        if isinstance(r, tuple):
            assert_tuples_close(o, r, f"{what}[{i}]")
        else:
            assert_close(o, r, msg=f"{what}[{i}]")


@by_head()
def test_return_dict_false(row, head, refs):
    """``return_dict=False``: the reference's tuple (None fields dropped), element by element."""
    ref, ours = refs.pair(row, head)
    inputs = row.inputs(head)
    with torch.no_grad():
        for extra in ({}, {"output_hidden_states": True}):
            assert_tuples_close(ours(**inputs, **extra, return_dict=False),
                                ref(**inputs, **extra, return_dict=False), f"{row.name}{head}{extra or ''}")


@by_family()
def test_input_ids_only(row, refs):
    """No attention mask and no token_type_ids."""
    compare_models(*refs.pair(row, "Model"), {"input_ids": row.batch()["input_ids"]})


@by_family()
def test_inputs_embeds(row, refs):
    """``inputs_embeds`` instead of ids (positions then count from the start, padding or not)."""
    ref, ours = refs.pair(row, "Model")
    batch = row.batch()
    with torch.no_grad():
        embeds = ref.get_input_embeddings()(batch["input_ids"])
        inputs = {"inputs_embeds": embeds, "attention_mask": batch["attention_mask"]}
        assert_outputs_close(ref(**inputs), ours(**inputs))


@by_family([row for row in FAMILIES if not row.token_type_ids])
def test_token_type_ids_accepted_and_ignored(row, refs):
    """Families without token types take token_type_ids (e.g. from a BERT tokenizer) and ignore them."""
    ref, ours = refs.pair(row, "ForSequenceClassification")
    batch = row.batch()
    token_types = torch.ones_like(batch["input_ids"])
    with torch.no_grad():
        plain = ours(**batch).logits
        assert_close(ours(**batch, token_type_ids=token_types).logits, plain, atol=0)
        assert_close(ref(**batch, token_type_ids=token_types).logits, plain, atol=ATOL)


PROBLEM_TYPES = [
    ("regression", torch.tensor([[0.5], [-1.0], [2.0]])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),
    ("single_label_classification", torch.tensor([0, 2, 1])),
]


@pytest.mark.parametrize("problem_type,labels", PROBLEM_TYPES, ids=[p for p, _ in PROBLEM_TYPES])
@by_family()
def test_sequence_classification_problem_types(row, problem_type, labels, refs):
    head, overrides = "ForSequenceClassification", {"num_labels": 1} if problem_type == "regression" else {}
    ref = refs.model(row, head, **overrides)
    ref.config.problem_type = problem_type
    ours = row.our_class(head).from_pretrained(refs.folder(row, head, **overrides), problem_type=problem_type)
    compare_models(ref, ours, {**row.batch(), "labels": labels})


@by_family()
def test_problem_type_inferred_like_reference(row, refs):
    """No problem_type: float labels with several labels mean multi-label; the config records it (unless the
    family's loss is its own, as DeBERTa's)."""
    ref, ours = refs.both(row, "ForSequenceClassification")
    batch = row.batch()
    labels = PROBLEM_TYPES[1][1]
    with torch.no_grad():
        assert_close(ours(**batch, labels=labels).loss, ref(**batch, labels=labels).loss)
    expected = "multi_label_classification" if row.records_problem_type else None
    assert ours.config.problem_type == ref.config.problem_type == expected


# -- loading ---------------------------------------------------------------------------------------------


@by_head(lambda row, head: head != "Model")
def test_base_checkpoint_into_head(row, head, refs, caplog):
    """The encoder loads, the head is initialised and named in the warning, as the reference reports."""
    folder = refs.folder(row, "Model")
    kwargs = {"num_labels": 2} if head == "ForQuestionAnswering" else {}
    with caplog.at_level(logging.WARNING, logger="headway"):
        ours, info = row.our_class(head).from_pretrained(folder, output_loading_info=True, **kwargs)
    ref, ref_info = row.ref_class(head).from_pretrained(folder, output_loading_info=True, **kwargs)

    missing = set(info["missing_keys"])
    assert missing, "the head should be reported as newly initialised"
    assert not any(k.startswith(row.base_prefix + ".") for k in missing), missing
    assert missing == set(ref_info["missing_keys"]) - row.missing_aliases
    warning = warnings_text(caplog)
    assert "newly initialized" in warning
    assert all(k in warning for k in missing), warning
    unexpected = set(info["unexpected_keys"])
    assert all(k.startswith("pooler.") for k in unexpected), unexpected
    assert unexpected == (set(ref_info["unexpected_keys"]) if row.reports_unused_pooler else set())

    for name, tensor in ours.state_dict().items():
        assert not tensor.is_meta and torch.isfinite(tensor).all(), name
    batch = row.batch()
    with torch.no_grad():
        base = getattr(ref.eval(), row.base_prefix)  # the encoder of the base checkpoint
        assert_close(getattr(ours, row.base_prefix)(**batch).last_hidden_state, base(**batch).last_hidden_state)
        out = ours(**row.inputs(head))
        for key, value in out.items():
            if isinstance(value, torch.Tensor):
                assert value.isfinite().all(), key


# One head per checkpoint layout the bare model meets: with the pooler, without it, with the tied decoder
# (token classification and question answering are laid out like sequence classification).
BARE_LOAD_HEADS = ("ForSequenceClassification", "ForMaskedLM", "ForMultipleChoice", "ForPreTraining")


@by_head(lambda row, head: head in BARE_LOAD_HEADS)
def test_head_checkpoint_into_bare_model(row, head, refs, caplog):
    """The encoder of a head checkpoint loads into the bare model; the head's weights are reported unused."""
    folder = refs.folder(row, head)
    with caplog.at_level(logging.WARNING, logger="headway"):
        ours, info = row.our_class("Model").from_pretrained(folder, output_loading_info=True)
    ref, ref_info = row.ref_class("Model").from_pretrained(folder, output_loading_info=True)

    missing = set(info["missing_keys"])  # the pooler, unless the head had one
    assert missing == set(ref_info["missing_keys"])
    assert all(k.startswith("pooler.") for k in missing), missing
    if getattr(ours, "pooler", None) is None:
        assert not missing
    unexpected = set(info["unexpected_keys"])
    assert unexpected and not any(k.startswith(row.base_prefix + ".") for k in unexpected), unexpected
    assert unexpected == set(ref_info["unexpected_keys"])
    warning = warnings_text(caplog)
    assert all(k in warning for k in unexpected), warning
    batch = row.batch()
    with torch.no_grad():
        assert_close(ours(**batch).last_hidden_state, ref.eval()(**batch).last_hidden_state)


@by_family()
def test_auto_classes_pick_family(row, refs):
    """Each head's checkpoint through its Auto class, and one checkpoint through every Auto class."""
    pretraining = "ForPreTraining" if "ForPreTraining" in row.heads else "ForMaskedLM"  # as in the reference
    auto_classes = {"AutoModel" + head.removeprefix("Model"): head for head in row.heads}
    auto_classes["AutoModelForPreTraining"] = pretraining
    for auto, head in auto_classes.items():
        folder = refs.folder(row, head)
        assert type(getattr(headway, auto).from_pretrained(folder)) is row.our_class(head), (auto, head)
        assert type(headway.AutoConfig.from_pretrained(folder)) is getattr(headway, row.name + "Config")
    folder = refs.folder(row, "ForMaskedLM" if "ForMaskedLM" in row.heads else "Model")
    for auto, head in auto_classes.items():
        kwargs = {"num_labels": 2} if head == "ForQuestionAnswering" else {}
        assert type(getattr(headway, auto).from_pretrained(folder, **kwargs)) is row.our_class(head), auto


@by_family([row for row in FAMILIES if "ForMaskedLM" in row.heads])
def test_tied_decoder(row, refs, tmp_path):
    """The masked-LM decoder weight is the word embeddings (loaded, built and saved: written once)."""
    for head in [h for h in ("ForMaskedLM", "ForPreTraining") if h in row.heads]:
        ours = row.our_class(head).from_pretrained(refs.folder(row, head))
        decoder = ours.get_output_embeddings()
        embeddings = getattr(ours, row.base_prefix).get_submodule(row.input_embeddings).weight
        assert decoder.weight is ours.get_input_embeddings().weight is embeddings
        assert decoder.weight.data_ptr() == embeddings.data_ptr()
        if row.mlm_bias is not None:
            assert decoder.bias is ours.get_parameter(row.mlm_bias)
        fresh = row.our_class(head)(ours.config)  # tied when built, too
        assert fresh.get_output_embeddings().weight is getattr(fresh, row.base_prefix).get_submodule(
            row.input_embeddings).weight

        ours.save_pretrained(tmp_path / head)
        saved = load_file(tmp_path / head / "model.safetensors")
        names = [n for n, p in ours.named_parameters(remove_duplicate=False) if p is embeddings]
        assert len(names) == 2 and sum(n in saved for n in names) == 1, (names, sorted(saved))


@by_head()
def test_save_round_trip(row, head, refs, tmp_path):
    """headway's save loads back identically in headway, and in transformers with equal outputs."""
    folder = refs.folder(row, head)
    ours = row.our_class(head).from_pretrained(folder)  # fresh: what it saves depends on nothing run before
    ours.save_pretrained(tmp_path)
    again = row.our_class(head).from_pretrained(tmp_path)
    first, second = ours.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert load_file(tmp_path / "model.safetensors").keys() == load_file(folder / "model.safetensors").keys()
    back, info = row.ref_class(head).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    inputs = row.inputs(head)
    with torch.no_grad():
        assert_outputs_close(back.eval()(**inputs), again(**inputs))


# -- gradients -------------------------------------------------------------------------------------------


@by_head(lambda row, head: head in row.gradient_heads)
def test_training_mode_gradients(row, head, refs):
    """With dropout off, gradients of the loss equal the reference's (tied decoder included)."""
    ref = refs.model(row, head, **row.no_dropout)  # the same weights as refs.folder(row, head)
    ours = row.our_class(head).from_pretrained(refs.folder(row, head), **row.no_dropout)
    ref.train()
    ours.train()
    inputs = row.inputs(head)
    ref(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    assert_same_gradients(ours, ref)


@by_family()
def test_gradient_checkpointing_gives_same_gradients(row, refs):
    """Recomputed activations: the gradients equal those without checkpointing, and the reference's."""
    head = "ForSequenceClassification"
    ref, folder = refs.model(row, head, **row.no_dropout).train(), refs.folder(row, head)
    inputs = row.inputs(head)
    ref(**inputs).loss.backward()
    grads = []
    for checkpointing in (False, True):
        model = row.our_class(head).from_pretrained(folder, **row.no_dropout).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing
        model(**inputs).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        assert_close(grads[1][name], grad, atol=1e-6, msg=name)
    assert_same_gradients(model, ref)


@by_head(lambda row, head: head in ("ForSequenceClassification", "ForMaskedLM"))
def test_eval_mode_gradients(row, head, refs):
    """``model(**inputs)`` in eval mode without no_grad (the packed path); its gradients equal the reference's."""
    ref, ours = refs.both(row, head)
    inputs = row.inputs(head)
    ref_loss, our_loss = ref(**inputs).loss, ours(**inputs).loss
    assert_close(our_loss, ref_loss, atol=1e-6)
    ref_loss.backward()
    our_loss.backward()
    assert_same_gradients(ours, ref)
    inputs.pop("labels")
    with torch.no_grad():  # after a backward, the eval-mode forward still gives the reference's logits
        assert_close(ours(**inputs).logits, ref(**inputs).logits, atol=ATOL)


# -- config ----------------------------------------------------------------------------------------------


@by_family()
def test_config_defaults_match_reference(row):
    ours, ref = getattr(headway, row.name + "Config")(), getattr(transformers, row.name + "Config")()
    assert ours.model_type == ref.model_type
    for name in row.config_fields:
        assert getattr(ours, name) == getattr(ref, name), name
