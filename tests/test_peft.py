"""peft's LoRA on headway decoders: train with headway's Trainer, save the adapter, reload it on a headway
base, merge, and get the logits of the reference model with the same adapter merged.

Both families are adapted verbatim. Llama's projections are ``nn.Linear``; so is GPT-2's ``Conv1D`` here
(its weight is an (out, in) view of the Hub's (in, out) tensor), so the LoraConfig a GPT-2 user writes for
the reference, ``fan_in_fan_out=True`` (transformers' Conv1D), works as is: peft warns that the target is an
``nn.Linear`` and sets it to False, as it sets False to True for the reference's Conv1D. Adapters are the
same tensors either way, and load across the two libraries.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import datasets
import pytest
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model

import headway

VOCAB = 128


def _rows(n: int = 8, length: int = 12, seed: int = 0) -> list[dict[str, list[int]]]:
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(0, VOCAB, (length,), generator=generator).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * length, "labels": list(ids)})
    return rows


def _trainer(model, tmp_path, **overrides) -> headway.Trainer:
    kwargs = {
        "per_device_train_batch_size": 4,
        "max_steps": 4,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "save_strategy": "no",
        "seed": 0,
    }
    kwargs.update(overrides)
    return headway.Trainer(
        model, headway.TrainingArguments(str(tmp_path / "out"), **kwargs), train_dataset=_rows()
    )


def _gpt2_lora_config(**kwargs) -> LoraConfig:
    """The LoraConfig of peft's GPT-2 examples (written for transformers' Conv1D)."""
    return LoraConfig(fan_in_fan_out=True, **kwargs)


FAMILIES = {
    "llama": (
        lambda: transformers.LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
        ),
        "LlamaForCausalLM",
        lambda **kw: LoraConfig(**kw),
        ["q_proj", "v_proj"],
    ),
    "gpt2": (
        lambda: transformers.GPT2Config(
            vocab_size=VOCAB, n_layer=2, n_embd=32, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0
        ),
        "GPT2LMHeadModel",
        _gpt2_lora_config,
        ["c_attn", "c_proj"],
    ),
}


def _base(name: str, folder: Path):
    """A tiny random reference model of family ``name`` saved in ``folder``; its headway class and LoRA."""
    make_config, cls, lora_config, targets = FAMILIES[name]
    torch.manual_seed(0)
    getattr(transformers, cls)(make_config()).save_pretrained(folder)
    return folder, cls, lora_config, targets


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    return _base(request.param, tmp_path_factory.mktemp(f"{request.param}_base"))


def test_lora_train_save_reload_merge_equals_reference(family, tmp_path):
    folder, cls, lora_config, targets = family
    model = getattr(headway, cls).from_pretrained(folder)
    lora = get_peft_model(model, lora_config(r=4, target_modules=targets, task_type="CAUSAL_LM"))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)

    trainer = _trainer(lora, tmp_path)
    assert (
        trainer.model_accepts_loss_kwargs
        and trainer._loss_shifts_labels
        and trainer.label_names == ["labels"]
    )
    trainer.train()
    assert len([h for h in trainer.state.log_history if "loss" in h]) == 4
    assert any(p.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)  # B starts at zero

    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    # the adapter names its base model, read from the model instance as peft does
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(folder)

    ids = torch.tensor([r["input_ids"] for r in _rows(seed=1)])
    base = getattr(headway, cls).from_pretrained(folder).eval()
    with torch.no_grad():
        base_logits = base(ids).logits
    reloaded = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        adapted_logits = reloaded(input_ids=ids).logits
        greedy = reloaded.generate(input_ids=ids[:1, :4], max_new_tokens=5, do_sample=False)
    merged = reloaded.merge_and_unload()
    assert type(merged) is getattr(headway, cls)

    reference = PeftModel.from_pretrained(getattr(transformers, cls).from_pretrained(folder), adapter)
    reference = reference.merge_and_unload().eval()
    with torch.no_grad():
        merged_logits, ref_logits = merged(ids).logits, reference(ids).logits
        ref_greedy = reference.generate(
            input_ids=ids[:1, :4], max_new_tokens=5, do_sample=False, pad_token_id=0
        )
    print(
        f"\n{cls}: max |merged - reference merged| = {(merged_logits - ref_logits).abs().max():.3g}, "
        f"adapter moved the logits by {(merged_logits - base_logits).abs().max():.3g}"
    )
    torch.testing.assert_close(merged_logits, ref_logits, atol=1e-6, rtol=0)
    torch.testing.assert_close(adapted_logits, merged_logits, atol=1e-5, rtol=0)
    assert (merged_logits - base_logits).abs().max() > 1e-3
    assert greedy.tolist() == ref_greedy.tolist()


@pytest.mark.parametrize("fan_in_fan_out", [True, False])
def test_gpt2_lora_verbatim_both_ways(fan_in_fan_out, tmp_path):
    """``get_peft_model(gpt2, LoraConfig(target_modules=["c_attn"], fan_in_fan_out=...))`` with no custom
    module registered: peft sets the flag each library needs (False here: an ``nn.Linear``; True there: a
    Conv1D) and warns when it changes it. An adapter made on the reference's GPT-2 loads on headway's and
    the reverse; adapted and merged logits are the reference's."""
    folder = _base("gpt2", tmp_path / "base")[0]
    ids = torch.tensor([r["input_ids"] for r in _rows(n=3, seed=2)])
    with torch.no_grad():
        base_logits = headway.GPT2LMHeadModel.from_pretrained(folder)(ids).logits

    def lora(model):
        torch.manual_seed(1)  # init_lora_weights=False: B random too, so the adapter moves the logits
        config = LoraConfig(
            r=4, target_modules=["c_attn"], fan_in_fan_out=fan_in_fan_out, init_lora_weights=False
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adapted = get_peft_model(model, config)
        return adapted.eval(), [str(w.message) for w in caught if "fan_in_fan_out" in str(w.message)]

    ours, our_warnings = lora(headway.GPT2LMHeadModel.from_pretrained(folder))
    ref, ref_warnings = lora(transformers.GPT2LMHeadModel.from_pretrained(folder))
    assert bool(our_warnings) is fan_in_fan_out and bool(ref_warnings) is not fan_in_fan_out
    assert ours.peft_config["default"].fan_in_fan_out is False and ref.peft_config["default"].fan_in_fan_out
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    lora_keys = sorted(k for k in ref_state if "lora_" in k)
    assert lora_keys and sorted(k for k in ours_state if "lora_" in k) == lora_keys
    for key in lora_keys:  # the same shapes and, from the same seed, the same values
        assert torch.equal(ours_state[key], ref_state[key]), key

    for source, target_cls in ((ours, transformers.GPT2LMHeadModel), (ref, headway.GPT2LMHeadModel)):
        adapter = tmp_path / f"adapter_{type(source.base_model.model).__module__.split('.')[0]}"
        source.save_pretrained(adapter)
        loaded = PeftModel.from_pretrained(target_cls.from_pretrained(folder), adapter).eval()
        with torch.no_grad():
            expected, got = source(input_ids=ids).logits, loaded(input_ids=ids).logits
            assert (got - base_logits).abs().max() > 1e-3  # the adapter is in use
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)

    with torch.no_grad():
        adapted = ours(input_ids=ids).logits
        torch.testing.assert_close(adapted, ref(input_ids=ids).logits, atol=1e-6, rtol=0)
        merged, ref_merged = ours.merge_and_unload(), ref.merge_and_unload()
        assert merged.transformer.h[0].attn.c_attn.weight.T.is_contiguous()  # merged in place: still a view
        merged_logits = merged(ids).logits
        assert torch.equal(merged_logits, ref_merged(ids).logits)  # the same sums, the same products
        torch.testing.assert_close(merged_logits, adapted, atol=1e-5, rtol=0)


