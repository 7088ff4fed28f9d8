"""A ``sentence_transformers`` package that is headway: run.py puts its folder first on ``sys.path``.

Every module sentence-transformers' tests import is described in ``MODULES`` below: for each, the
headway module it maps to (looked up first, so a name headway adds later is found without touching this
file) and the names the tests import from it with where headway keeps them. A module whose whole
counterpart exists in headway is that very module object (``sys.modules`` aliases), so a test's
``monkeypatch`` of it reaches headway. A name headway does not have becomes a stub that raises
``NotImplementedError`` when used: the test modules still import, and only the cases that use the
missing feature fail.

Only names are mapped here; behaviour lives in headway.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

__version__ = "6.2.0"  # the release headway follows
__MODEL_HUB_ORGANIZATION__ = "sentence-transformers"

_SENTENCE = "headway.sentence"

# shim module -> (headway modules whose names it re-exports, first match wins; {name: "module:attr"} for
# names kept under another module or another name). Names of the second part that headway lacks are stubs.
MODULES: dict[str, tuple[list[str], dict[str, str]]] = {
    "sentence_transformers": (
        [f"{_SENTENCE}"],
        {
            "SentenceTransformer": f"{_SENTENCE}.encoder:SentenceTransformer",
            "CrossEncoder": f"{_SENTENCE}.cross_encoder:CrossEncoder",
            "SparseEncoder": "-",
            "SimilarityFunction": f"{_SENTENCE}.similarity:SimilarityFunction",
            "quantize_embeddings": f"{_SENTENCE}.util:quantize_embeddings",
        },
    ),
    "sentence_transformers.sentence_transformer": ([f"{_SENTENCE}"], {}),
    "sentence_transformers.sentence_transformer.model": (
        [f"{_SENTENCE}.encoder"],
        {"SentenceTransformer": f"{_SENTENCE}.encoder:SentenceTransformer"},
    ),
    "sentence_transformers.sentence_transformer.modules": (
        [f"{_SENTENCE}.modules"],
        {
            name: f"{_SENTENCE}.modules:{name}"
            for name in (
                "Transformer",
                "Pooling",
                "Dense",
                "Normalize",
                "CNN",
                "LSTM",
                "CLIPModel",
                "LayerNorm",
                "Router",
                "WeightedLayerPooling",
                "WordEmbeddings",
                "BoW",
                "Dropout",
            )
        }
        | {"StaticEmbedding": f"{_SENTENCE}.static_embedding:StaticEmbedding"},
    ),
    "sentence_transformers.sentence_transformer.modules.pooling": (
        [f"{_SENTENCE}.modules"],
        {
            "Pooling": f"{_SENTENCE}.modules:Pooling",
            "_convert_legacy_pooling_kwargs": f"{_SENTENCE}.pooling:convert_legacy_pooling_config",
        },
    ),
    "sentence_transformers.sentence_transformer.modules.static_embedding": (
        [f"{_SENTENCE}.static_embedding"],
        {"StaticEmbedding": f"{_SENTENCE}.static_embedding:StaticEmbedding"},
    ),
    "sentence_transformers.base": ([f"{_SENTENCE}"], {}),
    "sentence_transformers.base.model": ([f"{_SENTENCE}.encoder"], {}),
    "sentence_transformers.base.modules": (
        [f"{_SENTENCE}.modules"],
        {
            name: f"{_SENTENCE}.modules:{name}"
            for name in ("Transformer", "Dense", "Normalize", "Module", "InputModule", "Router")
        },
    ),
    "sentence_transformers.base.modules.module": (
        [f"{_SENTENCE}.modules"],
        {"Module": f"{_SENTENCE}.modules:Module"},
    ),
    "sentence_transformers.base.modules.dense": (
        [f"{_SENTENCE}.modules"],
        {"Dense": f"{_SENTENCE}.modules:Dense"},
    ),
    "sentence_transformers.base.model_card": (
        [f"{_SENTENCE}.model_card"],
        {
            name: f"{_SENTENCE}.model_card:{name}"
            for name in ("generate_model_card", "get_model_info", "get_dataset_info")
        },
    ),
    "sentence_transformers.base.evaluation": (
        [],
        {"BaseEvaluator": f"{_SENTENCE}.evaluation:SentenceEvaluator"},
    ),
    "sentence_transformers.cross_encoder": (
        [f"{_SENTENCE}.cross_encoder"],
        {"CrossEncoder": f"{_SENTENCE}.cross_encoder:CrossEncoder"},
    ),
    "sentence_transformers.cross_encoder.model": (
        [f"{_SENTENCE}.cross_encoder"],
        {"CrossEncoder": f"{_SENTENCE}.cross_encoder:CrossEncoder"},
    ),
    "sentence_transformers.sparse_encoder": ([], {"SparseEncoder": "-"}),
    "sentence_transformers.util": (
        [f"{_SENTENCE}.util"],
        {
            name: f"{_SENTENCE}.util:{name}"
            for name in (
                "SimilarityFunction",
                "fullname",
                "is_datasets_available",
                "is_training_available",
                "mean_maxsim",
                "mean_maxsim_pairwise",
                "community_detection",
                "paraphrase_mining",
                "semantic_search",
                "truncate_embeddings",
                "normalize_embeddings",
                "quantize_embeddings",
            )
        },
    ),
    "sentence_transformers.util.similarity": (
        [f"{_SENTENCE}.similarity"],
        {
            name: f"{_SENTENCE}.similarity:{name}"
            for name in (
                "SimilarityFunction",
                "cos_sim",
                "dot_score",
                "euclidean_sim",
                "manhattan_sim",
                "maxsim",
                "maxsim_pairwise",
                "pairwise_angle_sim",
                "pairwise_cos_sim",
                "pairwise_dot_score",
                "pairwise_euclidean_sim",
                "pairwise_manhattan_sim",
                "pytorch_cos_sim",
                "_chunk_ranges",
            )
        },
    ),
    "sentence_transformers.util.tensor": (
        [f"{_SENTENCE}.similarity"],
        {
            name: f"{_SENTENCE}.similarity:{name}"
            for name in ("normalize_embeddings", "select_max_active_dims", "truncate_embeddings")
        }
        | {"_convert_to_tensor": f"{_SENTENCE}.similarity:to_tensor"},
    ),
    "sentence_transformers.util.retrieval": (
        [f"{_SENTENCE}.retrieval", f"{_SENTENCE}.util"],
        {
            name: f"{_SENTENCE}.retrieval:{name}"
            for name in ("community_detection", "paraphrase_mining", "paraphrase_mining_embeddings")
        }
        | {"semantic_search": f"{_SENTENCE}.util:semantic_search"},
    ),
    "sentence_transformers.util.quantization": (
        [f"{_SENTENCE}.util"],
        {name: f"{_SENTENCE}.util:{name}" for name in ("quantize_embeddings", "semantic_search_faiss")},
    ),
    # Only so that tests can patch these names: headway downloads through headway.hub, which a test patching
    # the shim's attributes does not reach (the cases check the outcome, e.g. a refused file path).
    "sentence_transformers.util.file_io": (
        [],
        {
            "hf_hub_download": "huggingface_hub:hf_hub_download",
            "snapshot_download": "huggingface_hub:snapshot_download",
        },
    ),
    "sentence_transformers.util.decorators": (
        [f"{_SENTENCE}.util"],
        {
            name: f"{_SENTENCE}.util:{name}"
            for name in ("cross_encoder_init_args_decorator", "cross_encoder_predict_rank_args_decorator")
        },
    ),
}


def _stub(qualname: str) -> type:
    """A class standing for a name headway lacks: calling it (or making an instance of a subclass) raises."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"headway has no {qualname}")

    name = qualname.rsplit(".", 1)[-1]
    return type(
        name, (), {"__init__": refuse, "__module__": qualname.rsplit(".", 1)[0], "_headway_missing": True}
    )


