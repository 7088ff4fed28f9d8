"""Config values checked when a config is made or read (issue #11): a bad config.json fails with a
ValueError naming the field, before any model is built, and a model too large for the machine is refused
from its sizes before its layers are made."""

from __future__ import annotations

import json
import math

import pytest

import headway
from headway.modeling import estimated_parameter_count

TINY_BERT = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 37}
TINY_LLAMA = {**TINY_BERT, "bos_token_id": 1, "eos_token_id": 2}
TINY_GPT2 = {"vocab_size": 99, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64, "bos_token_id": 98,
             "eos_token_id": 98}
TINY_MODERNBERT = {**TINY_BERT, "num_hidden_layers": 3, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
                   "cls_token_id": 1, "sep_token_id": 2}
FAMILIES = {
    "bert": (headway.BertConfig, TINY_BERT),
    "llama": (headway.LlamaConfig, TINY_LLAMA),
    "gpt2": (headway.GPT2Config, TINY_GPT2),
    "modernbert": (headway.ModernBertConfig, TINY_MODERNBERT),
}

BAD = [
    # sizes: positive ints, bool and float refused
    ("bert", "vocab_size", 0, "vocab_size must be a positive int, got 0"),
    ("bert", "num_hidden_layers", True, "num_hidden_layers must be a positive int, got True"),
    ("bert", "hidden_size", 32.0, "hidden_size must be a positive int, got 32.0"),
    ("bert", "num_attention_heads", 0, "num_attention_heads must be a positive int, got 0"),
    ("bert", "intermediate_size", -1, "intermediate_size must be a positive int, got -1"),
    ("bert", "max_position_embeddings", "512", "max_position_embeddings must be a positive int, got '512'"),
    ("bert", "type_vocab_size", -2, "type_vocab_size must be an int >= 0, got -2"),
    ("llama", "num_attention_heads", 0, "num_attention_heads must be a positive int, got 0"),
    ("llama", "num_key_value_heads", 0, "num_key_value_heads must be a positive int, got 0"),
    ("llama", "head_dim", -8, "head_dim must be a positive int, got -8"),
    ("llama", "vocab_size", None, "vocab_size must be a positive int, got None"),
    ("gpt2", "n_head", 0, "n_head must be a positive int, got 0"),
    ("gpt2", "n_embd", False, "n_embd must be a positive int, got False"),
    ("gpt2", "n_layer", -3, "n_layer must be a positive int, got -3"),
    ("gpt2", "n_positions", 0, "n_positions must be a positive int, got 0"),
    ("gpt2", "n_inner", 0, "n_inner must be a positive int, got 0"),
    ("modernbert", "num_hidden_layers", 0, "num_hidden_layers must be a positive int, got 0"),
    ("modernbert", "global_attn_every_n_layers", 0, "global_attn_every_n_layers must be a positive int, got 0"),
    ("modernbert", "local_attention", 0, "local_attention .* must be an int >= 2, got 0"),
    # head counts dividing the hidden size
    ("bert", "num_attention_heads", 5, r"hidden_size \(32\) must be a multiple of num_attention_heads \(5\)"),
    ("llama", "num_key_value_heads", 3, r"num_attention_heads \(4\) must be a multiple of num_key_value_heads"),
    ("gpt2", "n_head", 5, r"n_embd \(32\) must be a multiple of n_head \(5\)"),
    ("modernbert", "num_attention_heads", 3, r"must be a multiple of num_attention_heads \(3\)"),
    # epsilons: positive and finite
    ("bert", "layer_norm_eps", 0, "layer_norm_eps must be a positive finite number, got 0"),
    ("bert", "layer_norm_eps", math.nan, "layer_norm_eps must be a positive finite number, got nan"),
    ("llama", "rms_norm_eps", -1e-6, "rms_norm_eps must be a positive finite number, got -1e-06"),
    ("llama", "rms_norm_eps", math.inf, "rms_norm_eps must be a positive finite number, got inf"),
    ("gpt2", "layer_norm_epsilon", 0.0, "layer_norm_epsilon must be a positive finite number, got 0.0"),
    ("modernbert", "norm_eps", "1e-5", "norm_eps must be a positive finite number, got '1e-5'"),
    # dropout probabilities in [0, 1]
    ("bert", "hidden_dropout_prob", 1.5, "hidden_dropout_prob must be a probability between 0 and 1, got 1.5"),
    ("bert", "attention_probs_dropout_prob", -0.1, "attention_probs_dropout_prob must be a probability"),
    ("bert", "classifier_dropout", math.nan, "classifier_dropout must be a probability between 0 and 1, got nan"),
    ("llama", "attention_dropout", 2, "attention_dropout must be a probability between 0 and 1, got 2"),
    ("gpt2", "resid_pdrop", 1.01, "resid_pdrop must be a probability between 0 and 1, got 1.01"),
    ("gpt2", "summary_first_dropout", "0.1", "summary_first_dropout must be a probability"),
    ("modernbert", "mlp_dropout", -1, "mlp_dropout must be a probability between 0 and 1, got -1"),
    # special token ids inside the vocabulary (or None)
    ("bert", "pad_token_id", 99, r"pad_token_id must be None or a token id from 0 to 98 \(vocab_size 99\), got 99"),
    ("llama", "pad_token_id", 500, r"pad_token_id must be None or a token id from 0 to 98 \(vocab_size 99\)"),
    ("llama", "eos_token_id", [2, -7], r"eos_token_id must be None or a token id from 0 to 98.*got \[2, -7\]"),
    ("llama", "bos_token_id", -5, "bos_token_id must be None or a token id from 0 to 98"),
    ("gpt2", "pad_token_id", 99, "pad_token_id must be None or a token id from 0 to 98"),
    ("gpt2", "eos_token_id", "50256", "eos_token_id must be None or a token id from 0 to 98"),
    ("modernbert", "sep_token_id", 1.0, "sep_token_id must be None or a token id from 0 to 98"),
    # labels
    ("bert", "num_labels", 0, "num_labels must be a positive int of at most 1048576, got 0"),
    ("bert", "id2label", ["NEG", "POS"], "id2label must be a dict of label id -> name, got list"),
    ("bert", "id2label", {"first": "NEG"}, "id2label keys must be ints .* got 'first'"),
    ("bert", "id2label", {"0": 7}, r"id2label values must be label names \(str\), got 7 for id '0'"),
    ("llama", "label2id", {"NEG": "zero"}, "label2id values must be ints, got 'zero' for label 'NEG'"),
    ("gpt2", "label2id", "NEG", "label2id must be a dict of label name -> id, got str"),
]


