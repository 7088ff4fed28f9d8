"""DynamicCache: in-place growth gives what concatenation would, and beam-search edits select rows."""

import torch

from headway.generation.cache import CHUNK, DynamicCache, as_cache


def _kv(batch=2, heads=3, length=1, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, heads, length, dim, generator=g), torch.randn(
        batch, heads, length, dim, generator=g
    )


def test_update_equals_concatenation_across_growth():
    cache, keys, values = DynamicCache(), [], []
    for step in range(CHUNK + 10):  # crosses one growth of the buffer
        k, v = _kv(length=5 if step == 0 else 1, seed=step)
        keys.append(k)
        values.append(v)
        for layer in range(2):
            got_k, got_v = cache.update(k, v, layer)
        torch.testing.assert_close(got_k, torch.cat(keys, dim=2), rtol=0, atol=0)
        torch.testing.assert_close(got_v, torch.cat(values, dim=2), rtol=0, atol=0)
    assert cache.get_seq_length() == CHUNK + 14
    assert len(cache) == 2


def test_reserve_allocates_once():
    cache = DynamicCache()
    cache.reserve(40)
    k, v = _kv(length=8)
    cache.update(k, v, 0)
    buffer = cache._keys[0]
    for step in range(32):
        cache.update(*_kv(seed=step + 1), 0)
    assert cache._keys[0] is buffer and buffer.shape[2] == 40


def test_reorder_crop_repeat_and_legacy_round_trip():
    cache = DynamicCache()
    k, v = _kv(batch=3, length=6)
    cache.update(k, v, 0)
    cache.reorder_cache(torch.tensor([2, 0, 0]))
    torch.testing.assert_close(cache[0][0], k[[2, 0, 0]])
    cache.crop(4)
    assert cache.get_seq_length() == 4
    torch.testing.assert_close(cache[0][1], v[[2, 0, 0], :, :4])
    cache.batch_repeat_interleave(2)
    assert cache[0][0].shape[0] == 6
    legacy = cache.to_legacy_cache()
    again = DynamicCache.from_legacy_cache(legacy)
    torch.testing.assert_close(again[0][0], cache[0][0])
    assert as_cache(legacy, True).get_seq_length() == 4
    assert as_cache(None, False) is None


def test_bad_input_is_named():
    import pytest

    cache = DynamicCache()
    with pytest.raises(ValueError, match="layer 1"):
        cache.update(*_kv(), 1)
    with pytest.raises(TypeError, match="past_key_values"):
        as_cache("cache", True)


def test_reorder_in_place_moves_only_changed_rows_and_keeps_the_buffer():
    """A same-size reorder (beam search) permutes rows in place, cycles and repeats included."""
    cache = DynamicCache()
    cache.reserve(10)
    k, v = _kv(batch=5, length=4)
    cache.update(k, v, 0)
    buffer = cache._keys[0]
    for order in ([1, 2, 0, 3, 4], [4, 4, 2, 0, 1], [0, 1, 2, 3, 4], [3, 3, 3, 3, 3]):
        expected_k, expected_v = cache[0][0].clone(), cache[0][1].clone()
        cache.reorder_cache(torch.tensor(order))
        torch.testing.assert_close(cache[0][0], expected_k[order], rtol=0, atol=0)
        torch.testing.assert_close(cache[0][1], expected_v[order], rtol=0, atol=0)
        assert cache._keys[0] is buffer
    cache.update(*_kv(batch=5, seed=9), 0)  # still grows in the same reserved buffer
    assert cache._keys[0] is buffer and cache.get_seq_length() == 5
