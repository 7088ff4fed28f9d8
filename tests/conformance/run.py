"""sentence-transformers' own tests, run offline on the real library and on headway.

``st_tests/`` holds test modules copied unchanged from the sentence-transformers repository (the commit
is in ``st_tests/COMMIT``; ``vendor.py`` copies them again). This runner copies them into a scratch
folder and runs them twice with pytest, each time in a fresh subprocess with ``HF_HUB_OFFLINE=1`` and a
Hugging Face cache (``HF_HUB_CACHE``) holding locally built stand-ins for the Hub models they load
(``standins.py``: tiny BERT / RoBERTa / StaticEmbedding models and WordPiece tokenizers built with
transformers 5.23 and the real sentence-transformers):

1. against the installed sentence-transformers (the baseline: what passes there is what can pass
   offline);
2. through ``shim/``, put first on ``sys.path``, whose ``sentence_transformers`` package maps the
   names the tests import to headway (names headway lacks become stubs that raise
   ``NotImplementedError``, so only the cases using them fail).

It prints, per module, the cases passing on the real library, on headway, and those passing on the real
library but failing on headway; out-of-scope cases (``OUT_OF_SCOPE`` below, each with a reason) are
counted apart. The report file (``--report``, JSON) lists every such case id with the first line of its
error. ``make conformance`` runs every module; ``test_conformance.py`` runs ``CI_SUBSET`` inside pytest.

    python tests/conformance/run.py                 # all modules, both runs
    python tests/conformance/run.py --subset ci     # the CI-sized part
    python tests/conformance/run.py --only headway -k encode
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ST_TESTS = HERE / "st_tests"
SHIM = HERE / "shim"
REPO_ROOT = HERE.parents[1]

# The vendored test modules, relative to st_tests/.
MODULES = [
    "sentence_transformer/test_model.py",
    "sentence_transformer/test_compute_embeddings.py",
    "sentence_transformer/modules/test_pooling.py",
    "sentence_transformer/modules/test_static_embedding.py",
    "base/test_model.py",
    "base/modules/test_dense.py",
    "cross_encoder/test_model.py",
    "util/test_similarity.py",
    "util/test_quantization.py",
    "util/test_retrieval.py",
    "util/test_tensor.py",
]
# Run inside pytest by test_conformance.py: small enough for CI (well under 2 minutes on 2 cores).
CI_SUBSET = [
    "sentence_transformer/test_compute_embeddings.py",
    "util/test_similarity.py",
    "util/test_retrieval.py",
]

# Cases out of scope for headway, by fnmatch pattern on the case id ("module.py::test[params]"), with the
# reason. A case matching one is not counted as a gap when it fails on headway.
OUT_OF_SCOPE: dict[str, str] = {}


@dataclass
class Outcome:
    """One run: case id -> None (passed), or the first line of its failure."""

    results: dict[str, str | None] = field(default_factory=dict)
    returncode: int = 0

    def passed(self, module: str | None = None) -> set[str]:
        return {
            case
            for case, error in self.results.items()
            if error is None and (module is None or case.startswith(module + "::"))
        }


def out_of_scope_reason(case: str) -> str | None:
    """The reason ``case`` is out of scope, if an ``OUT_OF_SCOPE`` pattern matches it."""
    return next(
        (reason for pattern, reason in OUT_OF_SCOPE.items() if fnmatch.fnmatchcase(case, pattern)), None
    )


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:300]
    return "(no message)"


def parse_junit(path: Path) -> dict[str, str | None]:
    """Case id -> None when it passed, else the first line of its failure (skips are left out)."""
    results: dict[str, str | None] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "")
        parts = module.split(".")[1:]  # "tests.sentence_transformer.test_model[.TestClass]"
        n = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        case_id = "/".join(parts[: n + 1]) + ".py::" + "::".join([*parts[n + 1 :], case.get("name", "")])
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            continue
        results[case_id] = None if problem is None else _first_line(problem.get("message") or problem.text)
    return results


def run_suite(
    which: str,
    modules: list[str],
    work: Path,
    hub_cache: Path,
    keyword: str | None = None,
    timeout: int = 3600,
) -> Outcome:
    """Run ``modules`` with pytest in a subprocess against ``which`` ("real" or "headway")."""
    junit = work / f"junit-{which}.xml"
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_CACHE=str(hub_cache),
        HF_HOME=str(work / "hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        CUDA_VISIBLE_DEVICES="",
        TRANSFORMERS_VERBOSITY="error",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        OMP_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("CI", None)
    env.pop("GITHUB_ACTIONS", None)
    paths = [str(SHIM), str(REPO_ROOT / "src")] if which == "headway" else []
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(f"tests/{m}" for m in modules),
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
        "-o",
        "addopts=",
        "--continue-on-collection-errors",
        "--junitxml",
        str(junit),
        "-W",
        "ignore::DeprecationWarning",
    ]
    if keyword:
        command += ["-k", keyword]
    log = work / f"pytest-{which}.log"
    with open(log, "w") as out:
        try:
            proc = subprocess.run(
                command,
                cwd=work / "suite",
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -1
    outcome = Outcome(returncode=code)
    if junit.exists():
        outcome.results = parse_junit(junit)
    return outcome


def real_cache_key(modules: list[str], keyword: str | None, stamp: str) -> str:
    """Identifies a real run: the vendored tests, the stand-ins, the installed library and the selection."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for path in sorted(ST_TESTS.rglob("*.py")):
        digest.update(path.relative_to(ST_TESTS).as_posix().encode() + path.read_bytes())
    digest.update(
        json.dumps(
            [modules, keyword, stamp, version("sentence-transformers"), version("transformers")]
        ).encode()
    )
    return digest.hexdigest()[:20]


