"""The engine's garbage-collector setting (``esm/gc_policy.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from triggerfish.esm import gc_policy


@pytest.fixture
def threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_young_generation_threshold_is_raised_and_the_older_ones_kept(threshold: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc_policy.tune()
    assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, 10, 10)
    gc_policy.tune()  # once per mapping: idempotent
    assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, 10, 10)


def test_a_higher_threshold_or_a_disabled_collector_is_left_alone(threshold: None) -> None:
    gc.set_threshold(100_000, 5, 5)
    gc_policy.tune()
    assert gc.get_threshold() == (100_000, 5, 5)
    gc.set_threshold(0, 10, 10)
    gc_policy.tune()
    assert gc.get_threshold() == (0, 10, 10)
