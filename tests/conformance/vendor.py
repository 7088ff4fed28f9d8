"""Copy the chosen test modules of sentence-transformers into ``st_tests/`` (run by hand, not by the tests).

    python tests/conformance/vendor.py /work/.mirror/huggingface+sentence-transformers/repo

Each file is copied unchanged from the repository's commit, with one header line in front saying where
it came from. The repository's LICENSE (Apache-2.0) and NOTICE.txt are copied next to them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
TARGET = HERE / "st_tests"
UPSTREAM = "https://github.com/huggingface/sentence-transformers"

# The test modules run by run.py, and the support files they import (conftest, helpers, packages).
FILES = [
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/utils.py",
    "tests/base/__init__.py",
    "tests/base/test_model.py",
    "tests/base/modules/__init__.py",
    "tests/base/modules/test_dense.py",
    "tests/sentence_transformer/__init__.py",
    "tests/sentence_transformer/test_model.py",
    "tests/sentence_transformer/test_compute_embeddings.py",
    "tests/sentence_transformer/test_multi_process.py",
    "tests/sentence_transformer/modules/__init__.py",
    "tests/sentence_transformer/modules/test_pooling.py",
    "tests/sentence_transformer/modules/test_static_embedding.py",
    "tests/util/__init__.py",
    "tests/util/test_similarity.py",
    "tests/util/test_quantization.py",
    "tests/util/test_retrieval.py",
    "tests/util/test_tensor.py",
    "tests/cross_encoder/__init__.py",
    "tests/cross_encoder/conftest.py",
    "tests/cross_encoder/test_model.py",
]
LEGAL = ["LICENSE", "NOTICE.txt"]


def git(repo: str, *args: str) -> bytes:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


def main(repo: str) -> None:
    commit = git(repo, "rev-parse", "HEAD").decode().strip()
    for name in LEGAL:
        (TARGET / name).parent.mkdir(parents=True, exist_ok=True)
        (TARGET / name).write_bytes(git(repo, "show", f"HEAD:{name}"))
    for path in FILES:
        header = (
            f"# Vendored from {UPSTREAM} @ {commit}: {path} (Apache-2.0, see LICENSE and NOTICE.txt here)\n"
        )
        target = TARGET / path.removeprefix("tests/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(header.encode() + git(repo, "show", f"HEAD:{path}"))
    (TARGET / "COMMIT").write_text(f"{UPSTREAM} {commit}\n")
    print(f"copied {len(FILES)} files from {commit} into {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/huggingface+sentence-transformers/repo")
