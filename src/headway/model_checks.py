"""Checks made before a model is built, on what only building (or initialising) it would reveal.

``PreTrainedModel.__init__`` calls :func:`check_model_fits` and :func:`check_buildable`; ``from_pretrained``
also calls :func:`check_layers_against_weights` with the checkpoint's tensor names (read from the file
headers, no tensor loaded), and every path that initialises weights calls :func:`check_initializer_range`.
Each failure is a ValueError naming the config field, in the family's own spelling (``n_layer`` for GPT-2,
``num_hidden_layers`` for BERT), and its value.

Config *values* that are wrong whatever the model (a negative size, an epsilon of 0) are refused earlier, when
the config is made (``headway.configuration``). What is checked here is only wrong for building: a config
may name an activation headway lacks, or ask for a million layers, and still be read (the reference reads
such configs too), while building from it could only fail late, hang, or exhaust memory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable
from typing import Any

import torch

from headway.configuration import PretrainedConfig

__all__ = [
    "MAX_LAYERS",
    "MAX_NEW_LAYERS",
    "check_buildable",
    "check_initializer_range",
    "check_layers_against_weights",
    "check_model_fits",
    "estimated_parameter_count",
]

# The most layers one stack may have. The deepest published checkpoints have 100-130 (Llama 3.1 405B: 126,
# PaLM 540B: 118) and research models reach 1,000 (DeepNet); 4,096 leaves room for all of them. Past it a
# tiny model's layers alone take a minute to build (about 1.5 ms each, 7 ms loading), so a config asking
# for 10**5 is a broken file, not a model: refused at once instead of building for minutes.
MAX_LAYERS = 4096
# The most layers a loaded model may build beyond those its checkpoint's weights hold: more would leave a
# model that is mostly random weights (the reference loads it with a long missing-keys warning), which a
# config.json of another model, or a corrupted one, asks for far more often than anyone means it.
MAX_NEW_LAYERS = 64

# canonical name -> the spellings families give it, first match wins (GPT-2, DistilBERT, T5, BART).
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "dim", "d_model"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers"),
    "intermediate_size": ("intermediate_size", "n_inner", "hidden_dim", "d_ff", "encoder_ffn_dim"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
    "vocab_size": ("vocab_size",),
    "type_vocab_size": ("type_vocab_size",),
}
_LAYER_FIELDS = (
    "num_hidden_layers",
    "n_layer",
    "n_layers",
    "num_layers",
    "num_decoder_layers",
    "encoder_layers",
    "decoder_layers",
)
_ACTIVATION_FIELDS = (
    "hidden_act",
    "activation_function",
    "hidden_activation",
    "activation",
    "pooler_hidden_act",
)
_INIT_FIELDS = ("initializer_range", "init_std", "initializer_factor")
# ``encoder.layer.3.``, ``h.3.``, ``model.layers.3.``, ``decoder.block.3.``: the layer index in a weight name.
_LAYER_KEY = re.compile(r"(?:^|\.)(?:layers?|h|blocks?)\.(\d+)\.")


def _fields(config: PretrainedConfig) -> set[str]:
    return {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()


def _spelling(config: PretrainedConfig, canonical: str) -> str:
    """The name ``config``'s family gives the size ``canonical`` (its config.json key)."""
    own = _fields(config)
    return next((name for name in _SPELLINGS.get(canonical, ()) if name in own), canonical)


def _where(config: PretrainedConfig) -> str:
    name = getattr(config, "name_or_path", "")
    return f"{type(config).__name__} (config.json of {name!r})" if name else type(config).__name__


def _size(config: PretrainedConfig, canonical: str) -> tuple[str, int]:
    """(field name, value) of a size; the value 0 when the family has no such size."""
    name = _spelling(config, canonical)
    value = getattr(config, name, None)
    return name, value if isinstance(value, int) and not isinstance(value, bool) else 0


def _terms(config: PretrainedConfig) -> list[tuple[int, str]]:
    """The parts of the parameter estimate: (count, the fields and values it comes from)."""
    hidden_name, hidden = _size(config, "hidden_size")
    layers_name, layers = _size(config, "num_hidden_layers")
    vocab_name, vocab = _size(config, "vocab_size")
    inner_name, inner = _size(config, "intermediate_size")
    if not inner:
        inner_name, inner = f"4 x {hidden_name}", 4 * hidden
    h = f"{hidden_name}={hidden}"
    terms = [
        (vocab * hidden, f"the token embeddings ({vocab_name}={vocab} x {h})"),
        (
            layers * (4 * hidden * hidden + 2 * hidden * inner),
            f"the layers ({layers_name}={layers} x (4 x {h} squared + 2 x {h} x {inner_name}={inner}))",
        ),
        (config.num_labels * hidden, f"the classifier (num_labels={config.num_labels} x {h})"),
    ]
    types_name, types = _size(config, "type_vocab_size")
    if types:
        terms.append((types * hidden, f"the token type embeddings ({types_name}={types} x {h})"))
    if getattr(config, "rope_parameters", None) is None:
        positions_name, positions = _size(config, "max_position_embeddings")
        terms.append((positions * hidden, f"the position embeddings ({positions_name}={positions} x {h})"))
    if not getattr(config, "tie_word_embeddings", True):
        terms.append((vocab * hidden, f"the untied output embeddings ({vocab_name}={vocab} x {h})"))
    return terms


