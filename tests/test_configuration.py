"""Configs: field names and defaults, labels, overrides, unknown keys, save/load round trips."""

from __future__ import annotations

import json

import pytest
import transformers

import headway
from headway.configuration import PretrainedConfig


def test_minilm_config(minilm_path):
    config = headway.AutoConfig.from_pretrained(minilm_path)
    assert type(config).__name__ == "BertConfig"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 6, 12)
    assert config.num_labels == 2 and config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert config.gradient_checkpointing is False  # an unknown key, kept as an attribute


def test_defaults_equal_reference():
    ours, ref = headway.BertConfig(), transformers.BertConfig()
    for key, value in vars(ours).items():
        if hasattr(ref, key) and not key.startswith("_") and key not in ("transformers_version", "dtype"):
            assert getattr(ref, key) == value, key


def test_num_labels_override_and_labels():
    config = headway.BertConfig(num_labels=3)
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert config.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}
    config.num_labels = 2
    assert config.num_labels == 2 and len(config.label2id) == 2
    with pytest.raises(ValueError, match="num_labels must be a positive int"):
        config.num_labels = 0


def test_from_pretrained_overrides(tmp_path):
    headway.BertConfig(hidden_size=64, num_attention_heads=4).save_pretrained(tmp_path)
    config = headway.AutoConfig.from_pretrained(tmp_path, num_labels=3, hidden_dropout_prob=0.3, new_thing=7)
    assert config.num_labels == 3 and config.hidden_dropout_prob == 0.3 and config.new_thing == 7
    config, unused = headway.AutoConfig.from_pretrained(tmp_path, return_unused_kwargs=True, foo=1, num_labels=4)
    assert unused == {"foo": 1} and config.num_labels == 4


def test_id2label_keys_are_ints_after_json(tmp_path):
    labels = {"0": "NEGATIVE", "1": "POSITIVE"}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "id2label": labels,
                                                      "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}))
    config = headway.AutoConfig.from_pretrained(tmp_path)
    assert config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert config.label2id == {"NEGATIVE": 0, "POSITIVE": 1}
    assert config.num_labels == 2


def test_id2label_override_rebuilds_label2id(tmp_path):
    headway.BertConfig().save_pretrained(tmp_path)
    config = headway.AutoConfig.from_pretrained(tmp_path, id2label={0: "neg", 1: "neu", 2: "pos"})
    assert config.num_labels == 3 and config.label2id == {"neg": 0, "neu": 1, "pos": 2}


def test_unknown_keys_round_trip(tmp_path):
    data = {"model_type": "bert", "hidden_size": 48, "num_attention_heads": 4, "my_field": [1, 2],
            "nested": {"a": 1}, "torch_dtype": "float16", "problem_type": "regression"}
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = headway.AutoConfig.from_pretrained(tmp_path)
    assert config.dtype == "float16"  # the older spelling is read
    config.save_pretrained(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["my_field"] == [1, 2] and saved["nested"] == {"a": 1} and saved["hidden_size"] == 48
    assert saved["problem_type"] == "regression" and saved["model_type"] == "bert"
    again = headway.AutoConfig.from_pretrained(tmp_path / "out")
    assert again == config


def test_reference_reads_our_config_and_we_read_its(tmp_path):
    ours = headway.BertConfig(hidden_size=48, num_attention_heads=4, num_labels=3, foo="bar")
    ours.save_pretrained(tmp_path / "ours")
    ref = transformers.AutoConfig.from_pretrained(tmp_path / "ours")
    assert (ref.hidden_size, ref.num_labels, ref.foo, ref.id2label[2]) == (48, 3, "bar", "LABEL_2")
    ref.save_pretrained(tmp_path / "ref")
    back = headway.AutoConfig.from_pretrained(tmp_path / "ref")
    assert (back.hidden_size, back.num_labels, back.foo) == (48, 3, "bar")


def test_from_config_after_changing_fields(minilm_path):
    config = headway.AutoConfig.from_pretrained(minilm_path)
    config.num_hidden_layers = 2
    model = headway.AutoModel.from_config(config)
    assert len(model.encoder.layer) == 2 and model.training


def test_bad_configs(tmp_path):
    with pytest.raises(ValueError, match="problem_type must be one of"):
        headway.BertConfig(problem_type="ranking")
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        headway.BertConfig(hidden_size=30, num_attention_heads=4)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        headway.AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt-17"}))
    with pytest.raises(ValueError, match=r"Unsupported model_type 'gpt-17'.*bert.*distilbert"):
        headway.AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="has no 'model_type'"):
        headway.AutoConfig.from_pretrained(tmp_path)


def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        headway.AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        headway.AutoModel.from_pretrained(tmp_path)


def test_no_config_field_loads_code(tmp_path):
    """auto_map and friends are kept as data and never acted on."""
    data = {"model_type": "bert", "hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1,
            "intermediate_size": 8, "auto_map": {"AutoModel": "evil.EvilModel"}, "trust_remote_code": True,
            "architectures": ["EvilModel"]}
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = headway.AutoConfig.from_pretrained(tmp_path)
    model = headway.AutoModel.from_config(config)
    assert type(model).__name__ == "BertModel"


def test_base_config_is_a_dataclass():
    assert PretrainedConfig().num_labels == 2
    assert PretrainedConfig(return_dict=False).use_return_dict is False
