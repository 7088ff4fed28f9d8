"""GenerationConfig: defaults, set versus default, generation_config.json round trips with the reference,
from_model_config, update, and every validate() error."""

from __future__ import annotations

import json
import logging

import pytest
import transformers

from headway.generation.config import GenerationConfig


def test_defaults_are_the_references_global_defaults():
    config = GenerationConfig()
    for key, value in transformers.GenerationConfig._get_default_generation_params().items():
        assert getattr(config, key) == value, key
    assert config.max_new_tokens is None and config.eos_token_id is None and config.min_p is None
    assert config.to_diff_dict() == {}


def test_set_versus_default():
    config = GenerationConfig(top_k=50, temperature=0.5, do_sample=True)
    assert config.is_set("top_k") and not config.is_set("top_p")
    assert config.to_diff_dict() == {"do_sample": True, "temperature": 0.5, "top_k": 50}
    config.top_k = None  # unsets: the default shows through
    assert config.top_k == 50 and not config.is_set("top_k")
    assert "top_k" in config.to_dict() and "top_k" not in config.to_diff_dict()


def test_unknown_keys_are_kept_and_written_back(tmp_path):
    config = GenerationConfig(max_new_tokens=8, my_flag={"a": 1})
    assert config.my_flag == {"a": 1}
    config.save_pretrained(tmp_path)
    assert GenerationConfig.from_pretrained(tmp_path).my_flag == {"a": 1}


REFERENCE_CONFIGS = [
    {"max_new_tokens": 16, "do_sample": True, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [2, 7]},
    {
        "num_beams": 4,
        "length_penalty": 0.8,
        "early_stopping": True,
        "no_repeat_ngram_size": 3,
        "bos_token_id": 1,
    },
    {"max_length": 20, "repetition_penalty": 1.1, "bad_words_ids": [[4], [5, 6]], "pad_token_id": 0},
    {"stop_strings": ["\n\n", "END"], "min_new_tokens": 3, "suppress_tokens": [1, 2], "custom_key": "x"},
    {"exponential_decay_length_penalty": (5, 1.1), "forced_eos_token_id": 2, "max_time": 3.5},
]


@pytest.mark.parametrize("settings", REFERENCE_CONFIGS)
def test_round_trip_with_the_reference(settings, tmp_path):
    reference = transformers.GenerationConfig(**settings)
    reference.save_pretrained(tmp_path / "ref")
    ours = GenerationConfig.from_pretrained(tmp_path / "ref")
    for key, value in settings.items():
        expected = list(value) if isinstance(value, tuple) else value
        got = getattr(ours, key)
        assert (list(got) if isinstance(got, tuple) else got) == expected, key
    written = json.loads((tmp_path / "ref" / "generation_config.json").read_text())
    written.pop("transformers_version")
    assert ours.to_diff_dict() == written  # nothing lost, nothing added

    ours.save_pretrained(tmp_path / "ours")
    back = transformers.GenerationConfig.from_pretrained(tmp_path / "ours")
    version = {"transformers_version": None}
    reread = transformers.GenerationConfig.from_pretrained(tmp_path / "ref")  # tuples read back as lists
    assert back.to_diff_dict() | version == reread.to_diff_dict() | version


def test_round_trip_of_a_from_model_config_file(tmp_path):
    reference = transformers.GenerationConfig.from_model_config(transformers.GPT2Config())
    reference.save_pretrained(tmp_path)
    ours = GenerationConfig.from_pretrained(tmp_path)
    assert ours.eos_token_id == 50256 and ours.bos_token_id == 50256
    ours.save_pretrained(tmp_path / "again")
    data = json.loads((tmp_path / "again" / "generation_config.json").read_text())
    assert data["_from_model_config"] is True and "transformers_version" not in data


def test_from_model_config_takes_the_special_tokens():
    from headway.models.gpt2 import GPT2Config

    model_config = GPT2Config(bos_token_id=5, eos_token_id=6, pad_token_id=7)
    ours = GenerationConfig.from_model_config(model_config)
    theirs = transformers.GenerationConfig.from_model_config(
        transformers.GPT2Config(bos_token_id=5, eos_token_id=6, pad_token_id=7)
    )
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "use_cache"):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert GenerationConfig.from_model_config({"eos_token_id": [1, 2]}).eos_token_id == [1, 2]


