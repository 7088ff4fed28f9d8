"""Fuzz targets shared by the hypothesis suites (tests/fuzz/) and the long campaign (tools/fuzz_campaign.py).

A target draws one case with a :class:`Chooser` (backed by ``random.Random`` in the campaign, by hypothesis'
``data.draw`` in the tests, so hypothesis can shrink a failure) and runs it against headway. The outcome is:

- ``ok``: the call succeeded and the result passed the target's sanity checks;
- ``silent``: the call succeeded with a wrong answer (NaN, a wrong shape or size, a skipped step);
- ``clear``: a ValueError, TypeError or FileNotFoundError (plain, or one of headway's own subclasses) whose
  message names the file or argument at fault (one of the case's ``names``);
- ``unclear``: any other exception (an internal IndexError, a bare library error, a RecursionError...),
  or a clear type whose message names nothing of the case;
- ``blow-up``: MemoryError.

Crashes (the process dies) and hangs (no answer in time) can only be seen from outside: the campaign runs
cases in child processes for that.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.fuzz.env import FAMILIES, MAX_POSITIONS, VOCAB_SIZE, Env

CLEAR_TYPES = (ValueError, TypeError, FileNotFoundError)
# Library subclasses of the clear types that say nothing useful by themselves.
BARE_SUBCLASSES = (UnicodeError, json.JSONDecodeError)


class Chooser:
    """The choices a target makes: from a ``random.Random`` or from hypothesis (``data.draw``)."""

    def __init__(self, source: random.Random | Any) -> None:
        self.source = source
        self.hypothesis = not isinstance(source, random.Random)

    def choice(self, options: Sequence[Any]) -> Any:
        if self.hypothesis:
            from hypothesis import strategies as st

            return options[self.source.draw(st.integers(0, len(options) - 1))]
        return self.source.choice(options)

    def integer(self, low: int, high: int) -> int:
        if self.hypothesis:
            from hypothesis import strategies as st

            return self.source.draw(st.integers(low, high))
        return self.source.randint(low, high)

    def chance(self, p: float) -> bool:
        return self.integer(0, 999) < p * 1000

    def text(self, max_len: int = 12) -> str:
        alphabet = "the cat sat on a mat hello world ÉéЖ東京🤖\u0000\t\n [CLS][SEP][MASK]##?.!"
        return "".join(self.choice(alphabet) for _ in range(self.integer(0, max_len)))


class Silent(AssertionError):
    """A call that succeeded with a wrong answer."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Silent(what)


@dataclass
class Outcome:
    status: str  # ok, silent, clear, unclear, blow-up
    detail: str = ""


@dataclass
class Case:
    """What a target is about to run: the names a clear error about it would mention."""

    names: list[str] = field(default_factory=list)
    description: list[str] = field(default_factory=list)

    def note(self, *names: str, say: str = "") -> None:
        self.names.extend(n for n in names if n)
        if say:
            self.description.append(say)


def classify(error: BaseException, names: Sequence[str]) -> Outcome:
    text = f"{type(error).__module__}.{type(error).__name__}: {error}"
    text = text if len(text) <= 600 else f"{text[:300]} … {text[-300:]}"
    if isinstance(error, Silent):
        return Outcome("silent", str(error)[:400])
    if isinstance(error, MemoryError) or "DefaultCPUAllocator: can't allocate memory" in str(error):
        return Outcome("blow-up", text)
    own = type(error).__module__.startswith("headway") or type(error) in CLEAR_TYPES
    if isinstance(error, CLEAR_TYPES) and own and not isinstance(error, BARE_SUBCLASSES):
        message = str(error).lower()
        if any(name.lower() in message for name in names):
            return Outcome("clear", text)
        return Outcome("unclear", f"names none of {list(names)[:6]}: {text}")
    return Outcome("unclear", text)


# -- values and mutations ---------------------------------------------------------------------------------
# "Nasty" values for a field. The campaign adds the mid-sized numbers that only a process limit contains.
# fmt: off
NASTY: list[Any] = [None, True, False, 0, 1, -1, 2, 3, 7, 2**31, 2**63, 10**9, -(10**9), 10**30, 0.5, -0.5, 1e-300,
                    1e300, float("nan"), float("inf"), "", "x", "bert", "../../etc/passwd", [], [1, 2], {}, {"a": 1},
                    "\u0000", "é" * 300]