def _lookup(target: str, shim_name: str, name: str) -> Any:
    if target != "-":
        module_name, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            pass
    return _stub(f"{shim_name}.{name}")


def _build(shim_name: str) -> types.ModuleType:
    sources, names = MODULES[shim_name]
    # A leaf module whose one source holds every name is aliased: a test's patch then reaches headway.
    leaf = not any(other.startswith(shim_name + ".") for other in MODULES)
    if leaf and len(sources) == 1 and not any(target == "-" for target in names.values()):
        try:
            module = importlib.import_module(sources[0])
        except ImportError:
            module = None
        if module is not None and all(hasattr(module, n) for n in names):
            return module
    module = types.ModuleType(shim_name, f"headway stand-in for {shim_name}")
    module.__path__ = []  # a package: its submodules come from the finder below
    for name, target in names.items():
        setattr(module, name, _lookup(target, shim_name, name))
    loaded = []
    for source in sources:
        try:
            loaded.append(importlib.import_module(source))
        except ImportError:
            continue

    def __getattr__(attr: str) -> Any:
        if f"{shim_name}.{attr}" in MODULES:  # a shim submodule, before any headway name it could shadow
            return importlib.import_module(f"{shim_name}.{attr}")
        if not attr.startswith("__"):
            for source_module in loaded:
                if hasattr(source_module, attr):
                    return getattr(source_module, attr)
        raise AttributeError(f"module {shim_name!r} (headway shim) has no attribute {attr!r}")

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


class _ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes the submodules named in MODULES importable."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in MODULES and fullname != __name__:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _build(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        parent, _, child = module.__name__.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


sys.meta_path.insert(0, _ShimFinder())

_top = _build(__name__)
for _name in MODULES[__name__][1]:
    globals()[_name] = getattr(_top, _name)


def __getattr__(attr: str) -> Any:
    if f"{__name__}.{attr}" in MODULES:  # sentence_transformers.util, .base, ...: the shim's, not headway's
        return importlib.import_module(f"{__name__}.{attr}")
    return getattr(_top, attr)
