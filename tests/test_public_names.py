"""Every public name resolves lazily, ``import headway`` stays light, and editors see every name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import headway


@pytest.mark.parametrize("name", headway.__all__)
def test_every_public_name_resolves(name):
    assert getattr(headway, name) is not None


def test_type_checking_block_names_every_public_name():
    tree = ast.parse(Path(headway.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    imported = {alias.asname or alias.name for node in ast.walk(block) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert imported == set(headway.__all__)


def test_transformers_spellings():
    assert headway.PreTrainedConfig is headway.PretrainedConfig
    assert headway.EvalPrediction.__name__ == "EvalPrediction"
    assert issubclass(headway.TextClassificationPipeline, headway.Pipeline)


def test_import_headway_loads_no_torch_and_no_model_code():
    code = "import sys, headway; print(sorted(m for m in ('torch', 'headway.auto', 'headway.models.bert') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
