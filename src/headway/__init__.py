"""headway: run, fine-tune and serve transformers with the Hugging Face API, faster and safer.

The public names below are resolved lazily (PEP 562), so ``import headway`` imports no model code,
no tokenizer code and not even torch until a name that needs it is used. The model family classes
(``BertModel``, ``RobertaForMaskedLM``, ...) come from the family table in ``headway.models.registry``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from headway.models.registry import class_locations

__version__ = "0.1.0"

_PIPELINES = "headway.pipelines."
_TRAINING = "headway.training."

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # configs and models
    "PretrainedConfig": "headway.configuration",
    "PreTrainedConfig": "headway.configuration",
    "PreTrainedModel": "headway.modeling",
    "AutoConfig": "headway.auto",
    "AutoModel": "headway.auto",
    "AutoModelForSequenceClassification": "headway.auto",
    "AutoModelForTokenClassification": "headway.auto",
    "AutoModelForQuestionAnswering": "headway.auto",
    "AutoModelForMaskedLM": "headway.auto",
    "AutoModelForCausalLM": "headway.auto",
    "AutoModelForSeq2SeqLM": "headway.auto",
    "AutoModelForPreTraining": "headway.auto",
    "AutoModelForMultipleChoice": "headway.auto",
    "AutoTokenizer": "headway.auto",
    # tokenizers
    "PreTrainedTokenizerFast": "headway.tokenization",
    "BatchEncoding": "headway.tokenization",
    **dict.fromkeys(  # the family names (the ...Fast spellings are the same classes, as in transformers 5)
        ("AddedToken", "PreTrainedTokenizer", "PreTrainedTokenizerBase", "TokenizersBackend",
         "BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer", "DistilBertTokenizerFast",
         "RobertaTokenizer", "RobertaTokenizerFast", "XLMRobertaTokenizer", "XLMRobertaTokenizerFast",
         "MPNetTokenizer", "MPNetTokenizerFast", "GPT2Tokenizer", "GPT2TokenizerFast",
         "LlamaTokenizer", "LlamaTokenizerFast", "DebertaV2Tokenizer", "DebertaV2TokenizerFast",
         "T5Tokenizer", "T5TokenizerFast", "BartTokenizer", "BartTokenizerFast", "MBartTokenizer",
         "MBartTokenizerFast", "MBart50Tokenizer", "MBart50TokenizerFast", "PegasusTokenizer",
         "PegasusTokenizerFast", "MarianTokenizer", "MarianTokenizerFast"),
        "headway.tokenization",
    ),
    # generation settings, logits processors, stopping criteria, streamers
    "GenerationConfig": "headway.generation.config",
    "GenerationMixin": "headway.generation.generate",
    "DynamicCache": "headway.generation.cache",
    **dict.fromkeys(
        ("LogitsProcessor", "LogitsProcessorList", "TemperatureLogitsWarper", "TopKLogitsWarper",
         "TopPLogitsWarper", "MinPLogitsWarper", "TypicalLogitsWarper", "RepetitionPenaltyLogitsProcessor",
         "NoRepeatNGramLogitsProcessor", "NoBadWordsLogitsProcessor", "SuppressTokensLogitsProcessor",
         "SuppressTokensAtBeginLogitsProcessor", "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor",
         "ForcedBOSTokenLogitsProcessor", "ForcedEOSTokenLogitsProcessor", "InfNanRemoveLogitsProcessor",
         "LogitNormalization"),
        "headway.generation.processors",
    ),
    **dict.fromkeys(
        ("StoppingCriteria", "StoppingCriteriaList", "MaxLengthCriteria", "MaxTimeCriteria", "EosTokenCriteria",
         "StopStringCriteria"),
        "headway.generation.stopping",
    ),
    **dict.fromkeys(("BaseStreamer", "TextStreamer", "TextIteratorStreamer"), "headway.generation.streamers"),
    # pipelines
    "pipeline": "headway.pipelines",
    "Pipeline": _PIPELINES + "base",
    "FeatureExtractionPipeline": _PIPELINES + "feature_extraction",
    "FillMaskPipeline": _PIPELINES + "fill_mask",
    "QuestionAnsweringPipeline": _PIPELINES + "question_answering",
    "TextClassificationPipeline": _PIPELINES + "text_classification",
    "TextGenerationPipeline": _PIPELINES + "text_generation",
    "Text2TextGenerationPipeline": _PIPELINES + "text2text_generation",
    "SummarizationPipeline": _PIPELINES + "text2text_generation",
    "TranslationPipeline": _PIPELINES + "text2text_generation",
    "TokenClassificationPipeline": _PIPELINES + "token_classification",
    "ZeroShotClassificationPipeline": _PIPELINES + "zero_shot_classification",
    # sentence embeddings
    "SentenceTransformer": "headway.sentence",
    "CrossEncoder": "headway.sentence",
    # training
    "TrainingArguments": _TRAINING + "arguments",
    "Trainer": _TRAINING + "trainer",
    "TrainerCallback": _TRAINING + "callbacks",
    "TrainerState": _TRAINING + "callbacks",
    "TrainerControl": _TRAINING + "callbacks",
    "EarlyStoppingCallback": _TRAINING + "callbacks",
    "DataCollatorWithPadding": _TRAINING + "collators",
    "DataCollatorForTokenClassification": _TRAINING + "collators",
    "DataCollatorForLanguageModeling": _TRAINING + "collators",
    "DataCollatorForSeq2Seq": _TRAINING + "collators",
    "Seq2SeqTrainer": _TRAINING + "seq2seq",
    "Seq2SeqTrainingArguments": _TRAINING + "seq2seq",
    "default_data_collator": _TRAINING + "collators",
    "get_scheduler": _TRAINING + "schedules",
    "EvalPrediction": _TRAINING + "utils",
    "set_seed": _TRAINING + "utils",
    # model families: every config and model class of the family table
    **class_locations(),
}

# public name -> submodule exposed under that name (``from headway import util``, as sentence-transformers)
_LAZY_MODULES: dict[str, str] = {"util": "headway.sentence.util"}

__all__ = sorted([*_LAZY, *_LAZY_MODULES])  # noqa: PLE0605


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_LAZY_MODULES])


if TYPE_CHECKING:  # for type checkers and editors: every public name (tests/test_public_names.py checks it)
    from headway.auto import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForMultipleChoice,
        AutoModelForPreTraining,
        AutoModelForQuestionAnswering,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    from headway.configuration import PreTrainedConfig, PretrainedConfig
    from headway.generation.cache import DynamicCache
    from headway.generation.config import GenerationConfig
    from headway.generation.generate import GenerationMixin
    from headway.generation.processors import (
        ForcedBOSTokenLogitsProcessor,
        ForcedEOSTokenLogitsProcessor,
        InfNanRemoveLogitsProcessor,
        LogitNormalization,
        LogitsProcessor,
        LogitsProcessorList,
        MinLengthLogitsProcessor,
        MinNewTokensLengthLogitsProcessor,
        MinPLogitsWarper,
        NoBadWordsLogitsProcessor,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        SuppressTokensAtBeginLogitsProcessor,
        SuppressTokensLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
        TypicalLogitsWarper,
    )
    from headway.generation.stopping import (
        EosTokenCriteria,
        MaxLengthCriteria,
        MaxTimeCriteria,
        StoppingCriteria,
        StoppingCriteriaList,
        StopStringCriteria,
    )
    from headway.generation.streamers import BaseStreamer, TextIteratorStreamer, TextStreamer
    from headway.modeling import PreTrainedModel
    from headway.models.bart import (
        BartConfig,
        BartForConditionalGeneration,
        BartForQuestionAnswering,
        BartForSequenceClassification,
        BartModel,
    )
    from headway.models.bert import (
        BertConfig,
        BertForMaskedLM,
        BertForMultipleChoice,
        BertForPreTraining,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
    )
    from headway.models.deberta_v2 import (
        DebertaV2Config,
        DebertaV2ForMaskedLM,
        DebertaV2ForMultipleChoice,
        DebertaV2ForQuestionAnswering,
        DebertaV2ForSequenceClassification,
        DebertaV2ForTokenClassification,
        DebertaV2Model,
    )
    from headway.models.distilbert import (
        DistilBertConfig,
        DistilBertForMaskedLM,
        DistilBertForMultipleChoice,
        DistilBertForQuestionAnswering,
        DistilBertForSequenceClassification,
        DistilBertForTokenClassification,
        DistilBertModel,
    )
    from headway.models.gpt2 import (
        GPT2Config,
        GPT2ForQuestionAnswering,
        GPT2ForSequenceClassification,
        GPT2ForTokenClassification,
        GPT2LMHeadModel,
        GPT2Model,
    )
    from headway.models.llama import (
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForQuestionAnswering,
        LlamaForSequenceClassification,
        LlamaForTokenClassification,
        LlamaModel,
    )
    from headway.models.marian import MarianConfig, MarianModel, MarianMTModel
    from headway.models.mbart import (
        MBartConfig,
        MBartForConditionalGeneration,
        MBartForQuestionAnswering,
        MBartForSequenceClassification,
        MBartModel,
    )
    from headway.models.mistral import (
        MistralConfig,
        MistralForCausalLM,
        MistralForQuestionAnswering,
        MistralForSequenceClassification,
        MistralForTokenClassification,
        MistralModel,
    )
    from headway.models.modernbert import (
        ModernBertConfig,
        ModernBertForMaskedLM,
        ModernBertForMultipleChoice,
        ModernBertForQuestionAnswering,
        ModernBertForSequenceClassification,
        ModernBertForTokenClassification,
        ModernBertModel,
    )
    from headway.models.mpnet import (
        MPNetConfig,
        MPNetForMaskedLM,
        MPNetForMultipleChoice,
        MPNetForQuestionAnswering,
        MPNetForSequenceClassification,
        MPNetForTokenClassification,
        MPNetModel,
    )
    from headway.models.pegasus import PegasusConfig, PegasusForConditionalGeneration, PegasusModel
    from headway.models.qwen2 import (
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen2ForQuestionAnswering,
        Qwen2ForSequenceClassification,
        Qwen2ForTokenClassification,
        Qwen2Model,
    )
    from headway.models.qwen3 import (
        Qwen3Config,
        Qwen3ForCausalLM,
        Qwen3ForQuestionAnswering,
        Qwen3ForSequenceClassification,
        Qwen3ForTokenClassification,
        Qwen3Model,
    )
    from headway.models.roberta import (
        RobertaConfig,
        RobertaForMaskedLM,
        RobertaForMultipleChoice,
        RobertaForQuestionAnswering,
        RobertaForSequenceClassification,
        RobertaForTokenClassification,
        RobertaModel,
        XLMRobertaConfig,
        XLMRobertaForMaskedLM,
        XLMRobertaForMultipleChoice,
        XLMRobertaForQuestionAnswering,
        XLMRobertaForSequenceClassification,
        XLMRobertaForTokenClassification,
        XLMRobertaModel,
    )
    from headway.models.t5 import (
        T5Config,
        T5EncoderModel,
        T5ForConditionalGeneration,
        T5ForQuestionAnswering,
        T5ForSequenceClassification,
        T5ForTokenClassification,
        T5Model,
    )
    from headway.pipelines import pipeline
    from headway.pipelines.base import Pipeline
    from headway.pipelines.feature_extraction import FeatureExtractionPipeline
    from headway.pipelines.fill_mask import FillMaskPipeline
    from headway.pipelines.question_answering import QuestionAnsweringPipeline
    from headway.pipelines.text2text_generation import (
        SummarizationPipeline,
        Text2TextGenerationPipeline,
        TranslationPipeline,
    )
    from headway.pipelines.text_classification import TextClassificationPipeline
    from headway.pipelines.text_generation import TextGenerationPipeline
    from headway.pipelines.token_classification import TokenClassificationPipeline
    from headway.pipelines.zero_shot_classification import ZeroShotClassificationPipeline
    from headway.sentence import CrossEncoder, SentenceTransformer, util
    from headway.tokenization import (
        AddedToken,
        BartTokenizer,
        BartTokenizerFast,
        BatchEncoding,
        BertTokenizer,
        BertTokenizerFast,
        DebertaV2Tokenizer,
        DebertaV2TokenizerFast,
        DistilBertTokenizer,
        DistilBertTokenizerFast,
        GPT2Tokenizer,
        GPT2TokenizerFast,
        LlamaTokenizer,
        LlamaTokenizerFast,
        MarianTokenizer,
        MarianTokenizerFast,
        MBart50Tokenizer,
        MBart50TokenizerFast,
        MBartTokenizer,
        MBartTokenizerFast,
        MPNetTokenizer,
        MPNetTokenizerFast,
        PegasusTokenizer,
        PegasusTokenizerFast,
        PreTrainedTokenizer,
        PreTrainedTokenizerBase,
        PreTrainedTokenizerFast,
        RobertaTokenizer,
        RobertaTokenizerFast,
        T5Tokenizer,
        T5TokenizerFast,
        TokenizersBackend,
        XLMRobertaTokenizer,
        XLMRobertaTokenizerFast,
    )
    from headway.training.arguments import TrainingArguments
    from headway.training.callbacks import (
        EarlyStoppingCallback,
        TrainerCallback,
        TrainerControl,
        TrainerState,
    )
    from headway.training.collators import (
        DataCollatorForLanguageModeling,
        DataCollatorForSeq2Seq,
        DataCollatorForTokenClassification,
        DataCollatorWithPadding,
        default_data_collator,
    )
    from headway.training.schedules import get_scheduler
    from headway.training.seq2seq import Seq2SeqTrainer, Seq2SeqTrainingArguments
    from headway.training.trainer import Trainer
    from headway.training.utils import EvalPrediction, set_seed
