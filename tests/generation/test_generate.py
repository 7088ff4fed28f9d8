"""generate() on a tiny headway GPT-2 (no reference needed): the errors for bad input, the unset-pad
warning, streaming, settings layering, generation_config.json loading and saving, max_time, and the
output classes."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from headway.generation import generate as gen
from headway.generation.config import GenerationConfig
from headway.models.gpt2 import GPT2Config, GPT2LMHeadModel
from headway.outputs import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput

VOCAB, EOS, POSITIONS = 50, 3, 32


@pytest.fixture(scope="module")
def model() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=POSITIONS,
        n_embd=16,
        n_layer=2,
        n_head=2,
        bos_token_id=2,
        eos_token_id=EOS,
    )
    return GPT2LMHeadModel(config).eval()


def prompt(batch: int = 1, length: int = 5) -> torch.Tensor:
    return torch.arange(4, 4 + batch * length).view(batch, length) % VOCAB


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inputs", "kwargs", "error", "match"),
    [
        (torch.zeros(1, 0, dtype=torch.long), {}, ValueError, "input_ids is empty"),
        (torch.zeros(1, POSITIONS + 1, dtype=torch.long), {}, ValueError, "more than the 32"),
        (prompt(), {"max_new_tokens": 0}, ValueError, "max_new_tokens"),
        (prompt(), {"max_new_tokens": -3}, ValueError, "max_new_tokens"),
        (prompt(), {"do_sample": True, "temperature": 0.0}, ValueError, "temperature"),
        (prompt(), {"do_sample": True, "temperature": -1.0}, ValueError, "temperature"),
        (prompt(), {"do_sample": True, "top_p": 0.0}, ValueError, "top_p"),
        (prompt(), {"do_sample": True, "top_p": 1.5}, ValueError, "top_p"),
        (prompt(), {"num_beams": 2, "num_return_sequences": 3}, ValueError, "num_return_sequences"),
        (prompt(), {"num_return_sequences": 2}, ValueError, "num_return_sequences"),
        (prompt()[0], {}, ValueError, r"shape \(batch, seq_len\)"),
        (prompt().float(), {}, TypeError, "integer token ids"),
        ([[4, 5, 6]], {}, TypeError, "torch.Tensor"),
        (prompt(), {"max_new_tokenz": 4}, ValueError, "max_new_tokenz"),
        (prompt(), {"stop_strings": ["x"]}, ValueError, "tokenizer"),
        (prompt(), {"max_length": 5}, ValueError, "max_length"),
        (prompt(), {"attention_mask": torch.ones(1, 4)}, ValueError, "attention_mask"),
        (prompt(), {"num_beam_groups": 2, "num_beams": 2}, ValueError, "group beam search"),
    ],
)
def test_bad_input_is_named(model, inputs, kwargs, error, match):
    with pytest.raises(error, match=match):
        model.generate(inputs, **kwargs)


def test_prompt_given_twice(model):
    with pytest.raises(ValueError, match="not both"):
        model.generate(prompt(), input_ids=prompt())


def test_streamer_with_beams_is_refused(model):
    with pytest.raises(ValueError, match="streamer cannot be used with beam search"):
        model.generate(prompt(), num_beams=2, streamer=Recorder())


def test_none_valued_extras_are_ignored(model):
    out = model.generate(prompt(), max_new_tokens=2, synced_gpus=None, assistant_model=None)
    assert out.shape[1] <= 5 + 2


# -- special tokens -------------------------------------------------------------------------------------
def test_unset_pad_warns_once_and_pads_with_eos(model, caplog):
    gen._warned.clear()
    with caplog.at_level(logging.WARNING, logger="headway.generation.generate"):
        model.generate(prompt(2), max_new_tokens=3)
        model.generate(prompt(2), max_new_tokens=3)
    warnings = [r for r in caplog.records if "pad_token_id is not set" in r.getMessage()]
    assert len(warnings) == 1
    assert f"eos_token_id {EOS}" in warnings[0].getMessage()


def test_no_warning_when_pad_is_set(model, caplog):
    gen._warned.clear()
    with caplog.at_level(logging.WARNING, logger="headway.generation.generate"):
        model.generate(prompt(), max_new_tokens=2, pad_token_id=0)
    assert not [r for r in caplog.records if "pad_token_id" in r.getMessage()]


def test_bos_starts_a_missing_prompt(model):
    out = model.generate(max_new_tokens=3, eos_token_id=None)
    assert out.shape == (1, 4)
    assert out[0, 0].item() == 2


# -- settings -------------------------------------------------------------------------------------------
def test_keywords_override_for_one_call_only(model):
    before = model.generation_config.to_json_string()
    out = model.generate(prompt(), max_new_tokens=4, eos_token_id=None, top_k=3)
    assert out.shape == (1, 9)
    assert model.generation_config.to_json_string() == before


def test_given_config_takes_unset_fields_from_the_model(model):
    config = GenerationConfig(max_new_tokens=6)
    settings, _ = model._settings(config, {})
    assert settings.max_new_tokens == 6
    assert settings.eos_token_id == EOS  # from the model's generation_config
    assert not config.is_set("eos_token_id")  # the caller's object is untouched


def test_generation_config_must_be_a_generation_config(model):
    with pytest.raises(TypeError, match="GenerationConfig"):
        model.generate(prompt(), generation_config={"max_new_tokens": 2})


def test_generation_config_from_model_config(model):
    assert isinstance(model.generation_config, GenerationConfig)
    assert model.generation_config.eos_token_id == EOS
    assert model.generation_config.bos_token_id == 2


def test_generation_config_saved_and_loaded(model, tmp_path):
    torch.manual_seed(0)
    other = GPT2LMHeadModel(model.config)
    other.generation_config = GenerationConfig(max_new_tokens=3, eos_token_id=None, pad_token_id=0)
    other.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 3
    loaded = GPT2LMHeadModel.from_pretrained(tmp_path)
    assert loaded.generation_config.max_new_tokens == 3
    assert loaded.generate(prompt()).shape == (1, 5 + 3)


def test_checkpoint_without_generation_config(model, tmp_path):
    model.save_pretrained(tmp_path)
    (tmp_path / "generation_config.json").unlink()
    loaded = GPT2LMHeadModel.from_pretrained(tmp_path)
    assert loaded.generation_config.eos_token_id == EOS


def test_models_that_cannot_generate_write_no_generation_config(tmp_path):
    from headway.models.gpt2 import GPT2Model

    bare = GPT2Model(GPT2Config(vocab_size=VOCAB, n_positions=POSITIONS, n_embd=16, n_layer=1, n_head=2))
    assert not bare.can_generate()
    bare.save_pretrained(tmp_path)
    assert not (tmp_path / "generation_config.json").exists()


# -- streaming, time, outputs ---------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.puts: list[torch.Tensor] = []
        self.ended = 0

    def put(self, value: torch.Tensor) -> None:
        self.puts.append(value.clone())

    def end(self) -> None:
        self.ended += 1


def test_streamer_gets_prompt_then_each_token_then_end(model):
    recorder = Recorder()
    out = model.generate(prompt(), max_new_tokens=6, eos_token_id=None, streamer=recorder)
    assert torch.equal(recorder.puts[0], prompt())
    assert len(recorder.puts) == 1 + 6
    assert torch.equal(torch.cat(recorder.puts[1:]), out[0, 5:])
    assert recorder.ended == 1


def test_max_time_stops_after_the_first_token(model):
    out = model.generate(prompt(), max_new_tokens=20, eos_token_id=None, max_time=1e-9)
    assert out.shape == (1, 6)


def test_return_dict_greedy(model):
    out = model.generate(
        prompt(2), max_new_tokens=4, eos_token_id=None, return_dict_in_generate=True, output_scores=True
    )
    assert isinstance(out, GenerateDecoderOnlyOutput)
    assert out.sequences.shape == (2, 9)
    assert len(out.scores) == 4 and out.scores[0].shape == (2, VOCAB)
    assert out.logits is None
    assert out.past_key_values.get_seq_length() == 8  # the last token is never run
    assert torch.equal(out.sequences[:, 5:], torch.stack([s.argmax(-1) for s in out.scores], dim=1))


def test_return_dict_beams(model):
    out = model.generate(
        prompt(2),
        max_new_tokens=4,
        eos_token_id=None,
        num_beams=3,
        num_return_sequences=2,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert isinstance(out, GenerateBeamDecoderOnlyOutput)
    assert out.sequences.shape == (4, 9)
    assert out.sequences_scores.shape == (4,)
    assert out.beam_indices.shape == (4, 4)
    assert (out.sequences_scores[0::2] >= out.sequences_scores[1::2]).all()  # best first


def test_sampling_is_reproducible_under_a_seed(model):
    torch.manual_seed(4)
    first = model.generate(prompt(2), max_new_tokens=8, do_sample=True, eos_token_id=None)
    torch.manual_seed(4)
    second = model.generate(prompt(2), max_new_tokens=8, do_sample=True, eos_token_id=None)
    assert torch.equal(first, second)


def test_greedy_on_an_eval_model_needs_no_grad(model):
    out = model.generate(prompt(), max_new_tokens=2, eos_token_id=None, return_dict_in_generate=True)
    assert not out.sequences.requires_grad


def test_peft_lora_model_generates_through_the_hook():
    """peft reads ``prepare_inputs_for_generation`` when it wraps a model and swaps it during generate;
    a fresh LoRA adapter (B = 0) changes nothing."""
    import peft

    from headway.models.llama import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=POSITIONS,
        eos_token_id=EOS,
    )
    base = LlamaForCausalLM(config).eval()
    expected = base.generate(prompt(), max_new_tokens=5, eos_token_id=None)
    lora = peft.LoraConfig(task_type="CAUSAL_LM", target_modules=["q_proj", "v_proj"], r=2)
    wrapped = peft.get_peft_model(base, lora)
    assert torch.equal(wrapped.generate(input_ids=prompt(), max_new_tokens=5, eos_token_id=None), expected)
