"""Comparing pipeline outputs with the reference's: same structure, exact strings and ints, close floats."""

from __future__ import annotations

from typing import Any

SCORE_ATOL = 1e-4


def plain(value: Any) -> Any:
    """Numpy scalars and tensors as Python numbers and lists (the reference returns some numpy floats)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def assert_same(ours: Any, ref: Any, *, atol: float = SCORE_ATOL, path: str = "result") -> float:
    """Assert ``ours`` equals ``ref``: keys, labels, words and offsets exactly, floats within ``atol``.

    Returns:
        The largest float difference seen.
    """
    ours, ref = plain(ours), plain(ref)
    if isinstance(ref, dict):
        assert isinstance(ours, dict), f"{path}: got {type(ours).__name__}, reference has a dict"
        assert list(ours) == list(ref), f"{path}: keys {list(ours)} != reference {list(ref)}"
        return max([assert_same(ours[k], ref[k], atol=atol, path=f"{path}[{k!r}]") for k in ref], default=0.0)
    if isinstance(ref, list):
        assert isinstance(ours, list), f"{path}: got {type(ours).__name__}, reference has a list"
        assert len(ours) == len(ref), f"{path}: {len(ours)} items != reference {len(ref)}"
        return max([assert_same(o, r, atol=atol, path=f"{path}[{i}]") for i, (o, r) in enumerate(zip(ours, ref))],
                   default=0.0)
    if isinstance(ref, float):
        assert isinstance(ours, (float, int)), f"{path}: got {ours!r}, reference has {ref!r}"
        assert abs(ours - ref) <= atol, f"{path}: {ours} != reference {ref} (atol {atol})"
        return abs(ours - ref)
    assert ours == ref and type(ours) is type(ref), f"{path}: {ours!r} != reference {ref!r}"
    return 0.0