@pytest.mark.parametrize(("family", "field", "value", "message"), BAD, ids=[f"{b[0]}-{b[1]}-{b[2]!r}" for b in BAD])
def test_bad_value_named_at_construction_and_from_json(tmp_path, family, field, value, message):
    config_class, tiny = FAMILIES[family]
    with pytest.raises(ValueError, match=message):
        config_class(**{**tiny, field: value})
    data = {**tiny, "model_type": config_class.model_type, field: value}
    with pytest.raises(ValueError, match=message):
        config_class.from_dict(data)
    if isinstance(value, float) and not math.isfinite(value):
        return  # JSON has no NaN / Infinity (Python writes them, but the file is not standard JSON)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        headway.AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=message):  # fails on the config, before looking for weights
        headway.AutoModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_good_values_still_accepted(family):
    config_class, tiny = FAMILIES[family]
    config = config_class(**tiny, num_labels=3)
    assert config.num_labels == 3
    assert config_class(**{**tiny, "pad_token_id": None}).pad_token_id is None
    # -1 means "no token" in several Hub configs; the reference loads them too
    assert config_class(**{**tiny, "pad_token_id": -1}).pad_token_id == -1
    assert config_class.from_dict({**tiny, "id2label": {"0": "NEG", "1": "POS"}}).label2id == {"NEG": 0, "POS": 1}


def test_bos_eos_outside_the_vocabulary_only_warn(caplog):
    # as in the reference: a family's default (GPT-2's 50256) in a small test config is common
    config = headway.GPT2Config(**{**TINY_GPT2, "bos_token_id": 50256, "eos_token_id": [98, 50256]})
    assert config.eos_token_id == [98, 50256]
    assert "bos_token_id 50256 is outside the vocabulary (0 to 98 (vocab_size 99))" in caplog.text
    assert "eos_token_id [98, 50256] is outside the vocabulary" in caplog.text


