"""sentence-transformers' own tests, run offline on the real library and on headway.

README. ``st_tests/`` holds test modules of the sentence-transformers repository, copied unchanged
(one header line added; the commit is in ``st_tests/COMMIT``; Apache-2.0, its LICENSE and NOTICE.txt
are kept there; ``vendor.py`` copies them again, and ``MODULES`` below names those that run). This
runner copies them into a scratch folder and runs them twice with pytest, each time in a fresh
subprocess with ``HF_HUB_OFFLINE=1`` and a Hugging Face cache (``HF_HUB_CACHE``) holding locally built
stand-ins for the Hub models they load (``standins.py``: tiny BERT / RoBERTa / StaticEmbedding /
word-embedding models and WordPiece / BPE tokenizers trained on text written there, built with
transformers 5.23 and saved by the real sentence-transformers, so that e.g.
``SentenceTransformer("sentence-transformers-testing/stsb-bert-tiny-safetensors")`` resolves offline):

1. against the installed sentence-transformers: the baseline, what can pass offline;
2. through ``shim/``, put first on ``sys.path``: its ``sentence_transformers`` package maps the names the
   tests import to headway (names headway lacks become stubs that raise ``NotImplementedError``, so only
   the cases using them fail; no behaviour lives in the shim).

It prints, per module: the cases passing on the real library, those of them passing on headway, the
gaps (passing on the real library, failing on headway, not covered by ``OUT_OF_SCOPE``), the
out-of-scope ones, and the real library's own offline failures with how many ``OUT_OF_SCOPE`` leaves
unexplained. ``OUT_OF_SCOPE`` is the one table of what is not expected to pass on headway, each entry
with its reason: things impossible offline (Hub downloads, numbers of real checkpoints, CUDA) and
features outside headway (sparse and multi-vector encoders, images, code named by a model...). The
report file (``--report``, JSON) lists every gap, out-of-scope case and real failure with the first
line of its error, and the pytest logs stay in the scratch folder.

``make conformance`` runs every module (a few minutes); ``test_conformance.py`` runs ``CI_SUBSET`` on
headway inside the test suite, with a pass-count ratchet. To add a module: list it in ``vendor.py``'s
FILES and in ``MODULES``, run ``vendor.py``, add stand-ins for the models it loads, then classify what
fails on headway: implement it in headway, or add an ``OUT_OF_SCOPE`` entry with the reason.

    python tests/conformance/run.py                      # all modules, both runs
    python tests/conformance/run.py --subset ci --only headway
    python tests/conformance/run.py --reuse-real -k encode  # keep the real side's results from last time
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
    "sentence_transformer/test_multi_process.py",
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
# Run inside pytest by test_conformance.py, on headway only: under 2 minutes on 2 cores, stand-ins included.
CI_SUBSET = [
    "sentence_transformer/test_compute_embeddings.py",
    "sentence_transformer/modules/test_pooling.py",
    "base/modules/test_dense.py",
    "util/test_similarity.py",
    "util/test_quantization.py",
    "util/test_retrieval.py",
    "util/test_tensor.py",
]
# The stand-ins CI_SUBSET loads (standins.STANDINS keys); the full run builds them all.
CI_STANDINS = [
    "sentence-transformers-testing/stsb-bert-tiny-safetensors",
    "sentence-transformers/paraphrase-distilroberta-base-v1",
    "sentence-transformers/all-MiniLM-L6-v2",
    "google-bert/bert-base-uncased",
]

_HUB = "downloads a Hub checkpoint that has no local stand-in"
_CACHE = "downloads into a fresh, empty cache_folder: impossible offline"
_NUMBERS = "checks numbers of the real trained checkpoint (the stand-in has random weights)"
_SPARSE = "SparseEncoder (SPLADE / CSR sparse embeddings): a separate model family, not in headway"
_MULTI_VECTOR = "late-interaction MaxSim scoring (MultiVectorEncoder, ColBERT): not in headway"
_MODALITIES = "images, audio and chat-message inputs: headway's sentence models read text only"
_CODE = (
    "loads module classes named by a model folder (custom / third-party modules, trust_remote_code): "
    "headway never imports code a model names"
)
_CLASSIC = (
    "word-embedding era modules (WordEmbeddings, CNN, LSTM, LayerNorm, WeightedLayerPooling) and Router: "
    "not in headway"
)
_PRIVATE = "tests a private helper of sentence-transformers itself (decorators, chunking, modality inference)"
_LOGGERS = (
    "asserts records of sentence-transformers' own logger names at INFO level (headway logs under headway.*)"
)

# Cases out of scope for headway, by fnmatch pattern on the case id ("module.py::test[params]"), with the
# reason. A case matching one is not counted as a gap when it fails on headway; the real library's own
# offline failures are explained by the same table (run.py reports any it does not explain).
OUT_OF_SCOPE: dict[str, str] = {
    # -- impossible offline: these fail on the real library too ------------------------------------------
    "sentence_transformer/test_multi_process.py::test_encode_multi_process[[]*-False]": _NUMBERS,
    "sentence_transformer/test_model.py::test_load_with_safetensors": _CACHE,
    "sentence_transformer/test_model.py::test_load_with_pytorch_bin": _CACHE,
    "sentence_transformer/test_model.py::test_default_pooling_mode*": _CACHE,
    "sentence_transformer/test_model.py::test_conversion_ignores_source_similarity_fn_name": _HUB,
    "sentence_transformer/test_model.py::test_similarity_score[[]*": _NUMBERS,
    "sentence_transformer/test_compute_embeddings.py::test_encode_single_sentences": _NUMBERS,
    "sentence_transformer/test_compute_embeddings.py::test_encode_tuple_sentences": _NUMBERS,
    "sentence_transformer/test_model.py::test_multiple_adapters": "PEFT adapters from the Hub",
    "sentence_transformer/test_model.py::test_load_adapter_with_revision": "PEFT adapters from the Hub",
    "sentence_transformer/test_model.py::test_clip": "CLIP (openai/clip-vit-base-patch32) from the Hub",
    "sentence_transformer/modules/test_static_embedding.py::test_loading_model2vec": _HUB,
    "cross_encoder/test_model.py::test_rank[[]*": _NUMBERS,
    "cross_encoder/test_model.py::test_bge_reranker_max_length": _HUB,
    "base/test_model.py::test_device_argument_warns_when_device_map_present": "needs a CUDA device",
    # The real reranker-bert-tiny-gooaq-bce ships a chat template for query/document roles; the stand-in not.
    "cross_encoder/test_model.py::test_*chat_template*": "needs the real reranker's chat template",
    "cross_encoder/test_model.py::test_*pair_roles*": "needs the real reranker's chat template",
    "cross_encoder/test_model.py::test_predict_raises_on_mixed_batch_containing_a_pair": _MODALITIES,
    "cross_encoder/test_model.py::test_message_input_with_a_single_pair_role_is_not_checked": _MODALITIES,
    # -- features outside headway ---------------------------------------------------------------------------
    "*Sparse*": _SPARSE,
    "*sparse_encoder*": _SPARSE,
    "base/test_model.py::test_save_to_hub_*": _SPARSE + " (the only model these cases use)",
    "base/test_model.py::test_load_logs_converting_model_type": _SPARSE,
    "util/test_similarity.py::test_pairwise_angle_sim_even_and_odd_sparse_embeddings": _SPARSE,
    "*maxsim*": _MULTI_VECTOR,
    "util/test_similarity.py::test_empty_document_score_survives_the_losses_that_consume_it": _MULTI_VECTOR,
    "util/test_quantization.py::test_quantize_multi_vector_handles_empty_matrices": _MULTI_VECTOR,
    "base/test_model.py::test_preprocess_modality_error_messages*": _MODALITIES,
    "sentence_transformer/modules/test_static_embedding.py::test_unsupported_modality": _MODALITIES,
    "base/test_model.py::test_load_module_class_from_ref*": _CODE,
    "base/test_model.py::test_private_load_with_module_classes_loads_without_trust_remote_code": _CODE,
    "base/test_model.py::test_third_party_module_with_strict_load_signature_round_trips": _CODE,
    "cross_encoder/test_model.py::test_load_activation_fn_from_config_custom": _CODE
    + " (headway refuses trust_remote_code=True with a ValueError)",
    "sentence_transformer/test_model.py::test_safetensors[[]*": _CLASSIC
    + " (every case loads the average_word_embeddings fixture)",
    "sentence_transformer/test_model.py::test_*router*": _CLASSIC,
    "sentence_transformer/test_model.py::test_get_model_kwargs": _CLASSIC
    + " (its last part builds a Router)",
    "cross_encoder/test_model.py::test_*without_transformer*": "CrossEncoder stacks without a transformer "
    "(StaticEmbedding + Dense 'scores'): headway's CrossEncoder wraps a sequence-classification model",
    "cross_encoder/test_model.py::test_num_labels_*dense*": "CrossEncoder stacks without a transformer "
    "(StaticEmbedding + Dense 'scores'): headway's CrossEncoder wraps a sequence-classification model",
    "cross_encoder/test_model.py::test_init_args_decorator*": _PRIVATE,
    "cross_encoder/test_model.py::test_predict_rank_args_decorator*": _PRIVATE,
    "util/test_similarity.py::test_chunk_ranges_budget_packing": _PRIVATE,
    "base/test_model.py::test_preprocess_skips_modality_check_for_empty_inputs": _PRIVATE,
    "base/test_model.py::test_save_load_roundtrip*": _LOGGERS,
    "sentence_transformer/test_model.py::test_transformers_model_property": "asserts the wrapped model is a "
    "transformers.BertModel: headway runs its own model classes (same weights, same numbers)",
    "base/test_model.py::test_tokenize_deprecation_warning": "tokenize() is not deprecated in headway (the "
    "trainer's collator calls it); preprocess() is the same call",
}


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
    """Per-module counts, the cases passing on the real library but failing on headway, and real failures.

    ``gaps``: case -> first line of headway's error, for cases no ``OUT_OF_SCOPE`` pattern covers;
    ``out_of_scope``: case -> reason; ``real_failures``: case -> [first line of the real library's error,
    the reason from ``OUT_OF_SCOPE`` or None when the table does not explain it].
    """
    report: dict = {"modules": {}, "gaps": {}, "out_of_scope": {}, "real_failures": {}}
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
        failing = {
            case: [error, out_of_scope_reason(case)]
            for case, error in (real.results.items() if real else ())
            if error is not None and case.startswith(module + "::")
        }
        report["modules"][module] = {
            "real": len(real_pass),
            "headway": len(ours_pass & real_pass) if real else len(ours_pass),
            "gaps": len(gaps),
            "out_of_scope": len(skipped),
            "real_failing": len(failing),
            "unexplained": sum(reason is None for _, reason in failing.values()),
        }
        report["gaps"].update(gaps)
        report["out_of_scope"].update(skipped)
        report["real_failures"].update(failing)
    keys = ("real", "headway", "gaps", "out_of_scope", "real_failing", "unexplained")
    report["totals"] = {key: sum(row[key] for row in report["modules"].values()) for key in keys}
    return report


def print_table(report: dict) -> None:
    """real: cases passing on the real library; headway: those of them passing on headway; gaps: the rest
    that no OUT_OF_SCOPE entry covers; oos: the rest that one does; real-fail: cases failing on the real
    library offline, unexpl.: those the table does not explain."""
    width = max(len(m) for m in report["modules"]) + 2
    print(f"{'module':<{width}}{'real':>6}{'headway':>9}{'gaps':>6}{'oos':>5}{'real-fail':>11}{'unexpl.':>9}")
    for module, row in [*report["modules"].items(), ("TOTAL", report["totals"])]:
        print(
            f"{module:<{width}}{row['real']:>6}{row['headway']:>9}{row['gaps']:>6}{row['out_of_scope']:>5}"
            f"{row['real_failing']:>11}{row['unexplained']:>9}"
        )
    for case, error in report["gaps"].items():
        print(f"GAP {case}: {error}")
    for case, (error, reason) in report["real_failures"].items():
        if reason is None:
            print(f"UNEXPLAINED REAL FAILURE {case}: {error}")


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

    ci = args.subset == "ci" and not args.modules
    hub_cache = standins.build(args.hub_cache, CI_STANDINS if ci else None)
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
