"""Marker/MaxItems paging."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triggerfish.api.paging import page
from triggerfish.errors import InvalidParameterError


def walk(items: list[str], max_items: int | None, limit: int) -> list[list[str]]:
    pages, marker = [], None
    for _ in range(len(items) + 2):  # a paging bug must fail the test, not hang it
        chunk, marker = page(items, key=str, marker=marker, max_items=max_items, page_limit=limit)
        pages.append(chunk)
        if marker is None:
            return pages
    raise AssertionError(f"paging never ended: {pages[:5]}")


def test_pages_cover_everything_once_in_order() -> None:
    items = [f"id-{i:03d}" for i in range(250)]
    pages = walk(list(reversed(items)), None, 100)
    assert [len(p) for p in pages] == [100, 100, 50]
    assert sum(pages, []) == items


def test_max_items_is_capped_by_the_page_limit() -> None:
    assert [len(p) for p in walk([str(i) for i in range(10)], 10000, 4)] == [4, 4, 2]
    assert [len(p) for p in walk([str(i) for i in range(10)], 3, 100)] == [3, 3, 3, 1]


def test_exact_multiple_has_no_empty_trailing_page() -> None:
    assert [len(p) for p in walk([str(i) for i in range(4)], 2, 100)] == [2, 2]


def test_deleting_between_pages_skips_nothing() -> None:
    items = [f"k{i}" for i in range(6)]
    first, marker = page(items, key=str, marker=None, max_items=2, page_limit=100)
    items.remove("k1")
    items.remove("k3")
    rest, _ = page(items, key=str, marker=marker, max_items=10, page_limit=100)
    assert first == ["k0", "k1"] and rest == ["k2", "k4", "k5"]


def test_garbage_marker_is_invalid_parameter() -> None:
    with pytest.raises(InvalidParameterError):
        page(["a"], key=str, marker="%%%not-base64", max_items=None, page_limit=10)


@given(items=st.sets(st.text(max_size=8)), max_items=st.none() | st.integers(1, 20), limit=st.integers(1, 20))
def test_paging_property(items: set[str], max_items: int | None, limit: int) -> None:
    pages = walk(list(items), max_items, limit)
    size = min(max_items or limit, limit)
    assert sum(pages, []) == sorted(items)
    assert all(len(p) == size for p in pages[:-1]) and len(pages[-1]) <= size
    assert pages[-1] or not items
