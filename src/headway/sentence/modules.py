"""The modules of a sentence-transformers pipeline: Transformer -> Pooling -> (Dense) -> (Normalize).

Each module takes the features dict of the one before and adds to it (``token_embeddings``, then
``sentence_embedding``), exactly like sentence-transformers' module contract, and reads and writes the
same folder format (``modules.json`` names the module types; each module keeps its config, and
weights where it has any, in its own sub-folder).

Module types named in ``modules.json`` are looked up in the literal table ``MODULE_TYPES``: no class
named in a file is ever imported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import posixpath
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from headway.atomic import staged_folder
from headway.checkpoint import atomic_write_text, load_state_dict
from headway.hub import Checkpoint
from headway.jsonfile import check_field
from headway.jsonfile import read_json as read_json_file
from headway.nn.linear import Linear
from headway.sentence.pooling import Pooling

logger = logging.getLogger(__name__)

Features = dict[str, Any]

# Names the Transformer config went by in older sentence-transformers releases, newest first.
TRANSFORMER_CONFIG_NAMES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)


def sub_checkpoint(checkpoint: Checkpoint, path: str) -> Checkpoint:
    """The same checkpoint seen from its sub-folder ``path`` (a module folder such as ``1_Pooling``)."""
    if path and (posixpath.isabs(path) or ".." in Path(path).parts or "\\" in path):
        raise ValueError(f"Module path {path!r} in modules.json must be a relative folder inside the model")
    if not path:
        return checkpoint
    checkpoint.check_folder(path, named_in=f"modules.json of {checkpoint.name!r}")
    return dataclasses.replace(checkpoint, subfolder=posixpath.join(checkpoint.subfolder, path))


def read_json(
    checkpoint: Checkpoint, filename: str, *, expect: type = dict, fields: dict[str, Any] | None = None
) -> Any | None:
    """Parsed ``filename`` of ``checkpoint``, or None when the file is absent.

    Read by ``headway.jsonfile.read_json``: a broken file, a top-level value that is not ``expect``, or a
    key of ``fields`` present with a value not of its type(s) is a ValueError naming the file.
    """
    path = checkpoint.get(filename)
    if path is None:
        return None
    data = read_json_file(path, expect=expect, what=f"sentence-transformers file {filename}")
    for key, kinds in (fields or {}).items():
        if isinstance(data, dict) and data.get(key) is not None:
            check_field(data[key], kinds, source=path, field=key, what=f"sentence-transformers file {filename}")
    return data


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def single_device_map(model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``model_kwargs`` with ``device_map={"": device}`` (the whole model on one device) as ``device``."""
    kwargs = dict(model_kwargs or {})
    device_map = kwargs.get("device_map")
    if isinstance(device_map, dict) and set(device_map) == {""}:
        kwargs["device_map"] = device_map[""]
    return kwargs


def _as_checkpoint(source: Checkpoint | str | os.PathLike) -> Checkpoint:
    """``source`` itself, or the local folder (or Hub id) it names."""
    if isinstance(source, Checkpoint):
        return source
    from headway.hub import resolve

    return resolve(source)


# -- Transformer --------------------------------------------------------------------------------------
def _has_lowercase(normalizer: dict | None) -> bool:
    """True when a serialized ``tokenizers`` normalizer already lowercases."""
    if not normalizer:
        return False
    if normalizer.get("type") == "Lowercase" or normalizer.get("lowercase") is True:
        return True
    return any(_has_lowercase(inner) for inner in normalizer.get("normalizers") or [])