def test_estimate_stays_under_the_true_count():
    for family, (config_class, tiny) in FAMILIES.items():
        config = config_class(**tiny)
        # the estimate counts an untied output embedding: compare with the model that has one
        auto = headway.AutoModelForCausalLM if family in ("llama", "gpt2") else headway.AutoModelForMaskedLM
        assert estimated_parameter_count(config) <= auto.from_config(config).num_parameters(), family
    bert = headway.BertConfig()  # bert-base: 109.5M parameters
    assert 0.95 * 109_482_240 < estimated_parameter_count(bert) <= 109_482_240 + 2 * 768


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_too_many_layers_refused_before_building(tmp_path, family):
    config_class, tiny = FAMILIES[family]
    layers = "n_layer" if family == "gpt2" else "num_hidden_layers"
    config = config_class(**{**tiny, layers: 10**7})  # returns: a config alone is cheap
    message = rf"asks for {layers}=10000000 layers; headway builds at most 4096 per stack"
    with pytest.raises(ValueError, match=message):
        headway.AutoModel.from_config(config)
    model_class = type(headway.AutoModel.from_config(config_class(**tiny)))
    with pytest.raises(ValueError, match=message):
        model_class(config)
    headway.AutoModel.from_config(config_class(**tiny)).save_pretrained(tmp_path)
    beyond = rf"asks for {layers}=10000000 layers, but the weights in model.safetensors of .* hold \d"
    with pytest.raises(ValueError, match=beyond):
        headway.AutoModel.from_pretrained(tmp_path, num_hidden_layers=10**7)
    data = json.loads((tmp_path / "config.json").read_text())
    data[layers] = 10**7
    data.pop("layer_types", None)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=beyond):
        headway.AutoModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_too_big_for_memory_names_what_makes_it_big(tmp_path, family):
    config_class, tiny = FAMILIES[family]
    inner = "n_inner" if family == "gpt2" else "intermediate_size"
    config = config_class(**{**tiny, inner: 10**12})
    message = rf"more than the .* GiB of memory this machine has; 100% of them are the layers \(.*{inner}=10"
    with pytest.raises(ValueError, match=message + "00000000000"):
        headway.AutoModel.from_config(config)


def test_deep_models_still_build_and_load(tmp_path):
    """200 layers (deeper than any published checkpoint) build; a checkpoint loads with up to 64 layers
    more than its weights hold (newly initialised, as the reference does), not 65."""
    deep = headway.BertConfig(**{**TINY_BERT, "hidden_size": 8, "num_attention_heads": 1,
                                 "num_hidden_layers": 200})
    assert len(headway.AutoModel.from_config(deep).encoder.layer) == 200
    headway.AutoModel.from_config(headway.BertConfig(**TINY_BERT)).save_pretrained(tmp_path)
    assert len(headway.AutoModel.from_pretrained(tmp_path, num_hidden_layers=66).encoder.layer) == 66
    with pytest.raises(ValueError, match="asks for num_hidden_layers=67 layers, but the weights .* hold 2"):
        headway.AutoModel.from_pretrained(tmp_path, num_hidden_layers=67)


def test_huge_num_labels_refused(tmp_path):
    with pytest.raises(ValueError, match="num_labels must be a positive int of at most 1048576, got 1000000000"):
        headway.BertConfig(**TINY_BERT, num_labels=10**9)
    headway.AutoModelForSequenceClassification.from_config(headway.BertConfig(**TINY_BERT)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="num_labels must be a positive int of at most 1048576"):
        headway.AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=10**9)
    with pytest.raises(ValueError, match="num_labels must be a positive int of at most 1048576"):
        headway.AutoConfig.from_pretrained(tmp_path, num_labels=10**9)
    wide = headway.BertConfig(**{**TINY_BERT, "hidden_size": 2**20, "num_attention_heads": 1}, num_labels=2**20)
    with pytest.raises(ValueError, match="num_labels=1048576"):  # 2**40 classifier weights do not fit
        headway.AutoModelForSequenceClassification.from_config(wide)
