"""Background decoding: order kept, errors reach the consumer, closing stops the producer."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from vlm_anomaly.errors import InvalidVideoError
from vlm_anomaly.video import batched, prefetch, sample_frames


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before]


def test_prefetch_keeps_order_and_items():
    assert list(prefetch(range(500), maxsize=4)) == list(range(500))


def test_prefetch_reraises_producer_error_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise InvalidVideoError("clip.mp4: cannot decode")

    got = []
    with pytest.raises(InvalidVideoError, match="cannot decode"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_propagates_sampler_errors(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InvalidVideoError, match="bad.mp4"):
        list(prefetch(sample_frames(bad)))


def test_closing_the_consumer_stops_the_producer():
    produced = itertools.count()
    before = set(threading.enumerate())

    it = prefetch(produced, maxsize=8)  # an endless source
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    workers = _new_threads(before)
    assert workers, "prefetch should decode in a background thread"
    it.close()
    for t in workers:
        t.join(timeout=5)
        assert not t.is_alive(), "producer thread still running after the consumer closed"
    n = next(produced)
    time.sleep(0.2)
    assert next(produced) == n + 1, "producer kept consuming its source"
    assert n < 5 + 8 + 4, "producer ran far ahead of the bounded queue"


def test_batched_groups_with_short_last_batch():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []
