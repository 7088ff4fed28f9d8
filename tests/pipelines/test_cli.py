"""`headway run TASK [TEXT ...]`: one JSON result per line, from arguments or standard input."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import headway
from headway import cli
from tests.pipelines.common import assert_same

QA_FOLDER = str(Path(__file__).resolve().parents[1] / "fixtures" / "qa_tiny")


def run(capsys, *argv: str) -> tuple[int, list, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def test_text_arguments(tiny, capsys):
    folder = str(tiny["seqcls"])
    status, results, _ = run(capsys, "run", "text-classification", "I love it", "I hate it", "--model", folder)
    assert status == 0
    pipe = headway.pipeline("text-classification", model=folder, device="cpu")
    assert_same(results, pipe(["I love it", "I hate it"]))


def test_standard_input_and_options(tiny, capsys, monkeypatch):
    folder = str(tiny["seqcls"])
    monkeypatch.setattr(sys, "stdin", io.StringIO('first line\n\n{"text": "a", "text_pair": "b"}\nlast line\n'))
    status, results, _ = run(capsys, "run", "sentiment-analysis", "-m", folder, "--batch-size", "2", "-p", "top_k=2")
    assert status == 0 and len(results) == 3, "blank lines are skipped"
    pipe = headway.pipeline("text-classification", model=folder, device="cpu")
    assert_same(results, pipe(["first line", {"text": "a", "text_pair": "b"}, "last line"], top_k=2))


def test_task_options(tiny, capsys):
    status, results, _ = run(
        capsys, "run", "zero-shot-classification", "We won the match", "--candidate-labels", "sport,politics",
        "-m", str(tiny["nli"]),
    )
    assert status == 0 and sorted(results[0]["labels"]) == ["politics", "sport"]
    status, results, _ = run(capsys, "run", "ner", "Ada lives in London", "-p", "aggregation_strategy=simple",
                             "-m", str(tiny["tokcls"]))
    assert status == 0 and all("entity_group" in e for e in results[0])
    status, results, _ = run(capsys, "run", "fill-mask", "A [MASK] day.", "-m", str(tiny["mlm"]), "-p", "top_k=2")
    assert status == 0 and len(results) == 1 and len(results[0]) == 2
    status, results, _ = run(capsys, "run", "question-answering", "Where is it?", "What is it?",
                             "--context", "It is a lighthouse in Millport.", "-m", QA_FOLDER)
    assert status == 0 and len(results) == 2 and {"score", "start", "end", "answer"} == set(results[0])


def test_errors_exit_with_status_2(tiny, capsys):
    status, _, err = run(capsys, "run", "image-classification", "x", "-m", str(tiny["seqcls"]))
    assert status == 2 and "Unknown task 'image-classification'. Supported tasks:" in err
    status, _, err = run(capsys, "run", "fill-mask", "no mask", "-m", str(tiny["mlm"]))
    assert status == 2 and "has no mask token" in err
    status, _, err = run(capsys, "run", "text-classification", "x", "-p", "top_k")
    assert status == 2 and "--param takes KEY=VALUE" in err


def test_tasks_command(capsys):
    assert cli.main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "text-classification  (alias: sentiment-analysis)" in out and "question-answering" in out


def test_console_script(tiny):
    script = shutil.which("headway", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the headway console script is not installed in this environment")
    done = subprocess.run(
        [script, "run", "feature-extraction", "-m", str(tiny["bare"])], input="hello world\nbye\n",
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and len(lines[0][0]) == 4 and len(lines[0][0][0]) == 32  # (1, tokens, hidden)