def test_lora_with_gradient_checkpointing_and_pruned_columns(tmp_path, family):
    """Gradient checkpointing on frozen layers with trainable adapters inside, after
    ``enable_input_require_grads``; the Trainer keeps the base model's columns of a ``datasets.Dataset``."""
    folder, cls, lora_config, targets = family
    model = getattr(headway, cls).from_pretrained(folder)
    model.enable_input_require_grads()
    lora = get_peft_model(model, lora_config(r=4, target_modules=targets, task_type="CAUSAL_LM"))
    data = datasets.Dataset.from_list([{**r, "text": "unused"} for r in _rows()])
    trainer = headway.Trainer(
        lora,
        headway.TrainingArguments(
            str(tmp_path / "out"),
            per_device_train_batch_size=4,
            max_steps=2,
            learning_rate=1e-2,
            gradient_checkpointing=True,
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            save_strategy="no",
        ),
        train_dataset=data,
    )
    trainer.train()
    assert model.is_gradient_checkpointing
    assert sorted(trainer._remove_unused_columns(data, "training").column_names) == [
        "attention_mask",
        "input_ids",
        "labels",
    ]
    assert any(p.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)
    embeddings = model.get_input_embeddings()
    assert embeddings(torch.tensor([[1]])).requires_grad
    model.disable_input_require_grads()
    assert not embeddings(torch.tensor([[1]])).requires_grad


def test_lora_checkpoint_resume(tmp_path):
    """A peft model's Trainer checkpoints hold the adapter; resuming loads it back and ends where an
    uninterrupted run ends."""
    folder, cls, lora_config, targets = _base("llama", tmp_path)

    def run(**overrides):
        torch.manual_seed(0)
        model = get_peft_model(
            getattr(headway, cls).from_pretrained(folder),
            lora_config(r=4, target_modules=targets, task_type="CAUSAL_LM"),
        )
        trainer = _trainer(model, tmp_path, **overrides)
        return model, trainer

    straight, trainer = run(save_strategy="steps", save_steps=2)
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file()
    resumed, trainer = run()
    trainer.train(resume_from_checkpoint=str(checkpoint))
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        if "lora_" in name:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
