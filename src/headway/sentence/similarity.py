"""Similarity functions between embeddings (``sentence_transformers.util.similarity``), dense or sparse.

Every function takes lists, numpy arrays or tensors; a 1-D input counts as a batch of one for the
matrix functions. Half-precision inputs are scored in float32, so that nearby scores do not collapse into
ties. Sparse COO tensors (SPLADE-style embeddings) are scored without densifying the whole batch; a
sparse operand paired with a dense one is scored as if both were sparse (the dense one is converted,
which is cheap because such a tensor is mostly zeros).

``SimilarityFunction`` names the functions as configs spell them ("cosine", "dot", "euclidean",
"manhattan"). Late-interaction MaxSim (multi-vector models) is not part of headway.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import numpy as np
import torch
from torch import Tensor

ArrayLike = list | np.ndarray | Tensor

__all__ = [
    "SIMILARITY_FUNCTIONS",
    "SimilarityFunction",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pytorch_cos_sim",
    "select_max_active_dims",
    "truncate_embeddings",
]


# -- conversion -------------------------------------------------------------------------------------
def _view_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory; a copy for read-only arrays or dtypes torch cannot view.

    Arrays with negative strides are refused by torch (ValueError), as before.
    """
    if array.flags.writeable:
        try:
            return torch.from_numpy(array)
        except TypeError:  # a dtype torch has no equivalent for
            pass
    return torch.tensor(array)


def to_tensor(a: ArrayLike) -> Tensor:
    """``a`` as a tensor: lists of tensors or arrays are stacked (sparse ones stay sparse, in float32)."""
    if isinstance(a, list):
        if a and all(isinstance(x, Tensor) and x.is_sparse for x in a):
            return torch.stack([x.coalesce().float() for x in a])
        if a and all(isinstance(x, Tensor) for x in a):
            a = torch.stack(a)
        elif a and all(isinstance(x, np.ndarray) for x in a):
            a = torch.stack([_view_numpy(x) for x in a])  # far faster than torch.tensor on a list of arrays
        else:
            a = torch.tensor(a)
    elif isinstance(a, np.ndarray):
        a = _view_numpy(a)
    elif not isinstance(a, Tensor):
        a = torch.tensor(a)
    return a.float() if a.is_sparse else a


def to_float(a: ArrayLike) -> Tensor:
    """Like ``to_tensor``; floats narrower than 32 bits become float32 (scores keep their resolution)."""
    t = to_tensor(a)
    if t.is_floating_point() and torch.finfo(t.dtype).bits < 32:
        t = t.float()
    return t


def to_batch(a: ArrayLike) -> Tensor:
    """Like ``to_float``, with a 1-D input made a batch of one."""
    t = to_float(a)
    return t.unsqueeze(0) if t.dim() == 1 else t