CAMPAIGN_EXTRA: list[Any] = [10**4, 10**5, 10**6, 10**7, 2**20, 4097]
# fmt: on


def nasty(c: Chooser, extra: bool = False) -> Any:
    return c.choice(NASTY + (CAMPAIGN_EXTRA if extra else []))


def _paths(doc: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every path to a value inside a JSON document (bounded)."""
    found = [prefix] if prefix else []
    if depth > 6:
        return found
    if isinstance(doc, dict):
        for key, value in list(doc.items())[:200]:
            found += _paths(value, (*prefix, key), depth + 1)
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:50]):
            found += _paths(value, (*prefix, i), depth + 1)
    return found


def mutate_json(c: Chooser, doc: Any, case: Case, *, extra: bool = False) -> bytes:
    """One mutation of ``doc``, serialised: a field set, deleted or added, or the bytes broken."""
    kind = c.choice(["set", "set", "set", "delete", "add", "top", "bytes"])
    paths = _paths(doc)
    if kind in ("set", "delete") and paths:
        path = c.choice(paths)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        name = str(path[-1])
        case.note(*(str(p) for p in path if isinstance(p, str)))
        if kind == "delete":
            del parent[path[-1]]
            case.note(say=f"delete {path}")
        else:
            parent[path[-1]] = value = nasty(c, extra)
            case.note(repr(value) if isinstance(value, str) else "", say=f"set {path} = {value!r:.60}")
        del name
    elif kind == "add" and isinstance(doc, dict):
        key = c.choice(["unknown_key", "model_type", "architectures", "tokenizer_class", "__proto__", ""])
        doc[key] = value = nasty(c, extra)
        case.note(key, say=f"add {key!r} = {value!r:.60}")
    elif kind == "top":
        doc = nasty(c)
        case.note(say=f"whole document = {doc!r:.60}")
    else:
        # Broken bytes can land anywhere: an error naming any field of the document names the fault.
        case.note(*(str(p[0]) for p in paths if isinstance(p[0], str)))
        return mutate_bytes(c, json.dumps(doc).encode(), case)
    return json.dumps(doc).encode()


def mutate_bytes(c: Chooser, raw: bytes, case: Case) -> bytes:
    kind = c.choice(["truncate", "flip", "invalid-utf8", "bom", "deep", "huge-number", "empty", "duplicate"])
    case.note(say=f"bytes: {kind}")
    if kind == "truncate":
        return raw[: c.integer(0, max(len(raw) - 1, 0))]
    if kind == "flip" and raw:
        i = c.integer(0, len(raw) - 1)
        return raw[:i] + bytes([raw[i] ^ (1 << c.integer(0, 7))]) + raw[i + 1 :]
    if kind == "invalid-utf8":
        i = c.integer(0, len(raw))
        return raw[:i] + b"\xff\xfe\xc3" + raw[i:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    if kind == "deep":
        depth = c.choice([150, 1000, 100_000])
        return b"[" * depth + b"]" * depth
    if kind == "huge-number":
        return b'{"vocab_size": 1' + b"0" * c.choice([20, 400, 5000]) + b"}"
    if kind == "duplicate":
        return raw[:-1] + b', "a": 1, "a": [1]}' if raw.endswith(b"}") else raw
    return b""


def scratch_copy(source: Path, scratch: Path) -> Path:
    target = scratch / source.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def finite(tensor: torch.Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())


# -- file targets ---------------------------------------------------------------------------------------
SIZE_FIELDS = (
    "num_hidden_layers",
    "n_layer",
    "hidden_size",
    "n_embd",
    "vocab_size",
    "intermediate_size",
    "num_attention_heads",
    "n_head",
    "max_position_embeddings",
    "n_positions",
    "num_labels",
)


def _config_bytes(c: Chooser, doc: dict, case: Case, extra: bool) -> bytes:
    """A mutated config.json; one time in four a size field set to a drawn size (the hang / blow-up class)."""
    sizes = [key for key in SIZE_FIELDS if key in doc]
    if sizes and c.chance(0.25):
        key = c.choice(sizes)
        doc[key] = value = c.choice(
            [0, -1, 10**3, 10**4, 10**5, 10**6, 10**7, 10**9, 2**31, 2**63]
            if extra
            else [0, -1, 10**9, 2**31, 2**63, 10**30]
        )
        case.note(key, say=f"set {key} = {value}")
        return json.dumps(doc).encode()
    return mutate_json(c, doc, case, extra=extra)


def t_config(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """config.json of a checkpoint with weights: AutoConfig, then the model, then one forward."""
    from headway import AutoConfig, AutoModel

    family = c.choice(["bert", "gpt2", "llama"])
    folder = scratch_copy(env.folders[family], scratch)
    doc = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_bytes(_config_bytes(c, doc, case, extra))
    case.note("config.json", "checkpoint tensor", say=family)
    AutoConfig.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[2, 5, 6, 3]])).last_hidden_state
    expect(out.shape[:2] == (1, 4), f"output shape {tuple(out.shape)}")
    expect(finite(out), "non-finite outputs")


def t_config_build(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """config.json alone: the model built from it (random weights), then one forward."""
    from headway import AutoConfig, AutoModel

    family = c.choice(["bert", "gpt2", "llama"])
    folder = scratch_copy(env.folders[family], scratch)
    (folder / "model.safetensors").unlink()
    doc = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_bytes(_config_bytes(c, doc, case, extra))
    case.note("config.json", "sequence length", say=family)
    config = AutoConfig.from_pretrained(folder)
    if env.max_build_params is not None:  # the test suite builds small models only; the campaign, any size
        from headway.modeling import estimated_parameter_count

        if estimated_parameter_count(config) > env.max_build_params:
            return
    model = AutoModel.from_config(config).eval()
    vocab = model.get_input_embeddings().num_embeddings
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[min(2, vocab - 1), 0]])).last_hidden_state
    expect(finite(out), "non-finite outputs")


def _tokenizer_file_target(filename: str) -> Callable[..., None]:
    def target(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
        from headway import AutoTokenizer

        folder = scratch_copy(env.folders["tokenizer"], scratch)
        path = folder / filename
        doc = json.loads(path.read_text(encoding="utf-8"))
        path.write_bytes(mutate_json(c, doc, case, extra=extra))
        case.note(filename)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        encoded = tokenizer(["hello world", "the cat sat"], padding=True)
        # model_input_names decides which keys come back: a file may leave attention_mask out (as in the
        # reference)
        for ids, mask in zip(encoded["input_ids"], encoded.get("attention_mask") or encoded["input_ids"]):
            expect(len(ids) == len(mask), "input_ids and attention_mask of different lengths")
        tokenizer.decode(encoded["input_ids"][0])

    target.__doc__ = f"{filename} of a tokenizer folder: load, encode a padded batch, decode."
    return target


def t_vocab_txt(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """vocab.txt of a BERT tokenizer folder without tokenizer.json."""
    from headway import AutoTokenizer

    folder = scratch_copy(env.folders["vocab_only"], scratch)
    path = folder / "vocab.txt"
    raw = path.read_bytes()
    kind = c.choice(["bytes", "lines", "empty", "duplicates", "huge-line", "no-specials"])
    lines = raw.decode().splitlines()
    if kind == "bytes":
        raw = mutate_bytes(c, raw, case)
    elif kind == "lines":
        i = c.integer(0, len(lines) - 1)
        lines[i] = c.choice(
            [
                "",
                " ",
                "\u0000",
                "\r",
                "[CLS]",
                "x" * 10_000,
                "é",
                "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
            ]
        )
        raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    elif kind == "empty":
        raw = b""
    elif kind == "duplicates":
        raw = ("\n".join(lines + lines[:10])).encode()
    elif kind == "huge-line":
        raw = b"a" * 5_000_000
    else:
        raw = "\n".join(line for line in lines if not line.startswith("[")).encode()
    path.write_bytes(raw)
    case.note("vocab.txt", say=kind)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer("hello world")
    lines = max(raw.count(b"\n") + 1, len(tokenizer))  # a duplicated line keeps its line number as its id
    expect(all(0 <= i < lines for i in encoded["input_ids"]), "ids outside the vocabulary")


def t_safetensors_header(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """The header of model.safetensors (its length prefix or its JSON)."""
    from headway import AutoModel

    folder = scratch_copy(env.folders["bert"], scratch)
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header, body = json.loads(raw[8 : 8 + length]), raw[8 + length :]
    kind = c.choice(["length", "json", "json", "json", "truncate-body"])
    if kind == "length":
        length = c.choice([0, 1, 7, length - 1, length + 1, len(raw), 2**32, 2**63, 2**64 - 1])
        new = struct.pack("<Q", length) + raw[8:]
    elif kind == "json":
        text = mutate_json(c, header, case, extra=extra)
        new = struct.pack("<Q", len(text)) + text + body
    else:
        new = raw[: c.integer(8, len(raw) - 1)]
    path.write_bytes(new)
    case.note("model.safetensors", "safetensors", say=kind)
    model = AutoModel.from_pretrained(folder)
    with torch.no_grad():
        expect(finite(model(input_ids=torch.tensor([[2, 5, 3]])).last_hidden_state), "non-finite outputs")


def t_shard_index(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """model.safetensors.index.json of a sharded checkpoint."""
    from headway import AutoModel

    folder = scratch_copy(env.folders["sharded"], scratch)
    path = folder / "model.safetensors.index.json"
    doc = json.loads(path.read_text())
    if c.chance(0.4):
        key = c.choice(sorted(doc["weight_map"]))
        doc["weight_map"][key] = value = c.choice(
            [
                "../outside.safetensors",
                "/etc/passwd",
                "missing.safetensors",
                "",
                ".",
                "config.json",
                "model-00001-of-00002.safetensors/../../x",
                5,
                None,
                ["a"],
                "\u0000",
            ]
        )
        (scratch / "outside.safetensors").write_bytes(
            (folder / "model-00001-of-00002.safetensors").read_bytes()
        )
        case.note(
            "model.safetensors.index.json",
            "weight_map",
            key,
            repr(value),
            say=f"weight_map[{key}] = {value!r}",
        )
        if isinstance(value, str) and len(value) > 2:
            case.note(value)
        raw = json.dumps(doc).encode()
    else:
        raw = mutate_json(c, doc, case, extra=extra)
        case.note("model.safetensors.index.json", "weight_map", "checkpoint tensor")
    path.write_bytes(raw)
    model = AutoModel.from_pretrained(folder)
    escapes = [
        v
        for v in doc.get("weight_map", {}).values()
        if isinstance(v, str) and (".." in v or v.startswith("/"))
    ]
    expect(not escapes, f"loaded weights named outside the checkpoint folder: {escapes}")
    with torch.no_grad():
        expect(finite(model(input_ids=torch.tensor([[2, 5, 3]])).last_hidden_state), "non-finite outputs")


ST_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "config_sentence_transformers.json",
)


def t_sentence_files(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """A sentence-transformers file: load the model, encode, check the size and the normalisation."""
    from headway import SentenceTransformer

    folder = scratch_copy(env.folders["sentence"], scratch)
    name = c.choice(ST_FILES)
    path = folder / name
    doc = json.loads(path.read_text())
    path.write_bytes(mutate_json(c, doc, case, extra=extra))
    case.note(name, name.split("/")[0], "module", "truncate_dim", "checkpoint tensor", "config.json")
    model = SentenceTransformer(folder, device="cpu")
    vectors = model.encode(["hello world", "the cat"], convert_to_tensor=True)
    dim = model.get_sentence_embedding_dimension()
    expect(vectors.shape == (2, dim), f"encode gave {tuple(vectors.shape)}, the model says dimension {dim}")
    expect(finite(vectors), "non-finite embeddings")
    if any(type(m).__name__ == "Normalize" for m in model):
        expect(torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-4), "Normalize did not normalise")


# -- runtime targets ------------------------------------------------------------------------------------
def _text_input(c: Chooser) -> Any:
    return c.choice(
        [
            "hello world",
            "",
            " ",
            c.text(),
            [c.text(), "the cat"],
            [],
            ["a", None],
            None,
            5,
            3.5,
            b"bytes",
            {"text": "x"},
            [["pre", "split"], ["words"]],
            ("a", "b"),
            np.array(["a", "b"]),
            ["x" * 5000],
            [[1, 2, 3]],
            "hello " * 200,
        ]
    )


def t_tokenizer_call(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """A tokenizer call with drawn inputs and options."""
    tokenizer = env.tokenizer
    kwargs: dict[str, Any] = {}
    options = {
        "text_pair": lambda: _text_input(c),
        "max_length": lambda: c.choice([None, -1, 0, 1, 2, 5, 512, 10**12, 2**64, 1.5, "10", True]),
        "padding": lambda: c.choice([True, False, "longest", "max_length", "do_not_pad", "bogus", 1, None]),
        "truncation": lambda: c.choice(
            [True, False, "longest_first", "only_first", "only_second", "bogus", None]
        ),
        "pad_to_multiple_of": lambda: c.choice([None, 0, 1, 8, -8, 10**12, 2.5]),
        "stride": lambda: c.choice([0, 1, 5, -1, 10**9, "2"]),
        "return_tensors": lambda: c.choice([None, "pt", "np", "tf", "bogus", 3]),
        "return_overflowing_tokens": lambda: c.choice([True, False]),
        "add_special_tokens": lambda: c.choice([True, False, "yes"]),
        "is_split_into_words": lambda: c.choice([True, False]),
        "padding_side": lambda: c.choice(["left", "right", "middle", None]),
        "return_offsets_mapping": lambda: c.choice([True, False]),
    }
    for name, draw in options.items():
        if c.chance(0.3):
            kwargs[name] = draw()
    text = _text_input(c)
    case.note(
        "text",
        *kwargs,
        "input",
        "sequence",
        "pad",
        "trunc",
        "length",
        say=f"text={text!r:.60} {kwargs!r:.200}",
    )
    encoded = tokenizer(text, **kwargs)
    ids, mask = encoded.get("input_ids"), encoded.get("attention_mask")
    if ids is not None and mask is not None:
        ids_shape = np.shape(np.asarray(ids, dtype=object)) if not hasattr(ids, "shape") else tuple(ids.shape)
        mask_shape = (
            np.shape(np.asarray(mask, dtype=object)) if not hasattr(mask, "shape") else tuple(mask.shape)
        )
        expect(ids_shape == mask_shape, f"input_ids {ids_shape} and attention_mask {mask_shape} differ")


def _tensor(c: Chooser, name: str, batch: int, seq_len: int, high: int) -> Any:
    """A drawn value for ``name``: usually a fitting tensor, sometimes anything but."""
    kind = c.choice(["good", "good", "good", "dtype", "shape", "range", "list", "scalar", "none"])
    if kind == "none":
        return None
    shape = (batch, seq_len)
    if kind == "shape":
        shape = c.choice(
            [
                (),
                (seq_len,),
                (1, seq_len),
                (batch, seq_len + 1),
                (batch, 0),
                (0, seq_len),
                (batch, 1, seq_len),
                (batch + 1, seq_len),
            ]
        )
    values = (
        torch.randint(0, max(high, 1), shape)
        if name != "attention_mask"
        else torch.ones(shape, dtype=torch.long)
    )
    if name == "attention_mask" and values.ndim == 2 and values.shape[1] > 1 and c.chance(0.5):
        values[:, -1] = 0
        if c.chance(0.2):
            values[:] = 0  # all padding
    if kind == "dtype":
        values = values.to(
            c.choice([torch.float32, torch.bool, torch.int16, torch.uint8, torch.float64, torch.int32])
        )
    if kind == "range":
        values = values.clone()
        values.view(-1)[:1] = c.choice([-1, high, high + 7, 2**40, -(2**40)]) if values.numel() else 0
    if kind == "list":
        return values.tolist()
    if kind == "scalar":
        return c.choice([3, 2.5, "ids", torch.tensor(3)])
    return values


def t_forward(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """A bare model's forward with drawn input_ids / inputs_embeds / masks / token types / positions."""
    family = c.choice(sorted(FAMILIES))
    model = env.models[family]
    hidden = model.get_input_embeddings().embedding_dim
    batch, seq_len = c.integer(1, 3), c.choice([1, 2, 5, MAX_POSITIONS, MAX_POSITIONS + 3])
    inputs: dict[str, Any] = {}
    if c.chance(0.85):
        inputs["input_ids"] = _tensor(c, "input_ids", batch, seq_len, VOCAB_SIZE)
    if c.chance(0.2) or "input_ids" not in inputs:
        shape = c.choice(
            [(batch, seq_len, hidden), (batch, seq_len, hidden + 1), (seq_len, hidden), (batch, 0, hidden)]
        )
        inputs["inputs_embeds"] = torch.randn(shape) if c.chance(0.9) else torch.ones(shape, dtype=torch.bool)
    for name, high in (("attention_mask", 2), ("token_type_ids", 2), ("position_ids", MAX_POSITIONS)):
        if c.chance(0.4):
            inputs[name] = _tensor(c, name, batch, seq_len, high)
    case.note(
        *inputs,
        "Sequence length",
        "input",
        say=f"{family} "
        + ", ".join(
            f"{k}={tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
            f"{'/' + str(v.dtype) if isinstance(v, torch.Tensor) else ''}"
            for k, v in inputs.items()
        ),
    )
    with torch.no_grad():
        out = model(**inputs).last_hidden_state
    tokens = inputs.get("input_ids")
    expected = (
        tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else tuple(inputs["inputs_embeds"].shape[:-1])
    )
    expect(tuple(out.shape[:-1]) == expected, f"output {tuple(out.shape)} for inputs {expected}")
    expect(finite(out), "non-finite outputs")


def t_pipelines(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """A pipeline call with drawn inputs and parameters."""
    task = c.choice(sorted(env.pipelines))
    pipe = env.pipelines[task]
    number = lambda: c.choice([None, 0, 1, 3, -1, 10**9, 2.5, "3", True, [1]])
    params: dict[str, Any] = {}
    args: tuple = (_text_input(c),)
    if task == "text-classification":
        if c.chance(0.5):
            params["top_k"] = number()
        if c.chance(0.2):
            params["function_to_apply"] = c.choice(["softmax", "sigmoid", "none", "bogus", 3])
    elif task == "zero-shot-classification":
        params["candidate_labels"] = c.choice(
            [["sport", "politics"], "a, b", [], "", [""], [1], None, ["x"] * 30]
        )
        if c.chance(0.5):
            params["hypothesis_template"] = c.choice(
                [
                    "This is {}.",
                    "{0} {1}",
                    "{a}",
                    "{",
                    "}",
                    "no placeholder",
                    "{:>100000000000}",
                    "{!r}",
                    5,
                    "{}{}",
                ]
            )
        if c.chance(0.3):
            params["multi_label"] = c.choice([True, False, "yes"])
    elif task == "fill-mask":
        args = (
            c.choice(["the [MASK] sat", "no mask here", "[MASK] [MASK]", "", 5, ["the [MASK]", "a [MASK]"]]),
        )
        if c.chance(0.5):
            params["top_k"] = number()
        if c.chance(0.3):
            params["targets"] = c.choice([["cat", "dog"], "cat", [], ["zzzz"], [5], None])
    elif task == "token-classification":
        if c.chance(0.5):
            params["aggregation_strategy"] = c.choice(
                ["none", "simple", "first", "average", "max", "bogus", 3]
            )
        if c.chance(0.3):
            params["ignore_labels"] = c.choice([["O"], [], "O", None, [3]])
    elif task == "question-answering":
        args = ()
        params["question"] = c.choice(["what sat", "", 5, None, ["what", "who"]])
        params["context"] = c.choice(["the cat sat on the mat", "", None, 3, "the " * 100, ["a", "b"]])
        for name in ("top_k", "max_answer_len", "doc_stride", "max_seq_len", "max_question_len"):
            if c.chance(0.25):
                params[name] = number()
        if c.chance(0.2):
            params["handle_impossible_answer"] = c.choice([True, False, "x"])
    elif task == "text-generation":
        # No 10**9 new tokens or sequences here: that is a long run the caller asked for, not a hang.
        for name in ("max_new_tokens", "num_return_sequences", "top_k", "max_length"):
            if c.chance(0.3):
                params[name] = c.choice([None, 0, 1, 3, -1, 2.5, "3", True, [1]])
        if c.chance(0.3):
            params["temperature"] = c.choice([0.0, 0.7, -1.0, float("nan"), 1e9, "hot"])
        if c.chance(0.3):
            params["do_sample"] = c.choice([True, False])
        params.setdefault("max_new_tokens", 3)
    elif task == "feature-extraction" and c.chance(0.3):
        params["truncation"] = c.choice([True, False, "bogus"])
    if c.chance(0.15):
        params["batch_size"] = number()
    case.note(
        *params,
        "input",
        "text",
        "question",
        "context",
        "label",
        "mask",
        "sequence",
        say=f"{task} args={args!r:.60} {params!r:.200}",
    )
    result = pipe(*args, **params)
    expect(result is not None, "None result")
    if params.get("function_to_apply") != "none":  # raw logits otherwise
        _check_finite_scores(result)


def _check_finite_scores(result: Any) -> None:
    if isinstance(result, dict):
        for key, value in result.items():
            if key in ("score", "scores"):
                for v in value if isinstance(value, list) else [value]:
                    expect(
                        isinstance(v, (float, int)) and math.isfinite(v) and -1e-6 <= v <= 1 + 1e-6,
                        f"score {v!r}",
                    )
            else:
                _check_finite_scores(value)
    elif isinstance(result, list):
        for item in result:
            _check_finite_scores(item)


def t_encode(c: Chooser, env: Env, scratch: Path, case: Case, *, extra: bool = False) -> None:
    """SentenceTransformer.encode with drawn inputs and options."""
    model = env.sentence_transformer
    options = {
        "batch_size": lambda: c.choice([1, 2, 32, 0, -1, 2.0, "8", True, 10**9]),
        "truncate_dim": lambda: c.choice([None, 1, 8, 16, 17, 0, -1, 1.5, True, "8", 10**9]),
        "precision": lambda: c.choice(
            ["float32", "int8", "uint8", "binary", "ubinary", "fp16", None, ["float32"]]
        ),
        "normalize_embeddings": lambda: c.choice([True, False, "yes", None]),
        "output_value": lambda: c.choice(["sentence_embedding", "token_embeddings", None, "pooled", 1]),
        "convert_to_tensor": lambda: c.choice([True, False]),
        "convert_to_numpy": lambda: c.choice([True, False]),
        "prompt_name": lambda: c.choice([None, "query", "nope", 5]),
        "prompt": lambda: c.choice([None, "", "query: ", 3]),
        "show_progress_bar": lambda: c.choice([False, None, "no"]),
    }
    kwargs = {name: draw() for name, draw in options.items() if c.chance(0.3)}
    sentences = _text_input(c)
    case.note("sentences", "encode", *kwargs, "prompt", "precision", say=f"{sentences!r:.60} {kwargs!r:.200}")
    result = model.encode(sentences, **kwargs)
    if kwargs.get("output_value", "sentence_embedding") != "sentence_embedding":
        return
    dim = kwargs.get("truncate_dim") or model.get_sentence_embedding_dimension()
    if kwargs.get("precision") in ("binary", "ubinary"):
        dim = (dim + 7) // 8
    array = result if isinstance(result, (np.ndarray, torch.Tensor)) else None
    if array is not None and len(array):
        expect(array.shape[-1] == dim, f"embedding size {array.shape[-1]}, expected {dim}")
        if kwargs.get("precision", "float32") == "float32":
            expect(bool(np.isfinite(np.asarray(array, dtype=np.float64)).all()), "non-finite embeddings")


TARGETS: dict[str, Callable[..., None]] = {
    "config.json": t_config,
    "config.json (build)": t_config_build,
    "tokenizer.json": _tokenizer_file_target("tokenizer.json"),
    "tokenizer_config.json": _tokenizer_file_target("tokenizer_config.json"),
    "special_tokens_map.json": _tokenizer_file_target("special_tokens_map.json"),
    "vocab.txt": t_vocab_txt,
    "safetensors header": t_safetensors_header,
    "shard index": t_shard_index,
    "sentence-transformers files": t_sentence_files,
    "tokenizer call": t_tokenizer_call,
    "model forward": t_forward,
    "pipelines": t_pipelines,
    "encode": t_encode,
}


def run_case(
    target: str, chooser: Chooser, env: Env, scratch: Path, *, extra: bool = False
) -> tuple[Outcome, Case]:
    """Draw and run one case of ``target``; never raises (but a crash or a hang is the caller's to see)."""
    case = Case()
    try:
        TARGETS[target](chooser, env, scratch, case, extra=extra)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # classifying every failure is the point
        if type(error).__module__.startswith("hypothesis"):
            raise
        return classify(error, case.names), case
    return Outcome("ok"), case