def test_from_pretrained_overrides_and_unused_kwargs(tmp_path):
    GenerationConfig(top_k=7).save_pretrained(tmp_path)
    config, unused = GenerationConfig.from_pretrained(tmp_path, top_k=3, foo=1, return_unused_kwargs=True)
    assert config.top_k == 3 and unused == {"foo": 1}
    GenerationConfig(top_k=9).save_pretrained(tmp_path, config_file_name="other.json")
    assert GenerationConfig.from_pretrained(tmp_path, "other.json").top_k == 9


def test_from_pretrained_without_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="generation_config.json"):
        GenerationConfig.from_pretrained(tmp_path)


def test_save_is_atomic_and_refuses_a_file(tmp_path):
    GenerationConfig(max_new_tokens=4).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generation_config.json"]
    with pytest.raises(ValueError, match="is a file"):
        GenerationConfig().save_pretrained(tmp_path / "generation_config.json")


def test_update_returns_unused_and_defaults_only_fills_unset():
    config = GenerationConfig(temperature=0.3, do_sample=True)
    assert config.update(top_k=5, nope=1) == {"nope": 1}
    assert config.top_k == 5
    config.update(temperature=0.9, top_p=0.5, defaults_only=True)
    assert config.temperature == 0.3 and config.top_p == 0.5
    config.update(extra=2, allow_custom_entries=True)
    assert config.extra == 2


def test_equality_and_json_string():
    assert GenerationConfig(top_k=3) == GenerationConfig(top_k=3)
    assert GenerationConfig(top_k=3) != GenerationConfig(top_k=4)
    assert json.loads(GenerationConfig(top_k=3).to_json_string()) == {"top_k": 3}
    assert json.loads(GenerationConfig().to_json_string(use_diff=False))["max_length"] == 20


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive int"),
        ({"do_sample": True, "temperature": 0.0}, "temperature must be a positive float"),
        ({"do_sample": True, "temperature": -1.0}, "temperature must be a positive float"),
        ({"do_sample": True, "top_p": 0.0}, r"top_p must be a float in \(0, 1\]"),
        ({"do_sample": True, "top_p": 1.5}, r"top_p must be a float in \(0, 1\]"),
        ({"do_sample": True, "top_k": -1}, "top_k must be a non-negative int"),
        ({"do_sample": True, "min_p": 1.5}, r"min_p must be a float in \[0, 1\]"),
        ({"do_sample": True, "typical_p": 0.0}, r"typical_p must be a float in \(0, 1\]"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be a positive float"),
        (
            {"num_beams": 2, "num_return_sequences": 3},
            r"num_return_sequences \(3\) must be at most num_beams \(2\)",
        ),
        ({"num_return_sequences": 2}, "needs sampling"),
        ({"num_beams": 0}, "num_beams must be at least 1"),
        ({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size must be a non-negative int"),
        ({"length_penalty": "long"}, "length_penalty must be a float"),
        ({"exponential_decay_length_penalty": (-1, 1.0)}, "exponential_decay_length_penalty must be"),
        ({"early_stopping": "sometimes"}, "early_stopping must be True, False or 'never'"),
        ({"bad_words_ids": [[]]}, "bad_words_ids must be a non-empty list"),
        ({"min_new_tokens": -2}, "min_new_tokens must be a non-negative int"),
        (
            {"suppress_tokens": [3], "forced_eos_token_id": 3},
            "forced_eos_token_id .* is also in suppress_tokens",
        ),
        ({"streamer": object()}, "'streamer' is an argument of generate"),
    ],
)
def test_validate_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**settings)
    config = GenerationConfig()
    with pytest.raises(ValueError, match=message):  # the same check on update
        config.update(**settings, allow_custom_entries=True)


def test_flags_without_effect_warn_and_values_unused_by_greedy_do_not_raise(caplog):
    with caplog.at_level(logging.WARNING, logger="headway.generation.config"):
        config = GenerationConfig(temperature=0.0, top_p=2.0, length_penalty=2.0)  # greedy: unused values
    assert "temperature=0.0 is only used when sampling" in caplog.text
    assert "length_penalty=2.0 is only used by beam search" in caplog.text
    with pytest.raises(ValueError, match="no effect"):
        config.validate(strict=True)
    checkpoint = GenerationConfig(do_sample=True, temperature=0.6)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="headway.generation.config"):
        checkpoint.update(do_sample=False)  # the caller picks greedy over a sampling checkpoint: no noise
    assert caplog.text == ""