def _same_layout(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Both sparse when one is: the dense one is converted (it is mostly zeros in practice)."""
    if a.is_sparse != b.is_sparse:
        return (a, b.to_sparse()) if a.is_sparse else (a.to_sparse(), b)
    return a, b


def normalize_embeddings(embeddings: Tensor) -> Tensor:
    """Each row (the last axis) scaled to unit L2 length; sparse rows stay sparse, zero rows stay zero."""
    if not embeddings.is_sparse:
        return torch.nn.functional.normalize(embeddings, p=2, dim=-1)
    embeddings = embeddings.coalesce()
    indices, values = embeddings.indices(), embeddings.values()
    if embeddings.dim() == 1:
        values = torch.nn.functional.normalize(values, p=2, dim=0)
        # The indices come from a coalesced tensor: the invariant checks would only cost time.
        return torch.sparse_coo_tensor(indices, values, embeddings.shape, check_invariants=False)
    work = values.float() if values.dtype in (torch.float16, torch.bfloat16) else values
    squares = work.new_zeros(embeddings.shape[0]).index_add_(0, indices[0], work * work)
    norms = squares.sqrt()[indices[0]]  # the norm of each value's row
    scaled = torch.where(norms > 0, work / torch.where(norms > 0, norms, 1), work)
    return torch.sparse_coo_tensor(indices, scaled.to(values.dtype), embeddings.shape, check_invariants=False)


def truncate_embeddings(embeddings: np.ndarray | Tensor, truncate_dim: int | None) -> np.ndarray | Tensor:
    """Keep the first ``truncate_dim`` dimensions (Matryoshka truncation); None keeps all."""
    return embeddings[..., :truncate_dim]


def select_max_active_dims(
    embeddings: np.ndarray | Tensor, max_active_dims: int | None
) -> np.ndarray | Tensor:
    """A new tensor keeping, per embedding, the ``max_active_dims`` values largest in magnitude (others 0).

    None returns ``embeddings`` itself. Works on one embedding (1-D) or a batch.

    Raises:
        ValueError: ``max_active_dims`` below 1.
    """
    if max_active_dims is None:
        return embeddings
    if max_active_dims <= 0:
        raise ValueError(f"max_active_dims must be a positive integer, got {max_active_dims}.")
    embeddings = to_tensor(embeddings)
    _, keep = torch.topk(embeddings.abs(), k=min(max_active_dims, embeddings.shape[-1]), dim=-1)
    return torch.zeros_like(embeddings).scatter_(-1, keep, embeddings.gather(-1, keep))


# -- similarity matrices ----------------------------------------------------------------------------
def cos_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Cosine similarity matrix: ``res[i][j] = cos(a[i], b[j])``."""
    a, b = to_batch(a), to_batch(b)
    return torch.mm(normalize_embeddings(a), normalize_embeddings(b).transpose(0, 1)).to_dense()


pytorch_cos_sim = cos_sim


def dot_score(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Dot-product matrix: ``res[i][j] = a[i] . b[j]``."""
    a, b = to_batch(a), to_batch(b)
    return torch.mm(a, b.transpose(0, 1)).to_dense()


def _sparse_rows_dense(x: Tensor, start: int, stop: int) -> Tensor:
    """Rows ``start:stop`` of a sparse (N, D) tensor, dense."""
    return x.index_select(0, torch.arange(start, stop, device=x.device)).to_dense()


def _sparse_cdist(a: Tensor, b: Tensor, p: float, chunk: int = 256) -> Tensor:
    """``torch.cdist`` of two sparse (N, D) / (M, D) tensors, densifying ``chunk`` rows of each at a time."""
    out = torch.empty(a.shape[0], b.shape[0], device=a.device)
    a, b = a.coalesce(), b.coalesce()
    for i in range(0, a.shape[0], chunk):
        rows = _sparse_rows_dense(a, i, min(i + chunk, a.shape[0]))
        for j in range(0, b.shape[0], chunk):
            cols = _sparse_rows_dense(b, j, min(j + chunk, b.shape[0]))
            out[i : i + chunk, j : j + chunk] = torch.cdist(rows, cols, p=p)
    return out


def euclidean_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative euclidean distance matrix."""
    a, b = _same_layout(to_batch(a), to_batch(b))
    if a.is_sparse:
        # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2, without densifying either side.
        a_sq = torch.sparse.sum(a * a, dim=1).to_dense().unsqueeze(1)  # (N, 1)
        b_sq = torch.sparse.sum(b * b, dim=1).to_dense().unsqueeze(0)  # (1, M)
        squared = a_sq - 2 * torch.mm(a, b.t()).to_dense() + b_sq
        return -torch.sqrt(torch.clamp(squared, min=0.0))
    return -torch.cdist(a, b, p=2.0)


def manhattan_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative manhattan (L1) distance matrix."""
    a, b = _same_layout(to_batch(a), to_batch(b))
    if a.is_sparse:
        return -_sparse_cdist(a, b, p=1.0)
    return -torch.cdist(a, b, p=1.0)


# -- pairwise scores ---------------------------------------------------------------------------------
def pairwise_dot_score(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``res[i] = a[i] . b[i]``."""
    a, b = _same_layout(to_float(a), to_float(b))
    return (a * b).sum(dim=-1).to_dense()


def pairwise_cos_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``res[i] = cos(a[i], b[i])``."""
    a, b = _same_layout(to_float(a), to_float(b))
    return pairwise_dot_score(normalize_embeddings(a), normalize_embeddings(b))


def pairwise_euclidean_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``res[i] = -||a[i] - b[i]||_2``."""
    a, b = _same_layout(to_float(a), to_float(b))
    diff = a - b
    if diff.is_sparse or not diff.is_floating_point():
        return -(diff * diff).sum(dim=-1).to_dense().float().sqrt()
    return -torch.linalg.vector_norm(diff, dim=-1)


def pairwise_manhattan_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``res[i] = -||a[i] - b[i]||_1``."""
    a, b = _same_layout(to_float(a), to_float(b))
    return -torch.sum(torch.abs(a - b), dim=-1).to_dense()


def pairwise_angle_sim(x: ArrayLike, y: ArrayLike) -> Tensor:
    """AnglE similarity ``|cos(x, y) + sin(x, y)|`` of unit-length rows (https://arxiv.org/abs/2309.12871).

    The sine term pairs dimension ``i`` with ``i + D/2``; an odd ``D`` gets a zero column first.
    Sparse inputs are densified.
    """
    x, y = to_float(x), to_float(y)
    x = x.to_dense() if x.is_sparse else x
    y = y.to_dense() if y.is_sparse else y
    if x.shape[1] % 2:
        x = torch.nn.functional.pad(x, (0, 1))
        y = torch.nn.functional.pad(y, (0, 1))
    x, y = normalize_embeddings(x), normalize_embeddings(y)
    cosines = (x * y).sum(dim=1)
    x_re, x_im = torch.chunk(x, 2, dim=1)  # (B, D/2) each
    y_re, y_im = torch.chunk(y, 2, dim=1)
    sines = (x_im * y_re - x_re * y_im).sum(dim=1)
    return torch.abs(cosines + sines)


# similarity_fn_name -> (matrix function, pairwise function)
SIMILARITY_FUNCTIONS: dict[
    str, tuple[Callable[[ArrayLike, ArrayLike], Tensor], Callable[[ArrayLike, ArrayLike], Tensor]]
] = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}


class SimilarityFunction(Enum):
    """The similarity functions a model config can name, by the string it is saved as."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"  # noqa: PIE796 - an alias of DOT_PRODUCT, as in sentence-transformers
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @staticmethod
    def to_similarity_fn(
        similarity_function: str | SimilarityFunction,
    ) -> Callable[[ArrayLike, ArrayLike], Tensor]:
        """The (N, M) matrix function for a name or member; ValueError for an unknown name."""
        return SIMILARITY_FUNCTIONS[_member(similarity_function).value][0]

    @staticmethod
    def to_similarity_pairwise_fn(
        similarity_function: str | SimilarityFunction,
    ) -> Callable[[ArrayLike, ArrayLike], Tensor]:
        """The (N,) pairwise function (the matrix's diagonal) for a name or member."""
        return SIMILARITY_FUNCTIONS[_member(similarity_function).value][1]

    @staticmethod
    def possible_values() -> list[str]:
        """The names, in definition order: ``["cosine", "dot", "euclidean", "manhattan"]``."""
        return [member.value for member in SimilarityFunction]


def _member(value: str | SimilarityFunction) -> SimilarityFunction:
    try:
        return SimilarityFunction(value)
    except ValueError:
        raise ValueError(
            f"Unknown similarity function {value!r}; expected one of {SimilarityFunction.possible_values()}"
        ) from None
