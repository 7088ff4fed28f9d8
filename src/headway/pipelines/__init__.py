"""``pipeline(task, model)``: a task's model and tokenizer behind one call.

    >>> from headway import pipeline
    >>> embed = pipeline("feature-extraction", model="sentence-transformers/all-MiniLM-L6-v2")
    >>> embed("Hello world")  # (1, tokens, 384) nested lists

The task table below is literal: task -> the pipeline class, the Auto class that loads its model, and the
reference library's default checkpoint. Classes are imported only when their task is asked for.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from headway.pipelines.pt_utils import KeyDataset, KeyPairDataset

logger = logging.getLogger(__name__)

_P = "headway.pipelines."

TASKS: dict[str, dict[str, str]] = {
    "feature-extraction": {
        "impl": _P + "feature_extraction:FeatureExtractionPipeline",
        "auto": "AutoModel",
        "default": "distilbert/distilbert-base-cased",
    },
    "text-classification": {
        "impl": _P + "text_classification:TextClassificationPipeline",
        "auto": "AutoModelForSequenceClassification",
        "default": "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
    },
    "token-classification": {
        "impl": _P + "token_classification:TokenClassificationPipeline",
        "auto": "AutoModelForTokenClassification",
        "default": "dbmdz/bert-large-cased-finetuned-conll03-english",
    },
    "question-answering": {
        "impl": _P + "question_answering:QuestionAnsweringPipeline",
        "auto": "AutoModelForQuestionAnswering",
        "default": "distilbert/distilbert-base-cased-distilled-squad",
    },
    "fill-mask": {
        "impl": _P + "fill_mask:FillMaskPipeline",
        "auto": "AutoModelForMaskedLM",
        "default": "distilbert/distilroberta-base",
    },
    "zero-shot-classification": {
        "impl": _P + "zero_shot_classification:ZeroShotClassificationPipeline",
        "auto": "AutoModelForSequenceClassification",
        "default": "facebook/bart-large-mnli",
    },
    "text-generation": {
        "impl": _P + "text_generation:TextGenerationPipeline",
        "auto": "AutoModelForCausalLM",
        "default": "HuggingFaceTB/SmolLM3-3B",
    },
    # The three seq2seq tasks transformers 5 removed, with transformers 4.57's defaults and revisions.
    "text2text-generation": {
        "impl": _P + "text2text_generation:Text2TextGenerationPipeline",
        "auto": "AutoModelForSeq2SeqLM",
        "default": "google-t5/t5-base",
        "revision": "a9723ea",
    },
    "summarization": {
        "impl": _P + "text2text_generation:SummarizationPipeline",
        "auto": "AutoModelForSeq2SeqLM",
        "default": "sshleifer/distilbart-cnn-12-6",
        "revision": "a4f8f3e",
    },
    # Also asked for as "translation_xx_to_yy"; the default model exists for these language pairs only.
    "translation": {
        "impl": _P + "text2text_generation:TranslationPipeline",
        "auto": "AutoModelForSeq2SeqLM",
        "default": "google-t5/t5-base",
        "revision": "a9723ea",
        "default_languages": "en_to_fr en_to_de en_to_ro",
    },
}

TASK_ALIASES: dict[str, str] = {"sentiment-analysis": "text-classification", "ner": "token-classification"}

# Architecture name suffix -> task, for pipeline(model=...) without a task (first match wins).
ARCHITECTURE_TASKS: tuple[tuple[str, str], ...] = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForPreTraining", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),  # refined by task_specific_params, see below
    ("MTModel", "translation"),  # MarianMTModel
    ("Model", "feature-extraction"),
)

_HUB_KEYS = ("revision", "token", "local_files_only", "cache_dir", "force_download", "use_auth_token")
_IGNORED = ("use_fast", "framework", "trust_remote_code", "_commit_hash", "code_revision")

__all__ = ["TASKS", "TASK_ALIASES", "KeyDataset", "KeyPairDataset", "check_task", "get_supported_tasks", "pipeline"]


def get_supported_tasks() -> list[str]:
    """Every task name ``pipeline`` accepts, aliases included, sorted."""
    return sorted([*TASKS, *TASK_ALIASES])


def check_task(task: str) -> tuple[str, dict[str, str]]:
    """The canonical task name of ``task`` (aliases resolved) and its table entry.

    Raises:
        TypeError: ``task`` is not a str.
        ValueError: unknown task; the message lists the supported ones.
    """
    if not isinstance(task, str):
        raise TypeError(f"task must be a str such as 'text-classification', got {type(task).__name__}")
    name = TASK_ALIASES.get(task, task)
    if name in TASKS:
        return name, TASKS[name]
    if name.startswith("translation"):  # "translation_en_to_fr": the task keeps its name (T5 reads it)
        tokens = name.split("_")
        if len(tokens) == 4 and tokens[0] == "translation" and tokens[2] == "to" and tokens[1] and tokens[3]:
            return name, TASKS["translation"]
        raise ValueError(f"Invalid translation task {task!r}: use the 'translation_XX_to_YY' format.")
    raise ValueError(
        f"Unknown task {task!r}. Supported tasks: {', '.join(get_supported_tasks())} "
        "(and translation_XX_to_YY)."
    )


def _default_model(task: str, entry: dict[str, str]) -> str:
    """The reference's default checkpoint for ``task``; translation has one for some language pairs only."""
    pairs = entry.get("default_languages")
    if pairs is not None:
        pair = task.partition("_")[2]
        if not pair:
            raise ValueError(
                'The task defaults can\'t be correctly selected. You probably meant "translation_xx_to_yy" '
                f"({', '.join('translation_' + p for p in pairs.split())}) or a model."
            )
        if pair not in pairs.split():
            raise ValueError(
                f"The task does not provide any default models for the languages {pair!r}; pass a model."
            )
    return entry["default"]


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _task_from_architecture(architectures: list[str] | None, config: Any, source: str) -> str:
    """Infer the task from a checkpoint's architecture names (the reference asks the Hub instead)."""
    for name in architectures or []:
        for suffix, task in ARCHITECTURE_TASKS:
            if name.endswith(suffix):
                label2id = getattr(config, "label2id", None) or {}
                if task == "text-classification" and any(k.lower().startswith("entail") for k in label2id):
                    task = "zero-shot-classification"  # an NLI head: its natural use
                if task == "text2text-generation":
                    task = _seq2seq_task(config)
                logger.info("No task given: %s is a %s, so the task is %r", source, name, task)
                return task
    raise ValueError(
        f"Cannot infer the task of {source}: its config names no known architecture ({architectures}). "
        f"Pass a task, one of: {', '.join(get_supported_tasks())}."
    )


