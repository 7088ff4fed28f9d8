"""CrossEncoder: scores text pairs jointly with a sequence-classification model (rerankers, NLI, STS).

    from headway import CrossEncoder
    model = CrossEncoder("path/to/reranker")
    model.predict([("How many people live in Berlin?", "Berlin has 3.5 million people.")])
    model.rank("How many people live in Berlin?", documents, top_k=3)

Same batching (pairs sorted by total length, longest first), activation and outputs as
sentence-transformers 6. The activation applied to the logits is, first found: the one given, the
``activation_fn`` of ``config_sentence_transformers.json``, the one the checkpoint's ``config.json``
names (``sentence_transformers.activation_fn``, or the v3 ``sbert_ce_default_activation_function``),
else sigmoid for one label and identity otherwise. Only ``torch.nn`` activations are taken from files.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import trange

from headway.atomic import save_folder, staged_folder
from headway.hub import resolve
from headway.sentence.base import SentenceModelMixin, check_requirements
from headway.sentence.loading import (
    FORMAT_VERSION,
    default_device,
    headway_version,
    hub_options,
    refuse_file_path,
)
from headway.sentence.model_card import ModelCardData
from headway.sentence.modules import ACTIVATIONS, activation_name, read_json, single_device_map, write_json

logger = logging.getLogger(__name__)

_CE_MODULE_TYPE = "sentence_transformers.base.modules.transformer.Transformer"
_RENAMED = {"automodel_args": "model_kwargs", "tokenizer_args": "processor_kwargs", "config_args": "config_kwargs",
            "default_activation_function": "activation_fn"}


def _as_pairs(inputs: Any) -> tuple[list[tuple[str, str]], bool]:
    """``(pairs, was_single)``; a TypeError names the first element that is not a pair of strings."""
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()
    if type(inputs).__name__ == "Column":  # a datasets column
        inputs = list(inputs)
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"predict() expects a pair of strings or a list of pairs, got {type(inputs).__name__}")
    single = len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    items = [inputs] if single else list(inputs)
    for index, pair in enumerate(items):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise TypeError(f"predict() expects pairs of two strings; element {index} is a {type(pair).__name__}: {pair!r}")
    return [(a, b) for a, b in items], single


def _activation(name: str, where: str) -> nn.Module | None:
    """The ``torch.nn`` activation a file names; None (with a warning) for anything else."""
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]()
    logger.warning("Activation function path %r is not trusted, using default activation function instead. "
                   "(%s; headway only takes torch.nn activations from files: %s)", name, where, sorted(ACTIVATIONS))
    return None


class CrossEncoder(SentenceModelMixin, nn.Module):
    """A sequence-classification model over text pairs.

    Args:
        model_name_or_path: A folder or Hub id holding a ``*ForSequenceClassification`` checkpoint (a bare
            encoder gets a new one-label head).
        num_labels: Override the number of labels (a new head when it differs from the checkpoint's).
        max_length: Truncate pairs to this many tokens (default: the tokenizer's limit, capped at the
            model's position table).
        activation_fn: Applied to the logits in ``predict`` (default: see the module docstring).
        device: "cpu", "cuda", ...; default: cuda, then mps, then cpu.
        prompts: Prompt name -> text put before the first text of each pair.
        default_prompt_name: The prompt used when ``predict`` is given none.
        model_kwargs: Passed to the model's ``from_pretrained`` (``dtype``...); ``automodel_args`` is
            its deprecated name.
        processor_kwargs: Passed to the tokenizer's ``from_pretrained`` (``tokenizer_args``).
        config_kwargs: Config fields to override (``config_args``), e.g. ``classifier_dropout``.
        classifier_dropout: Deprecated: ``config_kwargs={"classifier_dropout": ...}``.
        model_card_data: What the model card written on save says.
        backend: "torch", the only one headway runs.
        **kwargs: Hub options: ``revision``, ``cache_folder``, ``local_files_only``, ``token``.
    """

    model_type: ClassVar[str] = "CrossEncoder"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike,
        *,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        device: str | torch.device | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        classifier_dropout: float | None = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        **kwargs: Any,
    ) -> None:
        from headway.auto import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        super().__init__()
        renamed = {new: kwargs.pop(old) for old, new in _RENAMED.items() if old in kwargs}
        for old, new in _RENAMED.items():
            if new in renamed:
                logger.warning("The `%s` argument was renamed and is now deprecated, please use `%s` instead.", old,
                               new)
        model_kwargs = single_device_map({**renamed.get("model_kwargs", {}), **(model_kwargs or {})})
        processor_kwargs = {**renamed.get("processor_kwargs", {}), **(tokenizer_kwargs or {}), **(processor_kwargs or {})}
        config_kwargs = {**renamed.get("config_kwargs", {}), **(config_kwargs or {})}
        activation_fn = activation_fn if activation_fn is not None else renamed.get("activation_fn")
        if classifier_dropout is not None:
            logger.warning("The `classifier_dropout` argument is deprecated, please use "
                           "`config_kwargs={'classifier_dropout': %s}` instead.", classifier_dropout)
            config_kwargs["classifier_dropout"] = classifier_dropout
        if backend != "torch":
            raise ValueError(f"backend {backend!r} is not supported: headway runs models with torch only")
        refuse_file_path(model_name_or_path)
        checkpoint = resolve(model_name_or_path, **hub_options(kwargs, "CrossEncoder"))
        settings = read_json(checkpoint, "config_sentence_transformers.json",
                             fields={"activation_fn": str, "requirements": dict}) or {}
        check_requirements(settings.get("requirements"), checkpoint.name)
        converted = settings.get("model_type", "CrossEncoder") != "CrossEncoder"  # e.g. a SentenceTransformer save
        config = AutoConfig.from_pretrained(checkpoint)
        architectures = config.architectures or []
        if num_labels is None and not any(a.endswith("ForSequenceClassification") for a in architectures):
            num_labels = 1  # a bare encoder: one relevance score
        if num_labels is not None:
            config.num_labels = num_labels
        for key, value in config_kwargs.items():
            setattr(config, key, value)
        dtype = model_kwargs.pop("torch_dtype", model_kwargs.pop("dtype", None))
        self.model = AutoModelForSequenceClassification.from_pretrained(checkpoint, config=config, dtype=dtype,
                                                                        **model_kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint, **processor_kwargs)
        self.tokenizer.name_or_path = checkpoint.name
        if max_length is None:
            max_length = min(self.tokenizer.model_max_length,
                             getattr(config, "max_position_embeddings", self.tokenizer.model_max_length))
        self.tokenizer.model_max_length = max_length
        saved_prompts = {} if converted else dict(settings.get("prompts") or {})
        self.prompts: dict[str, str] = {**saved_prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or (None if converted else settings.get("default_prompt_name"))
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"Default prompt name {self.default_prompt_name!r} not found in the configured prompts "
                             f"dictionary with keys {list(self.prompts)!r}.")
        if activation_fn is None and settings.get("activation_fn") and not converted:
            activation_fn = _activation(settings["activation_fn"], f"config_sentence_transformers.json of {checkpoint.name}")
        self.activation_fn = activation_fn if activation_fn is not None else self._default_activation()
        self._init_model_card(model_card_data, checkpoint.get("README.md"))
        if not model_kwargs.get("device_map") or device is not None:
            self.to(device if device is not None else default_device())
        self.eval()

    def _default_activation(self) -> Callable[[Tensor], Tensor]:
        settings = getattr(self.config, "sentence_transformers", None) or {}
        name = settings.get("activation_fn") or getattr(self.config, "sbert_ce_default_activation_function", None)
        if name is not None and (found := _activation(name, "config.json")) is not None:
            return found
        return nn.Sigmoid() if self.num_labels == 1 else nn.Identity()

    @property
    def default_activation_function(self) -> Callable[[Tensor], Tensor]:
        """Deprecated name of ``activation_fn``."""
        warnings.warn("The `default_activation_function` property was renamed and is now deprecated. Please use "
                      "`activation_fn` instead.", DeprecationWarning, stacklevel=2)
        return self.activation_fn

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def max_length(self) -> int:
        return self.tokenizer.model_max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    max_seq_length = max_length

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def is_singular_input(self, inputs: Any) -> bool:
        """True for one pair (a tuple or list of two strings, or a 1-D array of two), False for a batch."""
        if isinstance(inputs, np.ndarray):
            return inputs.ndim == 1 and len(inputs) > 0
        return isinstance(inputs, (list, tuple)) and len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))

    def preprocess(self, pairs: list[tuple[str, str]], prompt: str | None = None,
                   processing_kwargs: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """Tokenize pairs together (``[CLS] a [SEP] b [SEP]``), the prompt put before each first text."""
        options = {"padding": True, "truncation": "longest_first", **((processing_kwargs or {}).get("text") or {}),
                   "return_tensors": "pt"}
        firsts = [(prompt or "") + a for a, _ in pairs]
        return dict(self.tokenizer(firsts, [b for _, b in pairs], **options))

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        """Adds ``scores``: the logits, (B, num_labels)."""
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        return {**features, "scores": self.model(**inputs).logits}

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ValueError(f"Prompt name {name!r} not found in the configured prompts dictionary with keys "
                             f"{list(self.prompts)!r}.")
        return self.prompts[name]

    @torch.inference_mode()
    def predict(
        self,
        inputs: Any = None,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        processing_kwargs: dict[str, dict[str, Any]] | None = None,
        sentences: Any = None,
    ) -> np.ndarray | Tensor | list[Tensor]:
        """Scores of text pairs: (N,) for one label, (N, num_labels) otherwise; one pair gives one row.

        Args:
            inputs: A (text, text) pair or a list of them (``sentences`` is the older name).
            prompt_name / prompt: A prompt put before each first text (the prompt itself wins).
            batch_size: Pairs per forward pass.
            show_progress_bar: Default: on when this module logs at INFO or DEBUG.
            activation_fn: Applied to the logits instead of ``self.activation_fn`` (this call only).
            apply_softmax: Softmax over the labels (when there are several).
            convert_to_numpy: A numpy array (the default) rather than a list of tensors.
            convert_to_tensor: One tensor (wins over ``convert_to_numpy``).
            processing_kwargs: Tokenizer options for this call, e.g. ``{"text": {"max_length": 64}}``.
        """
        pairs, single = _as_pairs(sentences if inputs is None and sentences is not None else inputs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        activation_fn = activation_fn if activation_fn is not None else self.activation_fn
        prompt = self._resolve_prompt(prompt, prompt_name)
        device = self.device
        order = np.argsort([-(len(a) + len(b)) for a, b in pairs])  # longest first, as the reference
        scores: list[Tensor] = []
        for start in trange(0, len(pairs), batch_size, desc="Batches", disable=not show_progress_bar):
            batch = [pairs[i] for i in order[start : start + batch_size]]
            features = self.preprocess(batch, prompt=prompt, processing_kwargs=processing_kwargs)
            logits = self({key: value.to(device) for key, value in features.items()})["scores"]
            if logits.is_floating_point() and torch.finfo(logits.dtype).bits < 32:
                logits = logits.float()  # activations of half-precision logits would collapse into ties
            if activation_fn is not None:
                logits = activation_fn(logits)
            if self.num_labels == 1 and logits.ndim > 1:
                logits = logits.squeeze(-1)
            if apply_softmax and logits.ndim > 1:
                logits = torch.nn.functional.softmax(logits, dim=1)
            scores.extend(logits)
        scores = [scores[i] for i in np.argsort(order)]
        result: Any = torch.stack(scores) if scores else torch.tensor([], device=device)
        if convert_to_tensor:
            pass
        elif convert_to_numpy:
            result = result.float().cpu().numpy() if len(result) else np.array([])
        else:
            result = list(result)
        return result[0] if single else result

    def rank(
        self,
        query: str,
        documents: list[str],
        *,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        apply_softmax: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **deprecated: Any,
    ) -> list[dict[str, Any]]:
        """Documents by decreasing score for ``query``: ``[{"corpus_id", "score"(, "text")}]``, top_k of them.

        Scores are Python floats. ``convert_to_numpy`` / ``convert_to_tensor`` are accepted and ignored
        (with a warning).

        Raises:
            ValueError: The model has more than one label.
            TypeError: ``query`` or a document is not a string.
        """
        for name in ("convert_to_numpy", "convert_to_tensor"):
            if deprecated.pop(name, None) is not None:
                logger.warning("The `%s` argument of CrossEncoder.rank() is deprecated and ignored: scores are "
                               "returned as floats.", name)
        if deprecated:
            raise TypeError(f"rank() got unexpected keyword arguments: {sorted(deprecated)}")
        if self.num_labels != 1:
            raise ValueError("CrossEncoder.rank() only works for models with num_labels=1. Consider using "
                             "CrossEncoder.predict() with input pairs instead.")
        if not isinstance(query, str):
            raise TypeError(f"rank() expects the query to be a string, got {type(query).__name__}")
        if isinstance(documents, str) or not isinstance(documents, (list, tuple)):
            raise TypeError(f"rank() expects a list of document strings, got {type(documents).__name__}")
        scores = self.predict([(query, doc) for doc in documents], batch_size=batch_size,
                              show_progress_bar=show_progress_bar, activation_fn=activation_fn,
                              apply_softmax=apply_softmax, prompt_name=prompt_name, prompt=prompt,
                              convert_to_tensor=True).tolist()
        results = [{"corpus_id": i, "score": float(score)} for i, score in enumerate(scores)]
        if return_documents:
            for hit in results:
                hit["text"] = documents[hit["corpus_id"]]
        return sorted(results, key=lambda hit: hit["score"], reverse=True)[:top_k]

    def save(self, path: str | os.PathLike | None, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the model, its tokenizer, the sentence-transformers 6 files and a model card, as a whole.

        The activation is written both to ``config_sentence_transformers.json`` (with the prompts; read by
        sentence-transformers 6, with ``modules.json``) and to ``config.json``
        (``sentence_transformers.activation_fn``, read by releases 4 and 5), so every release loads the
        folder with it. One staging folder is swapped into place at the end
        (``headway.atomic.staged_folder``). ``safe_serialization`` is accepted: always safetensors.
        """
        if path is None:
            return
        save_folder(path, create=False)  # refuses an empty or file path before any work
        self.model.config.sentence_transformers = {"activation_fn": activation_name(self.activation_fn)}
        with staged_folder(path) as stage:
            self.model.save_pretrained(stage.path)
            self.tokenizer.save_pretrained(stage.path)
            # modules.json and the Transformer's config as sentence-transformers 6 writes them: one sequence-
            # classification transformer whose logits are the scores. Releases before 6 read config.json only.
            write_json(stage.path / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _CE_MODULE_TYPE}])
            write_json(stage.path / "sentence_bert_config.json", {
                "transformer_task": "sequence-classification",
                "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
                "module_output_name": "scores",
            })
            write_json(stage.path / "config_sentence_transformers.json", {
                "__version__": {"sentence_transformers": FORMAT_VERSION, "headway": headway_version(),
                                "pytorch": torch.__version__},
                "model_type": "CrossEncoder",
                "activation_fn": activation_name(self.activation_fn),
                "prompts": self.prompts,
                "default_prompt_name": self.default_prompt_name,
            })
            if create_model_card:
                self._write_model_card(stage.path, model_name)

    save_pretrained = save
