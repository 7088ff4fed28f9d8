"""PreTrainedModel: building, loading and saving models.

Loading never initialises a weight that the checkpoint is about to replace: the model is built on the
``meta`` device (shapes only, no memory), checkpoint tensors are assigned in place of the meta ones, and
only the modules that own weights the checkpoint lacks (a new task head) are materialised and
initialised. Parameters shared inside the model (tied embeddings, aliased biases) are recorded before
loading and shared again after it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn
from typing_extensions import Self

from headway.configuration import PretrainedConfig
from headway.model_checks import (
    check_buildable,
    check_initializer_range,
    check_layers_against_weights,
    check_model_fits,
    estimated_parameter_count,  # noqa: F401 - imported from here too
)
from headway.nn.layers import Embedding
from headway.outputs import ModelOutput

logger = logging.getLogger(__name__)

# Set while a model called with return_dict=False runs, so that the models it calls inside (a head's bare
# model) still return output objects: only the outermost call turns its output into a tuple.
_tuple_call = threading.local()

M = TypeVar("M", bound="PreTrainedModel")

# from_pretrained keywords accepted for compatibility that change nothing here.
_IGNORED_LOAD_KWARGS = ("low_cpu_mem_usage", "attn_implementation", "_fast_init", "offload_folder", "variant")

_DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``torch.float16``, ``"float16"`` or ``"torch.float16"`` -> torch.float16; None stays None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name in _DTYPES:
            return _DTYPES[name]
    raise ValueError(f"Unknown dtype {dtype!r}; expected a torch.dtype, 'auto', or one of {sorted(_DTYPES)}")


def _set_tensor(root: nn.Module, name: str, tensor: torch.Tensor | nn.Parameter) -> None:
    module_path, _, attr = name.rpartition(".")
    module = root.get_submodule(module_path) if module_path else root
    if attr in module._parameters:
        module._parameters[attr] = tensor if isinstance(tensor, nn.Parameter) else nn.Parameter(tensor)
    else:
        module._buffers[attr] = tensor


class PreTrainedModel(nn.Module):
    """Base class of every model: ``from_pretrained``, ``save_pretrained``, ``from_config``.

    Subclasses set ``config_class`` and ``base_model_prefix`` (the attribute holding the bare model in
    head models, e.g. ``"bert"``), call ``self.post_init()`` at the end of ``__init__``, and may set:

    - ``_tied_weights_keys``: {target: source} parameter names tied when ``config.tie_word_embeddings``;
    - ``_keys_to_ignore_on_load_unexpected``: regexes of checkpoint keys to drop silently;
    - ``_keys_to_ignore_on_load_missing``: regexes of model keys whose absence is not reported.

    A module may define ``tensor_from_checkpoint(attr, tensor)``: loading then puts what it returns (a
    view, say the transpose of a layout the checkpoint keeps) in place of its parameter ``attr``.

    ``_init_weights(module)`` is called per module, and when loading only for the modules that own a
    weight the checkpoint lacks: a family-specific rule must recognise the module it applies to
    (the leaf ``nn.Embedding``, say), not rely on being called from its parent.
    """

    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    main_input_name: ClassVar[str] = "input_ids"
    _tied_weights_keys: ClassVar[dict[str, str]] = {}
    _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = []
    _keys_to_ignore_on_load_missing: ClassVar[list[str]] = []

    def __init__(self, config: PretrainedConfig) -> None:
        if not isinstance(config, PretrainedConfig):
            raise TypeError(
                f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}"
            )
        check_model_fits(config)
        check_buildable(config)
        super().__init__()
        self.config = config
        # A plain attribute, as in the reference: peft reads it from the instance's __dict__ to record the
        # base model of an adapter (adapter_config.json's base_model_name_or_path).
        self.name_or_path = config.name_or_path

    def __call__(self, *args: Any, return_dict: bool | None = None, **kwargs: Any) -> Any:
        """Run ``forward``; ``return_dict=False`` (or ``config.return_dict = False``) returns the output's
        non-None fields as a tuple, as the reference does (``loss, logits = model(..., return_dict=False)``)."""
        if return_dict is None:
            return_dict = self.config.return_dict or getattr(_tuple_call, "active", False)
        if return_dict:
            return super().__call__(*args, **kwargs)
        outer = getattr(_tuple_call, "active", False)
        _tuple_call.active = True
        try:
            out = super().__call__(*args, **kwargs)
        finally:
            _tuple_call.active = outer
        return out.to_tuple() if isinstance(out, ModelOutput) else out

    # -- initialisation ------------------------------------------------------------------------------
    def post_init(self) -> None:
        """Initialise every weight and tie shared ones; call at the end of a subclass ``__init__``."""
        self.init_weights()

    def init_weights(self) -> None:
        if next(self.parameters(), torch.empty(0)).device.type != "meta":
            check_initializer_range(self.config)
            self.apply(self._init_weights)
        self.tie_weights()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's default initialisation (normal(0, initializer_range), zero biases)."""
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()

    def tie_weights(self) -> None:
        """Share each ``_tied_weights_keys`` target with its source when the config asks for it."""
        if not getattr(self.config, "tie_word_embeddings", True):
            return
        for target, source in self._tied_weights_keys.items():
            _set_tensor(self, target, self.get_parameter(source))

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute each layer's activations in the backward pass instead of storing them."""
        found = False
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True
                found = True
        if not found:
            raise ValueError(f"{type(self).__name__} does not support gradient checkpointing")

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    def enable_input_require_grads(self) -> None:
        """Make the input embeddings' output require gradients, so that a checkpointed stack whose
        parameters are all frozen (adapters such as peft's LoRA train inside it) still back-propagates."""

        def require_grads(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            output.requires_grad_(True)

        self.disable_input_require_grads()
        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(require_grads)

    def disable_input_require_grads(self) -> None:
        """Remove the hook :meth:`enable_input_require_grads` added, if any."""
        hook = self.__dict__.pop("_require_grads_hook", None)
        if hook is not None:
            hook.remove()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    # -- embeddings -------------------------------------------------------------------------------------
    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    def get_input_embeddings(self) -> nn.Embedding:
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} does not define get_input_embeddings")
        return base.get_input_embeddings()

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} does not define set_input_embeddings")
        base.set_input_embeddings(embeddings)

    def get_output_embeddings(self) -> nn.Module | None:
        return None

    def resize_token_embeddings(self, new_num_tokens: int, pad_to_multiple_of: int | None = None) -> nn.Embedding:
        """Grow or shrink the vocabulary (after ``tokenizer.add_tokens``); new rows are initialised."""
        if pad_to_multiple_of:
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        old = self.get_input_embeddings()
        new = Embedding(new_num_tokens, old.embedding_dim, padding_idx=old.padding_idx)
        new.to(device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        n = min(old.num_embeddings, new_num_tokens)
        with torch.no_grad():
            new.weight[:n] = old.weight[:n]
        self.set_input_embeddings(new)
        output = self.get_output_embeddings()
        if output is not None and not getattr(self.config, "tie_word_embeddings", True):
            grown = nn.Linear(output.in_features, new_num_tokens, bias=output.bias is not None)
            grown.to(device=output.weight.device, dtype=output.weight.dtype)
            self._init_weights(grown)
            with torch.no_grad():
                grown.weight[:n] = output.weight[:n]
            output.weight = grown.weight
        if output is not None and getattr(output, "bias", None) is not None:
            bias = output.bias
            grown_bias = torch.zeros(new_num_tokens, dtype=bias.dtype, device=bias.device)
            grown_bias[:n] = bias.data[:n]
            bias.data = grown_bias  # in place: aliases of this bias (e.g. an MLM head's) follow
        if output is not None:
            output.out_features = new_num_tokens
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    # -- facts --------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    @classmethod
    def can_generate(cls) -> bool:
        """Whether the model has ``generate`` (a head inheriting ``GenerationMixin``, which says True) and
        so a ``generation_config``, loaded and saved with it."""
        return False

    # -- building ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PretrainedConfig, *, dtype: str | torch.dtype | None = None,
                    torch_dtype: str | torch.dtype | None = None) -> Self:
        """A randomly initialised model for ``config``."""
        model = cls(config)
        dtype = resolve_dtype(dtype or torch_dtype)
        if dtype is not None:
            model.to(dtype)
        return model

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        config: PretrainedConfig | None = None,
        dtype: str | torch.dtype | None = None,
        torch_dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        device_map: str | torch.device | None = None,
        ignore_mismatched_sizes: bool = False,
        use_safetensors: bool | None = None,
        output_loading_info: bool = False,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> Self | tuple[Self, dict[str, list[str]]]:
        """Load a checkpoint (folder, cached or packaged Hub id, or a download).

        Keyword arguments naming config fields (``num_labels=3``, ``hidden_dropout_prob=0.2``) override
        the checkpoint's config. ``dtype="auto"`` keeps the checkpoint's dtype; the default is float32.
        ``gguf_file="model.Q4_1.gguf"`` (a file in the folder or Hub repo, or a path) loads a llama.cpp
        GGUF file instead: config from its metadata, weights dequantised to ``dtype``.
        """
        from headway.checkpoint import load_state_dict
        from headway.configuration import load_config_dict
        from headway.gguf import GGUFCheckpoint
        from headway.hub import pop_hub_kwargs, resolve

        gguf_file = kwargs.pop("gguf_file", None)
        if gguf_file is not None or isinstance(name_or_path, GGUFCheckpoint):
            checkpoint = GGUFCheckpoint.resolve(name_or_path, gguf_file, **pop_hub_kwargs(kwargs))
        else:
            checkpoint = resolve(name_or_path, **pop_hub_kwargs(kwargs))
        for key in _IGNORED_LOAD_KWARGS:
            kwargs.pop(key, None)
        if config is None:
            data = checkpoint.config_dict() if isinstance(checkpoint, GGUFCheckpoint) else load_config_dict(checkpoint)
            if cls.config_class.model_type and data.get("model_type") not in (None, cls.config_class.model_type):
                logger.warning(
                    "%s is a %r checkpoint, loaded into %s (model_type %r): results may be wrong.",
                    checkpoint.name, data.get("model_type"), cls.__name__, cls.config_class.model_type,
                )
            config = cls.config_class.from_dict(data)
            config.name_or_path = checkpoint.name
        elif not isinstance(config, PretrainedConfig):
            raise TypeError(f"config must be a PretrainedConfig, got {type(config).__name__}")
        if "id2label" in kwargs and "label2id" not in kwargs:
            kwargs["label2id"] = {label: int(i) for i, label in kwargs["id2label"].items()}
        if "id2label" in kwargs:
            kwargs["id2label"] = {int(i): label for i, label in kwargs["id2label"].items()}
        for key, value in kwargs.items():
            if key != "num_labels" and not hasattr(config, key):
                raise TypeError(
                    f"{cls.__name__}.from_pretrained() got an unexpected keyword argument {key!r}: it is "
                    f"neither a loading option nor a field of {type(config).__name__}"
                )
            setattr(config, key, value)

        if state_dict is not None:
            weights = state_dict
        elif isinstance(checkpoint, GGUFCheckpoint):  # dequantised one tensor at a time, straight to dtype
            weights = checkpoint.state_dict(_choose_dtype(dtype if dtype is not None else torch_dtype, config, {}))
        else:
            weights = load_state_dict(checkpoint, use_safetensors=use_safetensors)
        check_layers_against_weights(config, weights.keys(), _weights_source(checkpoint, weights))
        target_dtype = _choose_dtype(dtype if dtype is not None else torch_dtype, config, weights)
        target_device = torch.device(_choose_device(device if device is not None else device_map))

        with torch.device("meta"):
            model = cls(config)
        info = model._load_weights(
            weights, dtype=target_dtype, device=target_device, ignore_mismatched_sizes=ignore_mismatched_sizes
        )
        model._report_loading(info, checkpoint.name)
        if model.can_generate():
            model.load_generation_config(checkpoint)  # generation_config.json, when the checkpoint has one
        model.eval()
        return (model, info) if output_loading_info else model

    def _load_weights(
        self,
        state: Mapping[str, torch.Tensor],
        *,
        dtype: torch.dtype,
        device: torch.device,
        ignore_mismatched_sizes: bool,
    ) -> dict[str, list[str]]:
        """Put checkpoint tensors in place of this (meta) model's; initialise the rest."""
        # One walk over the modules finds every slot a checkpoint can fill: a parameter, or a persistent
        # buffer, by its full name. Names sharing one Parameter (ties, aliases) form a group, loaded once
        # and shared again after.
        modules = list(self.named_modules(remove_duplicate=False))
        slots: dict[str, tuple[nn.Module, str]] = {}  # full name -> (owning module, attribute)
        groups: dict[int | str, list[str]] = {}
        for prefix, module in modules:
            dot = f"{prefix}." if prefix else ""
            for key, param in module._parameters.items():
                if param is not None:
                    slots[dot + key] = (module, key)
                    groups.setdefault(id(param), []).append(dot + key)
            for key, buffer in module._buffers.items():
                if buffer is not None and key not in module._non_persistent_buffers_set:
                    slots[dot + key] = (module, key)
                    groups[dot + key] = [dot + key]

        def current(name: str) -> torch.Tensor:
            module, key = slots[name]
            return module._parameters[key] if key in module._parameters else module._buffers[key]

        key_map = self._map_checkpoint_keys(list(state.keys()), set(slots))  # model key -> checkpoint key
        loaded: dict[str, torch.Tensor] = {}  # every name of a group the checkpoint provides
        missing, mismatched, used = [], [], set()
        for names in groups.values():
            found = next((n for n in names if n in key_map), None)
            if found is None:
                missing.append(names[0])
                continue
            used.update(key_map[n] for n in names if n in key_map)
            tensor = state[key_map[found]]
            shape = tuple(tensor.shape)
            module, key = slots[found]
            if hasattr(module, "tensor_from_checkpoint"):  # a layer keeping a checkpoint layout (GPT-2's Conv1D)
                tensor = module.tensor_from_checkpoint(key, tensor)
            expected = tuple(current(found).shape)
            if tuple(tensor.shape) != expected:
                if not ignore_mismatched_sizes:
                    raise ValueError(
                        f"Checkpoint tensor {key_map[found]!r} has shape {shape} but "
                        f"{type(self).__name__} expects {expected} for {found!r}. If this is a new task head "
                        "(e.g. another num_labels), pass ignore_mismatched_sizes=True to initialise it anew."
                    )
                mismatched.append(f"{found}: checkpoint {tuple(tensor.shape)} vs model {expected}")
                missing.append(found)
                continue
            tensor = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else None)
            for n in names:
                loaded[n] = tensor

        # Materialise and initialise only the modules that own something the checkpoint lacks
        # (or non-persistent buffers, which modules rebuild in ``reset_buffers``).
        initialising = False
        for prefix, module in modules:
            dot = f"{prefix}." if prefix else ""
            own = [*module._parameters.items(), *module._buffers.items()]
            if all(dot + k in loaded for k, t in own if t is not None and t.is_meta):
                continue
            drawn = [k for k, t in own if t is not None and t.is_meta and dot + k not in loaded]
            if drawn and not initialising:
                check_initializer_range(self.config)  # once, before the first weight is drawn
                initialising = True
            module.to_empty(device=device, recurse=False)
            self._init_weights(module)
            if hasattr(module, "reset_buffers"):
                module.reset_buffers()
            for key, param in module._parameters.items():
                if param is not None and param.is_floating_point():
                    module._parameters[key] = nn.Parameter(param.detach().to(dtype), param.requires_grad)
        for names in groups.values():
            if names[0] in loaded:
                shared = loaded[names[0]]
                if isinstance(current(names[0]), nn.Parameter):
                    shared = nn.Parameter(shared)
            else:
                shared = current(names[0])
            for n in names:
                module, key = slots[n]
                if key in module._parameters:
                    module._parameters[key] = shared
                else:
                    module._buffers[key] = shared
        still_meta = [
            f"{prefix}.{k}" if prefix else k
            for prefix, module in modules
            for k, t in [*module._parameters.items(), *module._buffers.items()]
            if t is not None and t.is_meta
        ]
        assert not still_meta, f"left on the meta device: {still_meta}"

        ignore_unexpected = [re.compile(p) for p in self._keys_to_ignore_on_load_unexpected]
        ignore_missing = [re.compile(p) for p in self._keys_to_ignore_on_load_missing]
        tied_targets = set(self._tied_weights_keys) if getattr(self.config, "tie_word_embeddings", True) else set()
        return {
            "missing_keys": [
                k for k in missing if k not in tied_targets and not any(p.search(k) for p in ignore_missing)
            ],
            "unexpected_keys": [
                k for k in state if k not in used and not any(p.search(k) for p in ignore_unexpected)
            ],
            "mismatched_keys": mismatched,
        }

    @classmethod
    def _rename_checkpoint_key(cls, key: str) -> str:
        """Hook for families whose older checkpoints used other names. Default: legacy LayerNorm names."""
        if key.endswith(".gamma"):
            return key[: -len("gamma")] + "weight"
        if key.endswith(".beta"):
            return key[: -len("beta")] + "bias"
        return key

    def _map_checkpoint_keys(self, checkpoint_keys: list[str], model_keys: set[str]) -> dict[str, str]:
        """Model key -> checkpoint key, adding or stripping ``base_model_prefix`` where needed."""
        renamed = {self._rename_checkpoint_key(k): k for k in checkpoint_keys}
        prefix = self.base_model_prefix + "." if self.base_model_prefix else ""
        if prefix:
            model_has = any(k.startswith(prefix) for k in model_keys)
            ckpt_has = any(k.startswith(prefix) for k in renamed)
            if model_has and not ckpt_has:  # bare checkpoint into a model with a head
                renamed = {prefix + k: v for k, v in renamed.items()}
            elif ckpt_has and not model_has:  # checkpoint with a head into the bare model
                renamed = {k.removeprefix(prefix) if k.startswith(prefix) else k: v for k, v in renamed.items()}
        return {k: v for k, v in renamed.items() if k in model_keys}

    def _report_loading(self, info: dict[str, list[str]], source: str) -> None:
        name = type(self).__name__
        if info["missing_keys"]:
            logger.warning(
                "Some weights of %s were not in the checkpoint %s and are newly initialized: %s\n"
                "You should probably train this model on a downstream task before using it for predictions.",
                name, source, info["missing_keys"],
            )
        if info["unexpected_keys"]:
            logger.warning(
                "Some weights of the checkpoint %s were not used by %s: %s\n"
                "This is expected when the checkpoint was trained for another task or architecture.",
                source, name, info["unexpected_keys"],
            )
        if info["mismatched_keys"]:
            logger.warning(
                "Some weights of %s were re-initialized because their shapes differ from the checkpoint %s: %s",
                name, source, info["mismatched_keys"],
            )

    # -- saving --------------------------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        safe_serialization: bool = True,
        max_shard_size: int | str = "5GB",
        is_main_process: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write config.json and model.safetensors (sharded past ``max_shard_size``), as a whole.

        The files are staged and the folder swapped into place (``headway.atomic``): a reader sees the
        old checkpoint or the new one, never a mix; files of the folder that this save does not write
        (a tokenizer, a README) are kept. Tied weights are written once, under the source name, as the
        reference does.
        """
        from headway.checkpoint import save_folder, save_state_dict, staged_folder

        if not safe_serialization:
            raise ValueError("headway writes safetensors only; safe_serialization=False is not supported")
        for key in ("push_to_hub", "token", "repo_id"):
            if kwargs.pop(key, None):
                raise ValueError(f"{key} is not supported by save_pretrained; use huggingface_hub to upload")
        if kwargs:
            raise TypeError(f"save_pretrained() got unexpected keyword arguments {sorted(kwargs)}")
        folder = save_folder(save_directory, create=False)
        if not is_main_process:
            return
        state = dict(state_dict) if state_dict is not None else self._deduplicated_state_dict()
        self.config.architectures = [type(self).__name__]
        self.config.dtype = str(self.dtype).removeprefix("torch.")
        with staged_folder(folder) as stage:
            save_state_dict(state, stage.path, max_shard_size=max_shard_size)
            self.config.save_pretrained(stage.path)
            if self.can_generate():
                self.generation_config.save_pretrained(stage.path)

    def _deduplicated_state_dict(self) -> dict[str, torch.Tensor]:
        tied_targets = set(self._tied_weights_keys) if getattr(self.config, "tie_word_embeddings", True) else set()
        seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
        out: dict[str, torch.Tensor] = {}
        full = self.state_dict()
        # Tie targets last, so the source name is the one written.
        for name in sorted(full, key=lambda n: n in tied_targets):
            tensor = full[name].detach()
            ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            if ident in seen:
                continue
            seen[ident] = name
            out[name] = tensor
        # safetensors refuses tensors sharing memory; anything still sharing is a view: copy it.
        storages: set[int] = set()
        for name, tensor in out.items():
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in storages:
                out[name] = tensor.clone()
            storages.add(ptr)
        return {k: out[k] for k in full if k in out}


def _weights_source(checkpoint: Any, weights: Mapping[str, torch.Tensor]) -> str:
    """The weight files of a checkpoint, for messages: ``'model.safetensors' of 'org/model'``."""
    files = sorted({p.name for p in getattr(weights, "files", {}).values()})
    named = ", ".join(files[:2]) + (f" and {len(files) - 2} more" if len(files) > 2 else "")
    return f"{named or 'the weights'} of {checkpoint.name!r}"


def _choose_dtype(dtype: Any, config: PretrainedConfig, weights: Mapping[str, torch.Tensor]) -> torch.dtype:
    if dtype == "auto":
        if config.dtype:
            return resolve_dtype(config.dtype)
        for key in weights:
            tensor = weights[key]
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32
    return resolve_dtype(dtype) or torch.float32


def _choose_device(device: Any) -> str | torch.device:
    if device is None:
        return "cpu"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, int):
        return torch.device("cuda", device)
    if isinstance(device, dict):
        raise ValueError(  # noqa: TRY004 - a supported type, an unsupported use
            "device_map dicts (splitting a model across devices) are not supported; pass one device"
        )
    return device