class Transformer(nn.Module):
    """A headway ``AutoModel`` and its tokenizer: texts -> ``token_embeddings`` (B, T, hidden).

    Args:
        model: The encoder, or a checkpoint (folder or Hub id) to load it and its tokenizer from, as in
            sentence-transformers' ``Transformer("bert-base-uncased")``.
        tokenizer: Its tokenizer (loaded from the checkpoint when ``model`` names one).
        max_seq_length: Inputs are truncated to this many tokens (specials included); None: the
            tokenizer's ``model_max_length`` capped at the model's ``max_position_embeddings``.
        do_lower_case: Lowercase the text first, whether the tokenizer is cased or not.
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (``dtype``, ``device_map``...).
        processor_kwargs: Passed to ``AutoTokenizer.from_pretrained``; ``tokenizer_kwargs`` is its older name.
        config_kwargs: Config fields to override when loading (``hidden_dropout_prob=0.2``...).
        **hub_kwargs: ``cache_dir``, ``revision``, ``token``, ``local_files_only`` for the checkpoint.
    """

    st_type: ClassVar[str] = "sentence_transformers.models.Transformer"
    forward_kwargs: ClassVar[frozenset[str]] = frozenset()  # extra keyword arguments forward() uses
    can_flatten_inputs: bool = False  # the forward pass takes padded batches only

    def __init__(self, model: nn.Module | str | os.PathLike | Checkpoint, tokenizer: Any = None, *,
                 max_seq_length: int | None = None, do_lower_case: bool = False,
                 model_kwargs: dict[str, Any] | None = None, processor_kwargs: dict[str, Any] | None = None,
                 tokenizer_kwargs: dict[str, Any] | None = None, config_kwargs: dict[str, Any] | None = None,
                 **hub_kwargs: Any) -> None:
        super().__init__()
        if isinstance(model, (str, os.PathLike, Checkpoint)):
            from headway.auto import AutoModel, AutoTokenizer
            from headway.hub import pop_hub_kwargs, resolve

            if "cache_folder" in hub_kwargs:
                hub_kwargs["cache_dir"] = hub_kwargs.pop("cache_folder")
            checkpoint = model if isinstance(model, Checkpoint) else resolve(model, **pop_hub_kwargs(hub_kwargs))
            model = AutoModel.from_pretrained(checkpoint, **(config_kwargs or {}), **single_device_map(model_kwargs))
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(checkpoint, **(tokenizer_kwargs or {}),
                                                          **(processor_kwargs or {}))
                tokenizer.name_or_path = checkpoint.name
        if hub_kwargs:
            raise TypeError(f"Transformer() got unexpected keyword arguments: {sorted(hub_kwargs)}")
        if tokenizer is None:
            raise ValueError("Transformer needs the tokenizer of its model (or a checkpoint to load both from)")
        self.auto_model = model
        self.tokenizer = tokenizer
        self.do_lower_case = do_lower_case
        if max_seq_length is None:
            max_seq_length = min(tokenizer.model_max_length,
                                 getattr(model.config, "max_position_embeddings", tokenizer.model_max_length))
        self.max_seq_length = max_seq_length
        if do_lower_case:
            backend = tokenizer.backend_tokenizer
            if not _has_lowercase(json.loads(backend.to_str()).get("normalizer")):
                from tokenizers import normalizers

                steps = [normalizers.Lowercase()] + ([backend.normalizer] if backend.normalizer is not None else [])
                backend.normalizer = normalizers.Sequence(steps)
        self._prompt_length_mapping: dict[tuple[str], int] = {}

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.model_max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value  # saved with the tokenizer as well

    @property
    def config(self) -> Any:
        return self.auto_model.config

    @classmethod
    def load(cls, checkpoint: Checkpoint | str | os.PathLike, **kwargs: Any) -> Transformer:
        """Encoder, tokenizer and ``sentence_bert_config.json`` of a (sub-)checkpoint.

        ``kwargs`` (``model_kwargs``, ``processor_kwargs``, ``config_kwargs``...) go to the constructor.
        """
        if not isinstance(checkpoint, Checkpoint):
            from headway.hub import resolve

            checkpoint = resolve(checkpoint)
        config: dict[str, Any] = {}
        for name in TRANSFORMER_CONFIG_NAMES:
            found = read_json(checkpoint, name, fields={"max_seq_length": int, "do_lower_case": bool})
            if found:
                config = found
                break
        length = config.get("max_seq_length")
        if length is not None and not 1 <= length < 2**64:  # the tokenizers library holds lengths as u64
            raise ValueError(f"{name} of {checkpoint.name!r}: max_seq_length must be a positive int below 2**64, "
                             f"got {length}")
        return cls(checkpoint, max_seq_length=length, do_lower_case=bool(config.get("do_lower_case", False)),
                   **kwargs)

    def preprocess(self, texts: list[str] | list[tuple[str, str]], prompt: str | None = None,
                   processing_kwargs: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenize a batch (texts or text pairs), padded to its longest and truncated to ``max_seq_length``.

        ``prompt`` is put before each text (the first of a pair) and its token count added as
        ``prompt_length``; ``processing_kwargs={"text": {...}}`` overrides tokenizer options for this call
        (``max_length``, ``truncation``...). Other keywords (``task``...) are accepted and unused.
        """
        options = {"padding": True, "truncation": "longest_first", "max_length": self.max_seq_length,
                   **((processing_kwargs or {}).get("text") or {}), "return_tensors": "pt"}
        texts = list(texts)
        pairs = bool(texts) and isinstance(texts[0], (tuple, list))
        if prompt:
            texts = [(prompt + t[0], *t[1:]) if pairs else prompt + t for t in texts]
        if pairs:
            encoded = self.tokenizer([t[0] for t in texts], [t[1] for t in texts], **options)
        else:
            encoded = self.tokenizer(texts, **options)
        features = dict(encoded)
        if prompt:
            features["prompt_length"] = self.prompt_length(prompt)
        features["modality"] = "text"
        return features

    def tokenize(self, texts: list[str] | list[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
        """``preprocess`` (its older name)."""
        return self.preprocess(texts, **kwargs)

    def prompt_length(self, prompt: str) -> int:
        """Tokens the prompt takes at the start of an input: its own and the special tokens before it."""
        key = (prompt,)
        if key not in self._prompt_length_mapping:
            encoded = self.tokenizer([prompt], return_special_tokens_mask=True)
            special = list(encoded["special_tokens_mask"][0])
            while special and special[-1]:  # the specials closing the sequence are not the prompt's
                special.pop()
            self._prompt_length_mapping[key] = len(special)
        return self._prompt_length_mapping[key]

    def forward(self, features: Features, **kwargs: Any) -> Features:
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        features["token_embeddings"] = self.auto_model(**inputs).last_hidden_state  # (B, T, hidden)
        return features

    def get_embedding_dimension(self) -> int:
        return self.auto_model.config.hidden_size

    get_word_embedding_dimension = get_embedding_dimension

    def get_config_dict(self) -> dict[str, Any]:
        return {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case}

    def save(self, folder: str | Path, **kwargs: Any) -> None:
        """Write the model, tokenizer and ``sentence_bert_config.json``; the folder replaced as a whole.

        ``safe_serialization`` is accepted: headway always writes safetensors.
        """
        with staged_folder(Path(folder)) as stage:
            self.auto_model.save_pretrained(stage.path)
            self.tokenizer.save_pretrained(stage.path)
            # The config keeps the classic two keys, which every sentence-transformers release reads.
            write_json(stage.path / "sentence_bert_config.json", self.get_config_dict())

    def extra_repr(self) -> str:
        return f"{self.get_config_dict()}, architecture={type(self.auto_model).__name__}"


# -- Dense --------------------------------------------------------------------------------------------
# Activation names a Dense config may hold -> the torch class. Names outside this table are refused:
# nothing named in a file is imported.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "torch.nn.modules.activation.Tanh": nn.Tanh,
    "torch.nn.modules.linear.Identity": nn.Identity,
    "torch.nn.modules.activation.ReLU": nn.ReLU,
    "torch.nn.modules.activation.GELU": nn.GELU,
    "torch.nn.modules.activation.Sigmoid": nn.Sigmoid,
    "torch.nn.modules.activation.SiLU": nn.SiLU,
    "torch.nn.modules.activation.Softmax": nn.Softmax,
    "torch.nn.modules.activation.LeakyReLU": nn.LeakyReLU,
    "torch.nn.modules.activation.ELU": nn.ELU,
    "torch.nn.modules.activation.Softplus": nn.Softplus,
    "torch.nn.modules.activation.Hardtanh": nn.Hardtanh,
    "torch.nn.Tanh": nn.Tanh,
    "torch.nn.Identity": nn.Identity,
    "torch.nn.ReLU": nn.ReLU,
    "torch.nn.GELU": nn.GELU,
    "torch.nn.Sigmoid": nn.Sigmoid,
    "torch.nn.SiLU": nn.SiLU,
}


def activation_name(module: nn.Module) -> str:
    """The dotted class path sentence-transformers writes for an activation module."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


def activation_from_name(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation_function {name!r}; headway knows: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Dense(nn.Module):
    """A linear layer and an activation applied to one feature (the sentence embedding by default).

    Args:
        in_features: Input size.
        out_features: Output size.
        bias: Whether the linear layer has a bias.
        activation_function: A module (default ``nn.Tanh()``); None means identity.
        module_input_name: Feature read. ``module_output_name``: feature written (default: the same).
        use_residual: Add the input back (projected by ``residual`` when the sizes differ).
    """

    st_type: ClassVar[str] = "sentence_transformers.models.Dense"

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation_function: nn.Module | None = None, *, module_input_name: str = "sentence_embedding",
                 module_output_name: str | None = None, use_residual: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features, self.bias = in_features, out_features, bias
        self.activation_function = nn.Tanh() if activation_function is None else activation_function
        self.linear = Linear(in_features, out_features, bias=bias)  # weights: linear.weight, linear.bias
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name
        self.use_residual = use_residual
        if use_residual and in_features != out_features:
            self.residual = Linear(in_features, out_features, bias=False)

    @classmethod
    def load(cls, checkpoint: Checkpoint | str | os.PathLike) -> Dense:
        """Config (``config.json``) and weights (safetensors, or .bin read with weights_only), in their dtype."""
        checkpoint = _as_checkpoint(checkpoint)
        config = dict(read_json(checkpoint, "config.json", fields=_DENSE_FIELDS) or {})
        if "in_features" not in config or "out_features" not in config:
            raise ValueError(f"Dense config of {checkpoint.name!r} ({checkpoint.subfolder}) lacks in/out_features")
        act = config.pop("activation_function", None)
        known = {"in_features", "out_features", "bias", "module_input_name", "module_output_name", "use_residual"}
        unknown = sorted(set(config) - known)
        if unknown:
            logger.warning("Ignoring unknown Dense config keys %s in %s", unknown, checkpoint.name)
        where = f"Dense module of {checkpoint.name!r} ({checkpoint.subfolder})"
        for key in ("in_features", "out_features"):
            if config[key] < 1:
                raise ValueError(f"{where}: config.json {key} must be a positive int, got {config[key]}")
        # The weights' shapes are checked against the config before the layer is built, so a config naming
        # a huge size fails on the (small) file it comes with instead of allocating that size.
        state = load_state_dict(checkpoint)
        out_features, in_features = config["out_features"], config["in_features"]
        expected = {"linear.weight": (out_features, in_features)}
        if config.get("bias", True):
            expected["linear.bias"] = (out_features,)
        if config.get("use_residual") and in_features != out_features:
            expected["residual.weight"] = (out_features, in_features)
        found = {key: tuple(state[key].shape) for key in state}
        if found != expected:
            raise ValueError(f"{where}: the weights hold {found}, but config.json describes {expected}")
        module = cls(activation_function=activation_from_name(act) if act else None,
                     **{k: v for k, v in config.items() if k in known})
        module.to(state["linear.weight"].dtype)  # kept in the precision it was saved in
        module.load_state_dict({key: state[key] for key in state}, strict=True)
        return module

    def get_config_dict(self) -> dict[str, Any]:
        config = {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias,
                  "activation_function": activation_name(self.activation_function),
                  "module_input_name": self.module_input_name, "module_output_name": self.module_output_name}
        if self.use_residual:  # left out at its default, so older releases (no such key) still load it
            config["use_residual"] = True
        return config

    def save(self, folder: str | Path, **kwargs: Any) -> None:
        """Write ``config.json`` and the weights together (one staged folder; always safetensors)."""
        from headway.checkpoint import save_state_dict

        with staged_folder(Path(folder)) as stage:
            write_json(stage.path / "config.json", self.get_config_dict(), indent=4)
            save_state_dict({k: v.detach().cpu() for k, v in self.state_dict().items()}, stage.path)

    def get_embedding_dimension(self) -> int:
        return self.out_features

    def forward(self, features: Features, **kwargs: Any) -> Features:
        x = _feature(features, self.module_input_name, self)
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (x if self.in_features == self.out_features else self.residual(x))
        features[self.module_output_name] = out
        return features


# -- Normalize ----------------------------------------------------------------------------------------
class Normalize(nn.Module):
    """L2-normalizes one feature (the sentence embedding by default) to unit length."""

    st_type: ClassVar[str] = "sentence_transformers.models.Normalize"

    def __init__(self, module_input_name: str = "sentence_embedding", module_output_name: str | None = None) -> None:
        super().__init__()
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    @classmethod
    def load(cls, checkpoint: Checkpoint | str | os.PathLike) -> Normalize:
        checkpoint = _as_checkpoint(checkpoint)
        config = read_json(checkpoint, "config.json", fields={"module_input_name": str, "module_output_name": str}
                           ) or {}  # older saves have no folder at all
        return cls(config.get("module_input_name", "sentence_embedding"), config.get("module_output_name"))

    def save(self, folder: str | Path, **kwargs: Any) -> None:
        with staged_folder(Path(folder)) as stage:
            write_json(stage.path / "config.json", {"module_input_name": self.module_input_name,
                                                    "module_output_name": self.module_output_name}, indent=4)

    def forward(self, features: Features, **kwargs: Any) -> Features:
        # A misspelled input name would skip the normalisation silently (as in sentence-transformers): refuse.
        x = _feature(features, self.module_input_name, self)
        features[self.module_output_name] = torch.nn.functional.normalize(x, p=2, dim=-1)
        return features


def _feature(features: Features, name: str, module: nn.Module) -> Tensor:
    """``features[name]``, or a ValueError naming the module's ``module_input_name`` and what there is."""
    if name not in features:
        raise ValueError(
            f"{type(module).__name__} reads the feature {name!r} (its module_input_name), which the modules before "
            f"it do not produce; features: {sorted(features)}"
        )
    return features[name]


# Features a module adds to the dict: the Transformer and Pooling always write these two.
_PRODUCED = {"Transformer": ("token_embeddings",), "Pooling": ("sentence_embedding",),
             "StaticEmbedding": ("sentence_embedding",)}


def check_module_chain(modules: dict[str, nn.Module], checkpoint: Checkpoint) -> None:
    """The modules of ``modules.json`` fit together: sizes agree and each reads a feature made before it.

    A Pooling sized otherwise than the Transformer before it (its config's ``word_embedding_dimension``),
    a Dense whose ``in_features`` differ from the vectors it gets, or a Dense / Normalize reading a
    feature no module before it writes (a misspelled ``module_input_name``) are ValueErrors naming the
    module's folder: they would otherwise give a wrong dimension or skip a step without a word.
    """
    from headway.sentence.static_embedding import StaticEmbedding

    first = next(iter(modules.values()), None)
    if not isinstance(first, (Transformer, StaticEmbedding)):
        raise ValueError(  # noqa: TRY004 - bad file content, not a bad argument
            f"modules.json of {checkpoint.name!r} must list a Transformer first (or a StaticEmbedding: the "
            f"module that tokenizes the texts), got {type(first).__name__ if first is not None else 'no module'}"
        )
    produced = {"input_ids", "attention_mask", "token_type_ids"}
    sizes: dict[str, int] = {}  # feature -> its last dimension, when known
    for name, module in modules.items():
        where = f"module {name!r} ({type(module).__name__}) in modules.json of {checkpoint.name!r}"
        if isinstance(module, Transformer):
            sizes["token_embeddings"] = module.get_embedding_dimension()
        elif isinstance(module, StaticEmbedding):
            sizes["sentence_embedding"] = module.get_embedding_dimension()
        elif isinstance(module, Pooling):
            width = sizes.get("token_embeddings")
            if width is not None and width != module.embedding_dimension:
                raise ValueError(
                    f"{where}: its config.json gives word_embedding_dimension {module.embedding_dimension}, but the "
                    f"transformer before it gives token embeddings of size {width}"
                )
            sizes["sentence_embedding"] = module.get_embedding_dimension()
        elif isinstance(module, (Dense, Normalize)):
            if module.module_input_name not in produced:
                raise ValueError(
                    f"{where}: module_input_name {module.module_input_name!r} is not a feature the modules before "
                    f"it produce ({sorted(produced)}); is it misspelled?"
                )
            width = sizes.get(module.module_input_name)
            if isinstance(module, Dense):
                if width is not None and width != module.in_features:
                    raise ValueError(f"{where}: in_features is {module.in_features}, but its input "
                                     f"{module.module_input_name!r} has size {width}")
                width = module.out_features
            if width is not None:
                sizes[module.module_output_name] = width
            produced.add(module.module_output_name)
        produced.update(_PRODUCED.get(type(module).__name__, ()))


_POOLING_FIELDS = {"embedding_dimension": int, "word_embedding_dimension": int, "pooling_mode": (str, list),
                   "include_prompt": bool}
_DENSE_FIELDS = {"in_features": int, "out_features": int, "bias": bool, "use_residual": bool,
                 "activation_function": str, "module_input_name": str, "module_output_name": str}


def _load_pooling(checkpoint: Checkpoint) -> Pooling:
    config = read_json(checkpoint, "config.json", fields=_POOLING_FIELDS)
    path = posixpath.join(checkpoint.subfolder, "config.json")
    if config is None:
        raise FileNotFoundError(checkpoint.missing_message(path))
    try:
        return Pooling.from_config(config)
    except ValueError as err:  # say which file holds the bad value
        raise ValueError(f"{path} of {checkpoint.name!r}: {err}") from None


# modules.json "type" -> loader. Every spelling sentence-transformers has written: the classic
# `sentence_transformers.models.<Name>`, the module paths of releases 5.4 to 6, and the short names.
def _load_static_embedding(checkpoint: Checkpoint) -> nn.Module:
    from headway.sentence.static_embedding import StaticEmbedding

    return StaticEmbedding.load(checkpoint)


_LOADERS = {"Transformer": Transformer.load, "Pooling": _load_pooling, "Dense": Dense.load, "Normalize": Normalize.load,
            "StaticEmbedding": _load_static_embedding}
MODULE_TYPES: dict[str, str] = {
    "sentence_transformers.models.Transformer": "Transformer",
    "sentence_transformers.models.transformer.Transformer": "Transformer",
    "sentence_transformers.base.modules.Transformer": "Transformer",
    "sentence_transformers.base.modules.transformer.Transformer": "Transformer",
    "sentence_transformers.sentence_transformer.modules.Transformer": "Transformer",
    "sentence_transformers.sentence_transformer.modules.transformer.Transformer": "Transformer",
    "models.Transformer": "Transformer",
    "Transformer": "Transformer",
    "sentence_transformers.models.Pooling": "Pooling",
    "sentence_transformers.models.pooling.Pooling": "Pooling",
    "sentence_transformers.sentence_transformer.modules.Pooling": "Pooling",
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling": "Pooling",
    "models.Pooling": "Pooling",
    "Pooling": "Pooling",
    "sentence_transformers.models.Dense": "Dense",
    "sentence_transformers.models.dense.Dense": "Dense",
    "sentence_transformers.base.modules.Dense": "Dense",
    "sentence_transformers.base.modules.dense.Dense": "Dense",
    "sentence_transformers.sentence_transformer.modules.Dense": "Dense",
    "sentence_transformers.sentence_transformer.modules.dense.Dense": "Dense",
    "models.Dense": "Dense",
    "Dense": "Dense",
    "sentence_transformers.models.Normalize": "Normalize",
    "sentence_transformers.models.normalize.Normalize": "Normalize",
    "sentence_transformers.base.modules.Normalize": "Normalize",
    "sentence_transformers.base.modules.normalize.Normalize": "Normalize",
    "sentence_transformers.sentence_transformer.modules.Normalize": "Normalize",
    "sentence_transformers.sentence_transformer.modules.normalize.Normalize": "Normalize",
    "models.Normalize": "Normalize",
    "Normalize": "Normalize",
    "sentence_transformers.models.StaticEmbedding": "StaticEmbedding",
    "sentence_transformers.models.StaticEmbedding.StaticEmbedding": "StaticEmbedding",
    "sentence_transformers.sentence_transformer.modules.StaticEmbedding": "StaticEmbedding",
    "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding": "StaticEmbedding",
    "StaticEmbedding": "StaticEmbedding",
}


def load_module(type_name: str, checkpoint: Checkpoint, path: str,
                transformer_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """The module ``modules.json`` describes with ``type_name``, read from folder ``path``.

    ``transformer_kwargs`` (``model_kwargs``, ``processor_kwargs``, ``config_kwargs``) go to a Transformer.
    """
    kind = MODULE_TYPES.get(type_name)
    if kind is None:
        raise ValueError(
            f"modules.json of {checkpoint.name!r} names the module type {type_name!r}, which headway does not "
            f"support (it never imports classes named in model files). Supported: Transformer, Pooling, Dense, "
            f"Normalize, StaticEmbedding, spelled as any of: {', '.join(sorted(MODULE_TYPES))}"
        )
    try:
        if kind == "Transformer":
            return Transformer.load(sub_checkpoint(checkpoint, path), **(transformer_kwargs or {}))
        return _LOADERS[kind](sub_checkpoint(checkpoint, path))
    except FileNotFoundError as err:  # say which module of modules.json wanted the file
        raise FileNotFoundError(f"modules.json of {checkpoint.name!r}: the {kind} module in folder {path!r}: {err}"
                                ) from None