def estimated_parameter_count(config: PretrainedConfig) -> int:
    """About how many parameters a model of ``config`` has, from its sizes alone (nothing is built).

    Embeddings (tokens, token types, and learned positions where the family has no rotary ones), per
    layer four hidden x hidden attention projections and two hidden x intermediate feed-forward ones,
    an untied output embedding and a classifier. It stays under the true count for the families here
    (grouped key/value heads are offset by the third matrix of gated feed-forwards), so a model it refuses
    really does not fit.
    """
    return sum(count for count, _ in _terms(config))


def _machine_memory() -> int:
    """Bytes of memory on this machine (0 where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _layer_counts(config: PretrainedConfig) -> list[tuple[str, int]]:
    """(field, value) of each layer count the config sets (one per stack of an encoder-decoder)."""
    own = _fields(config)
    found = [(name, getattr(config, name)) for name in _LAYER_FIELDS if name in own]
    return [(name, value) for name, value in found if isinstance(value, int) and not isinstance(value, bool)]


def check_model_fits(config: PretrainedConfig) -> None:
    """Refuse, before anything is built, a config asking for more than :data:`MAX_LAYERS` layers in a stack,
    or whose parameters alone (at 2 bytes each, the smallest dtype headway loads) exceed this machine's
    memory and its GPUs' together: such sizes would otherwise hang building layers or fail deep inside an
    allocation. The memory message names the part of the model that makes it big."""
    for name, layers in _layer_counts(config):
        if layers > MAX_LAYERS:
            raise ValueError(
                f"{_where(config)} asks for {name}={layers} layers; headway builds at most {MAX_LAYERS} per "
                "stack (the deepest published checkpoints have under 200): is this config.json the model's?"
            )
    terms = _terms(config)
    needed = 2 * sum(count for count, _ in terms)
    available = _machine_memory()
    if available == 0 or needed <= available:
        return
    if torch.cuda.is_available():  # queried only for a model larger than the machine's memory
        available += sum(
            torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())
        )
    if needed > available:
        main = ", ".join(
            f"{_spelling(config, k)}={_size(config, k)[1]}"
            for k in ("hidden_size", "num_hidden_layers", "vocab_size")
        )
        count, biggest = max(terms)
        raise ValueError(
            f"{_where(config)} describes a model of about {needed / 2:.3g} parameters ({main}, "
            f"num_labels={config.num_labels}), at least {needed / 2**30:.3g} GiB, more than the "
            f"{available / 2**30:.3g} GiB of memory this machine has; {count / (needed / 2):.0%} of them are "
            f"{biggest}"
        )


def check_layers_against_weights(config: PretrainedConfig, weight_names: Iterable[str], source: str) -> None:
    """Refuse a config asking for more than :data:`MAX_NEW_LAYERS` layers beyond those the checkpoint's
    weights hold (``source`` names the weights in the message). Checkpoints whose weight names show no layer
    index are not checked."""
    counts = _layer_counts(config)
    if not counts:
        return
    held = max((int(m.group(1)) + 1 for m in map(_LAYER_KEY.search, weight_names) if m), default=0)
    name, asked = max(counts, key=lambda item: item[1])
    if held and asked > held + MAX_NEW_LAYERS:
        raise ValueError(
            f"{_where(config)} asks for {name}={asked} layers, but the weights in {source} hold {held}: "
            f"building {asked - held} layers from random weights (more than {MAX_NEW_LAYERS}) is refused; "
            f"set {name} to the checkpoint's {held}, or build the model with from_config"
        )


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rope_dicts(rope: Any) -> list[tuple[str, dict]]:
    """(name, parameters) of each rotary table: one dict, or one per layer type (ModernBERT)."""
    if not isinstance(rope, dict):
        return []
    if rope and all(isinstance(v, dict) for v in rope.values()):
        return [(f"rope_parameters[{k!r}]", v) for k, v in rope.items()]
    return [("rope_parameters", rope)]


def check_buildable(config: PretrainedConfig) -> None:
    """Refuse config values that only fail while building or running: an activation headway does not know,
    rotary parameters (``rope_theta``, the ``factor`` s a rope type needs) that are not numbers."""
    from headway.nn.activations import ACT2FN
    from headway.nn.rotary import _REQUIRED

    own = _fields(config)
    for name in _ACTIVATION_FIELDS:
        value = getattr(config, name, None)
        if name in own and isinstance(value, str) and value not in ACT2FN:
            raise ValueError(
                f"{_where(config)}: {name}={value!r:.80} is not an activation headway knows; expected one of "
                f"{sorted(ACT2FN)}"
            )
    for where, params in _rope_dicts(getattr(config, "rope_parameters", None)):
        for key in ("rope_theta", *_REQUIRED.get(params.get("rope_type", "default"), ())):
            if key in params and not _is_real(params[key]):
                raise ValueError(
                    f"{_where(config)}: {where}[{key!r}] must be a number, got {params[key]!r:.80}"
                )


def check_initializer_range(config: PretrainedConfig) -> None:
    """Refuse a weight-initialisation scale that is not a finite number >= 0, before any weight is drawn
    (``normal_`` would fail on it, or fill the model with inf). Only paths that initialise call this: a
    checkpoint holding every weight loads whatever the value, as in the reference."""
    own = _fields(config)
    for name in _INIT_FIELDS:
        if name in own:
            value = getattr(config, name)
            if not (_is_real(value) and 0 <= value < math.inf):
                raise ValueError(
                    f"{_where(config)}: {name} must be a finite number >= 0 (the standard deviation of the "
                    f"initial weights), got {value!r:.80}"
                )