def prepare(work: Path) -> Path:
    """Copy st_tests/ into ``work/suite/tests`` with a pytest.ini that keeps headway's settings out."""
    suite = work / "suite"
    if suite.exists():
        shutil.rmtree(suite)
    shutil.copytree(ST_TESTS, suite / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.toml"))
    (suite / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests\nmarkers =\n    slow: slow\n    custom: custom modules\n"
    )
    return suite


def compare(modules: list[str], real: Outcome | None, ours: Outcome | None) -> dict:
    """Per-module counts and the cases that pass on the real library but fail on headway."""
    report: dict = {"modules": {}, "gaps": {}, "out_of_scope": {}}
    for module in modules:
        real_pass = real.passed(module) if real else set()
        ours_pass = ours.passed(module) if ours else set()
        gaps, skipped = {}, {}
        if real and ours:
            for case in sorted(real_pass - ours_pass):
                error = ours.results.get(case, "not run (collection error?)")
                reason = out_of_scope_reason(case)
                if reason:
                    skipped[case] = reason
                else:
                    gaps[case] = error
        report["modules"][module] = {
            "real": len(real_pass),
            "headway": len(ours_pass & real_pass) if real else len(ours_pass),
            "gaps": len(gaps),
            "out_of_scope": len(skipped),
        }
        report["gaps"].update(gaps)
        report["out_of_scope"].update(skipped)
    totals = {
        key: sum(row[key] for row in report["modules"].values())
        for key in ("real", "headway", "gaps", "out_of_scope")
    }
    report["totals"] = totals
    return report


def print_table(report: dict) -> None:
    width = max(len(m) for m in report["modules"]) + 2
    print(f"{'module':<{width}}{'real':>6}{'headway':>9}{'gaps':>6}{'oos':>5}")
    for module, row in [*report["modules"].items(), ("TOTAL", report["totals"])]:
        print(f"{module:<{width}}{row['real']:>6}{row['headway']:>9}{row['gaps']:>6}{row['out_of_scope']:>5}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", choices=["all", "ci"], default="all")
    parser.add_argument("--modules", nargs="*", help="modules (relative to st_tests/) instead of a subset")
    parser.add_argument("--only", choices=["real", "headway"], help="run one side only")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    parser.add_argument(
        "--report", type=Path, default=Path(tempfile.gettempdir()) / "headway-conformance.json"
    )
    parser.add_argument(
        "--reuse-real",
        action="store_true",
        help="reuse the real run's results from an earlier identical run (kept next to --hub-cache)",
    )
    parser.add_argument("--work", type=Path, help="scratch folder (default: a fresh temporary one)")
    parser.add_argument(
        "--hub-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "headway-conformance-hub",
        help="where the stand-in models are built (reused between runs)",
    )
    args = parser.parse_args(argv)
    modules = args.modules or (CI_SUBSET if args.subset == "ci" else MODULES)

    sys.path.insert(0, str(HERE))
    import standins

    hub_cache = standins.build(args.hub_cache)
    work = args.work or Path(tempfile.mkdtemp(prefix="headway-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    prepare(work)
    real = None
    if args.only != "headway":
        cached = (
            hub_cache.parent
            / f"{hub_cache.name}-real"
            / f"{real_cache_key(modules, args.keyword, standins.stamp())}.json"
        )
        if args.reuse_real and cached.exists():
            real = Outcome(results=json.loads(cached.read_text()))
        else:
            real = run_suite("real", modules, work, hub_cache, args.keyword)
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(real.results))
    ours = run_suite("headway", modules, work, hub_cache, args.keyword) if args.only != "real" else None
    report = compare(modules, real, ours)
    report["logs"] = str(work)
    if ours and args.only == "headway":
        report["headway_failures"] = {case: error for case, error in ours.results.items() if error}
    args.report.write_text(json.dumps(report, indent=1))
    print_table(report)
    print(f"report: {args.report} (pytest logs in {work})")
    return report


if __name__ == "__main__":
    main()
