"""SentenceTransformer: texts -> fixed-size embeddings, reading and writing the sentence-transformers format.

    from headway import SentenceTransformer
    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    embeddings = model.encode(["I love machine learning", "I am expert in AI"])  # (2, 384)
    model.similarity(embeddings, embeddings)

A model is an ``nn.Sequential`` of the modules listed in its ``modules.json`` (Transformer, Pooling,
Dense, Normalize). ``encode`` batches texts sorted by length, longest first (less padding), and puts
the results back in input order, as sentence-transformers does, so the batches and numbers are the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import trange

from headway.atomic import staged_folder
from headway.hub import Checkpoint, resolve
from headway.nn.linear import exact_matmul
from headway.sentence import util
from headway.sentence.base import SentenceModelMixin, check_requirements
from headway.sentence.inputs import as_text_batch, check_options, check_truncate_dim
from headway.sentence.loading import (
    FORMAT_VERSION,
    check_module_entries,
    default_device,
    headway_version,
    hub_options,
    resolve_checkpoint,
)
from headway.sentence.model_card import ModelCardData
from headway.sentence.modules import (
    Pooling,
    Transformer,
    check_module_chain,
    load_module,
    read_json,
    write_json,
)

logger = logging.getLogger(__name__)

OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)


_ST_CONFIG_FIELDS = {"model_type": str, "prompts": dict, "default_prompt_name": str, "similarity_fn_name": str,
                     "truncate_dim": int, "requirements": dict}


class SentenceTransformer(SentenceModelMixin, nn.Sequential):
    """A sentence embedding model in the sentence-transformers folder format.

    Args:
        model_name_or_path: A folder or Hub id. A folder without ``modules.json`` (a plain transformers
            checkpoint) becomes Transformer + mean pooling.
        modules: Build the model from these modules instead of loading one.
        device: "cpu", "cuda", ...; default: cuda, then mps, then cpu.
        prompts: Prompt name -> text prepended to inputs (overrides the saved ones).
        default_prompt_name: The prompt used when ``encode`` is given none.
        similarity_fn_name: "cosine" (default), "dot", "euclidean" or "manhattan".
        truncate_dim: Keep only this many embedding dimensions.
        model_kwargs: Passed to the transformer's ``from_pretrained`` (``dtype``, ``device_map``...).
        processor_kwargs: Passed to the tokenizer's ``from_pretrained``; ``tokenizer_kwargs`` is its older name.
        config_kwargs: Config fields of the transformer to override (``hidden_dropout_prob=0.2``...).
        model_card_data: What the model card written on save says (a ``ModelCardData``).
        backend: "torch", the only one headway runs.
        **kwargs: Hub options: ``revision``, ``cache_folder``, ``local_files_only``, ``token`` (and its
            deprecated name ``use_auth_token``). ``trust_remote_code=True`` is refused: headway never runs
            code that comes with a model.
    """

    SUPPORTED_SIMILARITY_FN_NAMES: ClassVar[tuple[str, ...]] = tuple(util.SIMILARITY_FUNCTIONS)
    model_type: ClassVar[str] = "SentenceTransformer"
    _default_prompts: ClassVar[dict[str, str | None]] = {"query": None, "document": None}

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        modules: Iterable[nn.Module] | None = None,
        device: str | torch.device | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        **kwargs: Any,
    ) -> None:
        hub_kwargs = hub_options(kwargs, type(self).__name__)
        if backend != "torch":
            raise ValueError(f"backend {backend!r} is not supported: headway runs models with torch only")
        self.prompts: dict[str, str | None] = {**self._default_prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name
        self._similarity_fn_name: str | None = None
        self.similarity_fn_name = similarity_fn_name
        self.truncate_dim = check_truncate_dim(truncate_dim, None)
        readme = None
        if model_name_or_path is not None:
            if modules is not None:
                logger.warning("Both `model_name_or_path` and `modules` were given: the `modules` argument is "
                               "ignored and the model is loaded from %s.", model_name_or_path)
            checkpoint = resolve_checkpoint(model_name_or_path, hub_kwargs)
            transformer_kwargs = {"model_kwargs": model_kwargs, "processor_kwargs": processor_kwargs,
                                  "tokenizer_kwargs": tokenizer_kwargs, "config_kwargs": config_kwargs}
            named = self._load(checkpoint, {k: v for k, v in transformer_kwargs.items() if v})
            readme = checkpoint.get("README.md")
        elif modules is not None:
            named = OrderedDict((str(i), module) for i, module in enumerate(modules))
            if not named:
                raise ValueError("An empty modules list was passed: a SentenceTransformer needs at least one module "
                                 "(e.g. a Transformer and a Pooling)")
        else:
            raise ValueError("SentenceTransformer needs a model_name_or_path or a list of modules")
        super().__init__(named)
        self._init_model_card(model_card_data, readme)
        self.truncate_dim = check_truncate_dim(self.truncate_dim, self._full_dimension(), "truncate_dim")
        for key, value in self.prompts.items():
            self.prompts[key] = "" if value is None else value
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"Default prompt name {self.default_prompt_name!r} not found in the configured prompts dictionary "
                f"with keys {list(self.prompts)!r}."
            )
        if device is not None or not (model_kwargs or {}).get("device_map"):  # a device_map placed the weights
            self.to(device if device is not None else default_device())
        self.eval()

    # -- loading ------------------------------------------------------------------------------------
    def _load(self, checkpoint: Checkpoint, transformer_kwargs: dict[str, Any]) -> OrderedDict[str, nn.Module]:
        entries = read_json(checkpoint, "modules.json", expect=list)
        if entries is None:
            return self._default_modules(checkpoint, transformer_kwargs, f"No modules.json found for {checkpoint.name} "
                                         "(a plain transformers checkpoint has no modules.json)")
        check_module_entries(entries, checkpoint)
        config = read_json(checkpoint, "config_sentence_transformers.json", fields=_ST_CONFIG_FIELDS) or {}
        check_requirements(config.get("requirements"), checkpoint.name)
        for name, text in (config.get("prompts") or {}).items():
            if not isinstance(text, str):
                raise ValueError(  # noqa: TRY004 - bad file content
                    f"config_sentence_transformers.json of {checkpoint.name!r}: prompts[{name!r}] must be a "
                    f"string, got {type(text).__name__}"
                )
        default, known = config.get("default_prompt_name"), {**self.prompts, **(config.get("prompts") or {})}
        if self.default_prompt_name is None and default is not None and default not in known:
            raise ValueError(
                f"config_sentence_transformers.json of {checkpoint.name!r}: default_prompt_name {default!r:.80} is "
                f"not one of its prompts {sorted(known)}"
            )
        model_type = config.get("model_type", "SentenceTransformer")
        if model_type != "SentenceTransformer":
            return self._default_modules(checkpoint, transformer_kwargs,
                                         f"{checkpoint.name} is a {model_type}, not a SentenceTransformer")
        self._parse_model_config(config)
        if self.truncate_dim is None:
            self.truncate_dim = check_truncate_dim(
                config.get("truncate_dim"), None,
                f"config_sentence_transformers.json of {checkpoint.name!r}: truncate_dim")
        modules = OrderedDict(
            (str(entry.get("name", i)),
             load_module(entry["type"], checkpoint, entry.get("path", ""), transformer_kwargs))
            for i, entry in enumerate(entries)
        )
        check_module_chain(modules, checkpoint)
        return modules

    def _parse_model_config(self, config: dict[str, Any]) -> None:
        """Take the prompts, default prompt and similarity function a saved config holds, where not set already.

        A prompt set to None (not given) takes the saved text; any other value, "" included, is kept.
        """
        for name, text in (config.get("prompts") or {}).items():
            if self.prompts.get(name) is None:
                self.prompts[name] = text
        if self.default_prompt_name is None:
            self.default_prompt_name = config.get("default_prompt_name")
        if self._similarity_fn_name is None and config.get("similarity_fn_name") in util.SIMILARITY_FUNCTIONS:
            self.similarity_fn_name = config["similarity_fn_name"]  # other names (maxsim...) fall to the default

    @staticmethod
    def _get_model_type(model_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> str:
        """The ``model_type`` of a folder's config_sentence_transformers.json ("SentenceTransformer" by default)."""
        checkpoint = resolve(model_name_or_path, **hub_options(hub_kwargs, "SentenceTransformer"))
        config = read_json(checkpoint, "config_sentence_transformers.json", fields=_ST_CONFIG_FIELDS) or {}
        return config.get("model_type", "SentenceTransformer")

    @staticmethod
    def _default_modules(checkpoint: Checkpoint, transformer_kwargs: dict[str, Any], why: str
                         ) -> OrderedDict[str, nn.Module]:
        """Transformer + pooling (mean; last token for decoder-only models, whose last token sees all)."""
        transformer = Transformer.load(checkpoint, **transformer_kwargs)
        architectures = getattr(transformer.auto_model.config, "architectures", None) or [""]
        causal = architectures[0].endswith("ForCausalLM") and getattr(transformer.config, "is_causal", True)
        mode = "lasttoken" if causal else "mean"
        logger.warning("%s, initializing a new SentenceTransformer model with its transformer and %s pooling.",
                       why, "mean" if mode == "mean" else "last-token")
        return OrderedDict([("0", transformer), ("1", Pooling(transformer.get_embedding_dimension(), mode))])

    def __getitem__(self, idx: int | slice) -> nn.Module:
        if isinstance(idx, slice):  # nn.Sequential would call __init__ with an OrderedDict
            return type(self)(modules=list(self._modules.values())[idx], device=self.device,
                              prompts=dict(self.prompts), default_prompt_name=self.default_prompt_name,
                              similarity_fn_name=self._similarity_fn_name, truncate_dim=self.truncate_dim)
        return super().__getitem__(idx)

    # -- facts --------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        parameter = next(self.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    @property
    def tokenizer(self) -> Any:
        return self[0].tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self[0].tokenizer = value

    @property
    def max_seq_length(self) -> int:
        """Inputs are truncated to this many tokens."""
        return self[0].max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self[0].max_seq_length = value

    def _full_dimension(self) -> int | None:
        """Size of the vectors the modules produce, before ``truncate_dim``; None when none says."""
        return next((m.get_embedding_dimension() for m in reversed(self) if hasattr(m, "get_embedding_dimension")),
                    None)

    def get_sentence_embedding_dimension(self) -> int | None:
        """Size of the vectors ``encode`` returns (after ``truncate_dim``)."""
        dim = self._full_dimension()
        if self.truncate_dim is not None:
            return self.truncate_dim if dim is None else min(dim, self.truncate_dim)
        return dim

    get_embedding_dimension = get_sentence_embedding_dimension

    @contextlib.contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Within the ``with`` block, embeddings keep their first ``truncate_dim`` dimensions."""
        original = self.truncate_dim
        try:
            self.truncate_dim = check_truncate_dim(truncate_dim, self._full_dimension())
            yield
        finally:
            self.truncate_dim = original

    truncate_sentence_embeddings = truncate_embeddings

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Whether the Pooling module averages over the prompt's tokens too (False for INSTRUCTOR models)."""
        for module in self:
            if isinstance(module, Pooling):
                module.include_prompt = include_prompt
                return

    def _can_flatten_inputs(self) -> bool:
        """Whether batches may be packed without padding (the first module's ``can_flatten_inputs``)."""
        return isinstance(self[0], Transformer) and bool(getattr(self[0], "can_flatten_inputs", False))

    def get_model_kwargs(self) -> list[str]:
        """The extra keyword arguments ``encode`` accepts: those some module's ``forward`` uses."""
        return sorted({name for module in self for name in getattr(module, "forward_kwargs", ())})

    @property
    def similarity_fn_name(self) -> str:
        """Name of the function ``similarity`` uses; "cosine" unless the model or the caller set one."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | util.SimilarityFunction | None) -> None:
        value = getattr(value, "value", value)  # a SimilarityFunction member
        if value is not None and value not in util.SIMILARITY_FUNCTIONS:
            hint = (" (MaxSim scores multi-vector embeddings, as a MultiVectorEncoder in sentence-transformers "
                    "does; a SentenceTransformer gives one vector per text)" if "maxsim" in str(value) else "")
            raise ValueError(
                f"similarity_fn_name must be one of {list(util.SIMILARITY_FUNCTIONS)}, got {value!r}{hint}"
            )
        self._similarity_fn_name = value

    def similarity(self, embeddings1: util.ArrayLike, embeddings2: util.ArrayLike) -> Tensor:
        """(N, M) scores between every pair, with ``similarity_fn_name``."""
        return util.SIMILARITY_FUNCTIONS[self.similarity_fn_name][0](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: util.ArrayLike, embeddings2: util.ArrayLike) -> Tensor:
        """(N,) scores of ``embeddings1[i]`` with ``embeddings2[i]``."""
        return util.SIMILARITY_FUNCTIONS[self.similarity_fn_name][1](embeddings1, embeddings2)

    def preprocess(self, inputs: list[str] | list[tuple[str, str]], prompt: str | None = None,
                   **kwargs: Any) -> dict[str, Any]:
        """Tokenized features of a batch (the first module's ``preprocess``), the prompt put before each text."""
        first = self[0]
        if not len(inputs):
            return {}
        if hasattr(first, "preprocess"):
            return first.preprocess(list(inputs), prompt=prompt, **kwargs)
        return first.tokenize([prompt + text for text in inputs] if prompt else list(inputs))

    def tokenize(self, texts: list[str] | list[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
        """``preprocess`` under its older name (kept: the trainer's collator calls it)."""
        return self.preprocess(texts, **kwargs)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the modules in turn; each gets the keyword arguments named in its ``forward_kwargs``."""
        for module in self:
            names = getattr(module, "forward_kwargs", ())
            features = module(features, **{k: v for k, v in kwargs.items() if k in names})
        return features

    # -- encoding -------------------------------------------------------------------------------------
    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            if prompt_name is not None:
                logger.warning("Provide either a `prompt`, a `prompt_name`, or neither, but not both. Ignoring the "
                               "`prompt_name` in favor of `prompt`.")
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ValueError(f"Prompt name {prompt_name!r} not found in the configured prompts dictionary with "
                                 f"keys {list(self.prompts)!r}.")
            return self.prompts[prompt_name]
        if self.default_prompt_name is not None:
            return self.prompts.get(self.default_prompt_name)
        return None

    @torch.inference_mode()
    def encode(
        self,
        inputs: str | list[str] | list[tuple[str, str]] | None = None,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str | None = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        task: str | None = None,
        processing_kwargs: dict[str, dict[str, Any]] | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> np.ndarray | Tensor | list[Tensor] | list[dict[str, Any]]:
        """Embed one text (a 1-D result) or a list of texts (2-D).

        Args:
            inputs: A str, a list of str (or of text pairs), a numpy array or a ``datasets`` column of
                them. ``sentences=`` is the older name.
            prompt_name: Key of ``self.prompts`` to prepend; ``prompt``: the text itself (wins).
            batch_size: Texts per forward pass.
            show_progress_bar: Default: on when this module logs at INFO or DEBUG.
            output_value: "sentence_embedding"; "token_embeddings" (a list of (tokens, dim) tensors,
                padding removed); None (a dict of every feature per text).
            precision: "float32" (or None), or quantized: "int8", "uint8", "binary", "ubinary"
                (see ``util.quantize_embeddings``; int8/uint8 ranges come from these embeddings).
            convert_to_numpy: Return a numpy array (the default) rather than a list of tensors.
            convert_to_tensor: Return one tensor (wins over ``convert_to_numpy``).
            device: Run on this device (the model moves there); a list (``["cuda:0", "cuda:1"]``): one
                worker process per device (see ``headway.sentence.multi_process``).
            normalize_embeddings: L2-normalize the sentence embeddings.
            truncate_dim: Keep the first dimensions only (default: the model's ``truncate_dim``).
            task: "query" or "document" (what ``encode_query`` / ``encode_document`` pass); modules that
                route by task read it, others ignore it.
            processing_kwargs: Tokenizer options for this call only, e.g. ``{"text": {"max_length": 64}}``.
            pool: A pool from ``start_multi_process_pool``: encode in its worker processes (a list of
                devices as ``device`` does the same with a pool for this call only).
            chunk_size: Texts per chunk handed to a pool worker (default: about a tenth of each worker's share).
            **kwargs: Extra arguments for the modules' ``forward`` (see ``get_model_kwargs``).

        Raises:
            TypeError: ``inputs`` is not a str or a list of str (the bad element is named), or an option
                of the wrong type (named).
            ValueError: Unknown ``precision`` / ``output_value`` / ``prompt_name``, ``batch_size`` < 1,
                ``truncate_dim`` outside 1 .. the embedding dimension, or keyword arguments no module uses.
        """
        if inputs is None and "sentences" in kwargs:
            inputs = kwargs.pop("sentences")
        texts, single = as_text_batch(inputs, "encode")
        precision = "float32" if precision is None else precision
        devices, device = (device, None) if isinstance(device, (list, tuple)) else (None, device)
        check_options(prompt_name=prompt_name, prompt=prompt, show_progress_bar=show_progress_bar,
                       convert_to_numpy=convert_to_numpy, convert_to_tensor=convert_to_tensor,
                       normalize_embeddings=normalize_embeddings, device=device, batch_size=batch_size,
                       precision=precision, output_value=output_value)
        if precision not in util.PRECISIONS:
            raise ValueError(f"Precision {precision!r} is not supported; expected one of {list(util.PRECISIONS)}")
        if output_value not in OUTPUT_VALUES:
            raise ValueError(f"output_value must be one of {list(OUTPUT_VALUES)}, got {output_value!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        accepted = self.get_model_kwargs()
        if unused := sorted(set(kwargs) - set(accepted)):
            name = type(self).__name__
            raise ValueError(
                f"{name}.encode() has been called with additional keyword arguments that this model does not use: "
                f"{unused}. As per {name}.get_model_kwargs(), "
                + (f"the valid additional keyword arguments are: {accepted}." if accepted else
                   "this model does not accept any additional keyword arguments.")
            )
        truncate_dim = check_truncate_dim(truncate_dim, self._full_dimension())
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        if convert_to_tensor:
            convert_to_numpy = False
        if output_value != "sentence_embedding":
            convert_to_tensor = convert_to_numpy = False
        prompt = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        batch_size = int(batch_size)
        if device is not None and torch.device(device) != self.device:
            self.to(device)
        # int8/uint8 buckets come from these very embeddings: a 1e-7 difference at a bucket edge would
        # flip a value, so compute them exactly as the reference does.
        exact = precision in ("int8", "uint8")
        options = {"prompt": prompt, "batch_size": batch_size, "output_value": output_value,
                   "normalize": normalize_embeddings, "truncate_dim": truncate_dim,
                   "preprocess_kwargs": {"task": task, "processing_kwargs": processing_kwargs},
                   "forward_kwargs": {"task": task, **kwargs} if task is not None else kwargs}
        if pool is not None or devices is not None:
            from headway.sentence.multi_process import encode_with_pool

            embeddings = encode_with_pool(self, texts, pool=pool, devices=devices, chunk_size=chunk_size,
                                          progress=show_progress_bar, exact=exact, embed_kwargs=options)
        else:
            with exact_matmul() if exact else contextlib.nullcontext():
                embeddings = self._embed(texts, progress=show_progress_bar, to_cpu=convert_to_numpy, **options)
        if len(embeddings) and precision != "float32":
            embeddings = util.quantize_embeddings(embeddings, precision=precision)
        if convert_to_tensor:
            embeddings = torch.as_tensor(embeddings)
        elif convert_to_numpy:
            if not len(embeddings):
                embeddings = np.array([])
            elif isinstance(embeddings, Tensor):
                embeddings = (embeddings.float() if embeddings.dtype == torch.bfloat16 else embeddings).numpy()
        elif output_value == "sentence_embedding":
            embeddings = list(torch.from_numpy(embeddings) if isinstance(embeddings, np.ndarray) else embeddings)
        return embeddings[0] if single else embeddings

    def _embed(self, texts: list[str], *, prompt: str | None, batch_size: int, progress: bool,
               output_value: str | None, to_cpu: bool, normalize: bool, truncate_dim: int | None,
               preprocess_kwargs: dict[str, Any], forward_kwargs: dict[str, Any]) -> Tensor | list[Any]:
        """Forward passes over length-sorted batches; results in input order."""
        self.eval()
        device = self.device
        lengths = [len(text) if isinstance(text, str) else sum(map(len, text)) for text in texts]
        order = np.argsort([-length for length in lengths])  # longest first: the reference's batches
        results: list[Any] = []
        for start in trange(0, len(texts), batch_size, desc="Batches", disable=not progress):
            batch = [texts[i] for i in order[start : start + batch_size]]
            features = {key: value.to(device) if isinstance(value, Tensor) else value
                        for key, value in self.preprocess(batch, prompt=prompt, **preprocess_kwargs).items()}
            out = self(features, **forward_kwargs)
            if truncate_dim is not None:
                out["sentence_embedding"] = util.truncate_embeddings(out["sentence_embedding"], truncate_dim)
            if output_value == "token_embeddings":
                mask = out["attention_mask"]
                # Up to the last attended token (right padding removed).
                last = torch.where(mask.any(1), mask.shape[1] - 1 - mask.flip(1).ne(0).int().argmax(1), 0)
                results.extend(row[: int(n) + 1] for row, n in zip(out["token_embeddings"], last))
            elif output_value is None:
                n = len(batch)
                results.extend(
                    {k: v[i] if isinstance(v, Tensor) and v.ndim and v.shape[0] == n else v for k, v in out.items()}
                    for i in range(n)
                )
            else:
                vectors = out["sentence_embedding"]
                if normalize:
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                results.extend(vectors.cpu() if to_cpu else vectors)
        results = [results[i] for i in np.argsort(order)]
        if output_value == "sentence_embedding":
            return torch.stack(results) if results else torch.tensor([], device=device)
        return results

    def encode_query(self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None,
                     **kwargs: Any) -> Any:
        """``encode`` with ``task="query"`` and, unless a prompt is given, the "query" prompt."""
        if inputs is None and "sentences" in kwargs:
            inputs = kwargs.pop("sentences")
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs=inputs, prompt_name=prompt_name, prompt=prompt, task="query", **kwargs)

    def encode_document(self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None,
                        **kwargs: Any) -> Any:
        """``encode`` with ``task="document"`` and, unless a prompt is given, the first of the "document",
        "passage" and "corpus" prompts the model has."""
        if inputs is None and "sentences" in kwargs:
            inputs = kwargs.pop("sentences")
        if prompt_name is None and prompt is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(inputs=inputs, prompt_name=prompt_name, prompt=prompt, task="document", **kwargs)

    # -- several processes (headway.sentence.multi_process) -------------------------------------------
    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> dict[str, Any]:
        """Worker processes for ``encode(pool=...)``, one per device (None: every GPU, else 4 CPU workers).

        The model moves to the CPU and its weights into shared memory, which CPU workers use in place.
        """
        from headway.sentence.multi_process import start_multi_process_pool

        return start_multi_process_pool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: dict[str, Any]) -> None:
        """Terminate the workers of a pool from ``start_multi_process_pool`` and close its queues."""
        from headway.sentence.multi_process import stop_multi_process_pool

        stop_multi_process_pool(pool)

    def encode_multi_process(self, sentences: list[str], pool: dict[str, Any], prompt_name: str | None = None,
                             prompt: str | None = None, batch_size: int = 32, chunk_size: int | None = None,
                             show_progress_bar: bool | None = None, precision: str = "float32",
                             normalize_embeddings: bool = False, truncate_dim: int | None = None) -> np.ndarray:
        """Deprecated: ``encode(sentences, pool=pool, ...)`` does the same."""
        warnings.warn("encode_multi_process is deprecated: call encode(..., pool=pool) with the same arguments",
                      DeprecationWarning, stacklevel=2)
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, batch_size=batch_size,
                           show_progress_bar=show_progress_bar, precision=precision, convert_to_numpy=True,
                           convert_to_tensor=False, normalize_embeddings=normalize_embeddings,
                           truncate_dim=truncate_dim, pool=pool, chunk_size=chunk_size)

    # -- saving ---------------------------------------------------------------------------------------
    def fit(self, train_objectives: Any, **kwargs: Any) -> None:
        """sentence-transformers' legacy training API: ``[(dataloader, loss), ...]`` with ``epochs=``,
        ``warmup_steps=``... run through ``SentenceTransformerTrainer`` (see ``headway.sentence.fit``)."""
        from headway.sentence.fit import fit

        fit(self, train_objectives, **kwargs)

    def save(self, path: str | os.PathLike | None, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """Write the sentence-transformers folder format, the folder replaced as a whole (None: do nothing).

        Both headway and sentence-transformers load the result: ``modules.json``,
        ``config_sentence_transformers.json``, the transformer's files in the root, one ``<idx>_<Module>``
        folder per other module, and a model card (README.md, unless ``create_model_card=False``;
        ``model_name`` is the Hub id it names). Every module writes into one staging folder that is
        swapped into place at the end (``headway.atomic.staged_folder``); other files of the folder stay.
        ``train_datasets`` and ``safe_serialization`` are accepted for compatibility (always safetensors).
        """
        if path is None:
            return
        for idx, (name, module) in enumerate(self._modules.items()):
            if not hasattr(module, "save") or not hasattr(module, "st_type"):
                raise ValueError(f"Module {name} ({type(module).__name__}) cannot be saved in the folder format")
        with staged_folder(path) as stage:
            folder = stage.path
            entries = []
            for idx, (name, module) in enumerate(self._modules.items()):
                sub = "" if idx == 0 and hasattr(module, "preprocess") else f"{idx}_{type(module).__name__}"
                (folder / sub).mkdir(parents=True, exist_ok=True)
                try:
                    module.save(str(folder / sub), safe_serialization=safe_serialization)
                except TypeError:  # a module whose save() takes the folder only
                    module.save(str(folder / sub))
                entries.append({"idx": idx, "name": name, "path": sub, "type": module.st_type})
            config = {
                # Older readers index "sentence_transformers" here; it names the format version written.
                "__version__": {"sentence_transformers": FORMAT_VERSION, "headway": headway_version(),
                                "pytorch": torch.__version__},
                "model_type": "SentenceTransformer",
                "prompts": self.prompts,
                "default_prompt_name": self.default_prompt_name,
                "similarity_fn_name": self.similarity_fn_name,
            }
            if self.truncate_dim is not None:
                config["truncate_dim"] = self.truncate_dim
            write_json(folder / "config_sentence_transformers.json", config)
            write_json(folder / "modules.json", entries)
            if create_model_card:
                self._write_model_card(folder, model_name)
        logger.info("Saved %s to %s", type(self).__name__, stage.final)

    save_pretrained = save

    def __repr__(self) -> str:
        return super().__repr__() if self._modules else f"{type(self).__name__}()"


__all__ = ["SentenceTransformer", "as_text_batch", "check_truncate_dim", "default_device"]
