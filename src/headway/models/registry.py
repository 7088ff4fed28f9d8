"""The families headway can load: one literal entry per ``model_type``.

Everything else is derived from this table: the Auto classes' mappings and their error messages
(``headway.auto``) and the lazy public names (``from headway import BertModel``). Adding a family is one
entry here plus its file under ``headway/models/`` (see docs/adding-a-family.md).

This module imports nothing heavy: ``import headway`` reads it.
"""

from __future__ import annotations

# The tasks a family may offer a class for: the bare model first, then one per Auto class.
TASKS: tuple[str, ...] = (
    "model", "pretraining", "masked_lm", "causal_lm", "seq2seq_lm", "sequence_classification",
    "token_classification", "question_answering", "multiple_choice",
)


class Family:
    """Where a family lives (``headway.models.<module>``), its config class, and its class for each task
    (None: the family has no such head), plus ``extra`` public classes no Auto class maps (T5's encoder-only
    model). A plain class: ``import headway`` builds this table."""

    __slots__ = ("config", "module", "extra", *TASKS)

    def __init__(self, module: str, config: str, model: str, *, pretraining: str | None = None,
                 masked_lm: str | None = None, causal_lm: str | None = None, seq2seq_lm: str | None = None,
                 sequence_classification: str | None = None, token_classification: str | None = None,
                 question_answering: str | None = None, multiple_choice: str | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.module, self.config, self.model, self.extra = module, config, model, extra
        self.pretraining, self.masked_lm, self.causal_lm = pretraining, masked_lm, causal_lm
        self.seq2seq_lm = seq2seq_lm
        self.sequence_classification, self.token_classification = sequence_classification, token_classification
        self.question_answering, self.multiple_choice = question_answering, multiple_choice

    def class_names(self) -> list[str]:
        """Every class the entry names, the config first."""
        names = [self.config, *(getattr(self, task) for task in TASKS), *self.extra]
        return list(dict.fromkeys(name for name in names if name))

    def __repr__(self) -> str:
        return f"Family({self.module!r}, {self.config!r}, {self.model!r})"

# As in the reference, families pre-trained with masked-LM alone map pre-training to their masked-LM head.
FAMILIES: dict[str, Family] = {
    "bert": Family(
        "bert", "BertConfig", "BertModel",
        pretraining="BertForPreTraining",
        masked_lm="BertForMaskedLM",
        sequence_classification="BertForSequenceClassification",
        token_classification="BertForTokenClassification",
        question_answering="BertForQuestionAnswering",
        multiple_choice="BertForMultipleChoice",
    ),
    "roberta": Family(
        "roberta", "RobertaConfig", "RobertaModel",
        pretraining="RobertaForMaskedLM",
        masked_lm="RobertaForMaskedLM",
        sequence_classification="RobertaForSequenceClassification",
        token_classification="RobertaForTokenClassification",
        question_answering="RobertaForQuestionAnswering",
        multiple_choice="RobertaForMultipleChoice",
    ),
    "xlm-roberta": Family(
        "roberta", "XLMRobertaConfig", "XLMRobertaModel",
        pretraining="XLMRobertaForMaskedLM",
        masked_lm="XLMRobertaForMaskedLM",
        sequence_classification="XLMRobertaForSequenceClassification",
        token_classification="XLMRobertaForTokenClassification",
        question_answering="XLMRobertaForQuestionAnswering",
        multiple_choice="XLMRobertaForMultipleChoice",
    ),
    "deberta-v2": Family(
        "deberta_v2", "DebertaV2Config", "DebertaV2Model",
        pretraining="DebertaV2ForMaskedLM",
        masked_lm="DebertaV2ForMaskedLM",
        sequence_classification="DebertaV2ForSequenceClassification",
        token_classification="DebertaV2ForTokenClassification",
        question_answering="DebertaV2ForQuestionAnswering",
        multiple_choice="DebertaV2ForMultipleChoice",
    ),
    "distilbert": Family(
        "distilbert", "DistilBertConfig", "DistilBertModel",
        pretraining="DistilBertForMaskedLM",
        masked_lm="DistilBertForMaskedLM",
        sequence_classification="DistilBertForSequenceClassification",
        token_classification="DistilBertForTokenClassification",
        question_answering="DistilBertForQuestionAnswering",
        multiple_choice="DistilBertForMultipleChoice",
    ),
    "mpnet": Family(
        "mpnet", "MPNetConfig", "MPNetModel",
        pretraining="MPNetForMaskedLM",
        masked_lm="MPNetForMaskedLM",
        sequence_classification="MPNetForSequenceClassification",
        token_classification="MPNetForTokenClassification",
        question_answering="MPNetForQuestionAnswering",
        multiple_choice="MPNetForMultipleChoice",
    ),
    "modernbert": Family(  # pre-training -> masked LM like the others (the reference maps none for ModernBERT)
        "modernbert", "ModernBertConfig", "ModernBertModel",
        pretraining="ModernBertForMaskedLM",
        masked_lm="ModernBertForMaskedLM",
        sequence_classification="ModernBertForSequenceClassification",
        token_classification="ModernBertForTokenClassification",
        question_answering="ModernBertForQuestionAnswering",
        multiple_choice="ModernBertForMultipleChoice",
    ),
    "gpt2": Family(
        "gpt2", "GPT2Config", "GPT2Model",
        causal_lm="GPT2LMHeadModel",
        sequence_classification="GPT2ForSequenceClassification",
        token_classification="GPT2ForTokenClassification",
        question_answering="GPT2ForQuestionAnswering",
    ),
    "llama": Family(
        "llama", "LlamaConfig", "LlamaModel",
        causal_lm="LlamaForCausalLM",
        sequence_classification="LlamaForSequenceClassification",
        token_classification="LlamaForTokenClassification",
        question_answering="LlamaForQuestionAnswering",
    ),
    "mistral": Family(
        "mistral", "MistralConfig", "MistralModel",
        causal_lm="MistralForCausalLM",
        sequence_classification="MistralForSequenceClassification",
        token_classification="MistralForTokenClassification",
        question_answering="MistralForQuestionAnswering",
    ),
    "qwen2": Family(
        "qwen2", "Qwen2Config", "Qwen2Model",
        causal_lm="Qwen2ForCausalLM",
        sequence_classification="Qwen2ForSequenceClassification",
        token_classification="Qwen2ForTokenClassification",
        question_answering="Qwen2ForQuestionAnswering",
    ),
    "qwen3": Family(
        "qwen3", "Qwen3Config", "Qwen3Model",
        causal_lm="Qwen3ForCausalLM",
        sequence_classification="Qwen3ForSequenceClassification",
        token_classification="Qwen3ForTokenClassification",
        question_answering="Qwen3ForQuestionAnswering",
    ),
    "bart": Family(
        "bart", "BartConfig", "BartModel",
        pretraining="BartForConditionalGeneration",
        seq2seq_lm="BartForConditionalGeneration",
        sequence_classification="BartForSequenceClassification",
        question_answering="BartForQuestionAnswering",
    ),
    "t5": Family(
        "t5", "T5Config", "T5Model",
        pretraining="T5ForConditionalGeneration",
        seq2seq_lm="T5ForConditionalGeneration",
        sequence_classification="T5ForSequenceClassification",
        token_classification="T5ForTokenClassification",
        question_answering="T5ForQuestionAnswering",
        extra=("T5EncoderModel",),
    ),
    "mbart": Family(
        "mbart", "MBartConfig", "MBartModel",
        seq2seq_lm="MBartForConditionalGeneration",
        sequence_classification="MBartForSequenceClassification",
        question_answering="MBartForQuestionAnswering",
    ),
    "marian": Family("marian", "MarianConfig", "MarianModel", seq2seq_lm="MarianMTModel"),
    "pegasus": Family("pegasus", "PegasusConfig", "PegasusModel", seq2seq_lm="PegasusForConditionalGeneration"),
}


def module_of(family: Family) -> str:
    return "headway.models." + family.module


def class_locations() -> dict[str, str]:
    """Public class name -> module defining it, for every class a family entry names."""
    return {name: module_of(f) for f in FAMILIES.values() for name in f.class_names()}