def _seq2seq_task(config: Any) -> str:
    """The task of a seq2seq checkpoint, told by its ``task_specific_params`` (the reference asks the Hub,
    whose tags agree on the usual checkpoints): translation entries (T5) make it a translation model,
    a summarization entry alone (BART-CNN) a summarizer; anything else is text2text-generation."""
    params = getattr(config, "task_specific_params", None) or {}
    if not isinstance(params, dict):
        return "text2text-generation"
    if any(key.startswith("translation") for key in params):
        return "translation"
    if "summarization" in params:
        return "summarization"
    return "text2text-generation"


def pipeline(
    task: str | None = None,
    model: Any = None,
    config: Any = None,
    tokenizer: Any = None,
    device: int | str | Any = None,
    dtype: Any = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> Any:
    """Build the pipeline of ``task`` on ``model``.

    Args:
        task: A task name (see ``get_supported_tasks()``); None infers it from the checkpoint's config.
        model: A checkpoint id, a local folder, or a loaded headway model. None uses the reference
            library's default checkpoint for the task.
        config: A config (or checkpoint id/folder to read one from) to load the model with.
        tokenizer: A tokenizer or a checkpoint id/folder; defaults to the model's checkpoint.
        device: Where to run: None (a GPU when there is one, as the reference), -1/"cpu", a GPU index,
            "cuda:1", or a ``torch.device``.
        dtype: Weight dtype to load with (``torch.float16``, "bfloat16", "auto"); default float32.
        batch_size: Rows per forward pass (default 1).
        **kwargs: ``model_kwargs`` (dict for ``from_pretrained``), ``gguf_file`` (a llama.cpp file in the
            checkpoint: model and tokenizer are read from it), hub options (``revision``, ``token``,
            ``local_files_only``, ``cache_dir``), ``progress_bar``, and default task parameters
            (``top_k=3``, ``aggregation_strategy="simple"``, ...).

    Returns:
        The task's ``Pipeline``.

    Raises:
        ValueError: Unknown task, a task that cannot be inferred, or a model without the task's head.
        FileNotFoundError: The checkpoint (or, with no model given, the task's default) is not on this
            machine and downloads are off; the message says how to pass a local model.
    """
    from headway import auto

    model_kwargs = dict(kwargs.pop("model_kwargs", None) or {})
    hub = {key: kwargs.pop(key) for key in _HUB_KEYS if key in kwargs}
    gguf = {"gguf_file": kwargs.pop("gguf_file")} if kwargs.get("gguf_file") is not None else {}
    kwargs.pop("gguf_file", None)
    if kwargs.pop("trust_remote_code", None):
        raise ValueError("trust_remote_code=True is refused: headway never runs code that comes with a checkpoint.")
    for key in _IGNORED:
        kwargs.pop(key, None)
    device_map = kwargs.pop("device_map", None)
    if device is None and isinstance(device_map, (str, int)) and device_map != "auto":
        device = device_map
    dtype = dtype if dtype is not None else kwargs.pop("torch_dtype", None)
    pipeline_class = kwargs.pop("pipeline_class", None)

    if task is None and model is None:
        raise ValueError("pipeline() needs a task or a model (or both), e.g. pipeline('text-classification').")
    if task is not None:
        task, entry = check_task(task)
    if model is None and tokenizer is not None:
        raise ValueError(
            "A tokenizer was given without a model: it may not match the task's default model. Pass model=... too."
        )
    if isinstance(model, os.PathLike):
        model = os.fspath(model)

    defaulted = model is None
    if defaulted:
        model = _default_model(task, entry)  # the table's "revision" is the reference's pin, for the record
        logger.warning(
            "No model was supplied, defaulted to %s (the reference's default for %s). Pass model=... in production.",
            model, task,
        )
    try:
        if isinstance(config, (str, os.PathLike)):
            config = auto.AutoConfig.from_pretrained(config, **hub)
        elif config is None and isinstance(model, str):
            config = auto.AutoConfig.from_pretrained(model, **hub, **gguf)
    except FileNotFoundError as err:
        if not defaulted:
            raise
        raise FileNotFoundError(
            f"No model was given, so pipeline({task!r}) uses the reference's default checkpoint {model!r}, which is "
            f"not on this machine.\nPass a local model instead: pipeline({task!r}, model='path/to/folder') with a "
            "folder holding config.json, the weights and the tokenizer files, or model=<a loaded model> and "
            f"tokenizer=<its tokenizer>.\n{err}"
        ) from None

    if task is None:
        if isinstance(model, str):
            task = _task_from_architecture(config.architectures, config, repr(model))
        else:
            task = _task_from_architecture([type(model).__name__], model.config, type(model).__name__)
        task, entry = check_task(task)

    tokenizer_source = model if isinstance(model, str) else None
    if isinstance(model, str):
        auto_class = getattr(auto, entry["auto"])
        if dtype is not None:
            model_kwargs.setdefault("dtype", dtype)
        model = auto_class.from_pretrained(model, config=config, **hub, **gguf, **model_kwargs)
    elif not hasattr(model, "config"):
        raise TypeError(f"model must be a checkpoint id, a folder or a loaded headway model, got {type(model).__name__}")

    if tokenizer is None:
        source = tokenizer_source or model.config.name_or_path
        if not source:
            raise ValueError(f"Cannot tell which tokenizer goes with this {type(model).__name__}; pass tokenizer=...")
        tokenizer = source
    if isinstance(tokenizer, (str, os.PathLike)):
        # A GGUF file holds the tokenizer too: read it from there when the tokenizer is the model's.
        same = tokenizer_source is None or os.fspath(tokenizer) == tokenizer_source
        tokenizer = auto.AutoTokenizer.from_pretrained(tokenizer, **hub, **(gguf if same else {}))

    cls = pipeline_class or _import(entry["impl"])
    return cls(model=model, tokenizer=tokenizer, task=task, device=device, batch_size=batch_size, **kwargs)


def __getattr__(name: str) -> Any:
    """The pipeline classes, imported on first use (``from headway.pipelines import FillMaskPipeline``)."""
    for entry in TASKS.values():
        module, _, cls = entry["impl"].partition(":")
        if cls == name:
            return getattr(importlib.import_module(module), cls)
    if name == "Pipeline":
        from headway.pipelines.base import Pipeline

        return Pipeline
    raise AttributeError(f"module 'headway.pipelines' has no attribute {name!r}")
