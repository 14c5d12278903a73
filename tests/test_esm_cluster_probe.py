"""Concurrent setups of one cluster share its connection stages and admin client; failures are not shared."""

from __future__ import annotations

import threading
from typing import Any

from triggerfish.checks import Check
from triggerfish.esm.cluster_probe import settings_key, shared_connect
from triggerfish.esm.heap import release_free_memory
from triggerfish.esm.probes.admin import Probe

KEY = settings_key(["b1:9092"], {"security.protocol": "SASL_SSL", "sasl.username": "u"})


def _probe() -> Probe:
    return Probe(client=object(), errors=[], log=None, config={})  # type: ignore[arg-type]


def test_users_arriving_while_the_first_connects_reuse_its_results_and_client() -> None:
    calls: list[int] = []
    inside, release = threading.Event(), threading.Event()
    seen: list[tuple[list[Check], Any]] = []

    def connect() -> tuple[list[Check], Probe | None]:
        calls.append(1)
        inside.set()
        release.wait(5)
        return [Check.of("sasl", "b1:9092", "ok", detail="login accepted")], _probe()

    def user() -> None:
        with shared_connect(KEY, connect) as got:
            seen.append(got)
            release.wait(5)

    first = threading.Thread(target=user)
    first.start()
    assert inside.wait(5)
    others = [threading.Thread(target=user) for _ in range(3)]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert len(calls) == 1 and len(seen) == 4
    assert len({id(probe) for _, probe in seen}) == 1 and all(r[0].stage == "sasl" for r, _ in seen)


def test_a_failure_is_not_shared_and_the_client_goes_with_its_last_user() -> None:
    outcomes = iter([([Check.of("tcp", "b1:9092", "fail", detail="refused")], None),
                     ([Check.of("sasl", "b1:9092", "ok")], _probe()), ([Check.of("sasl", "b1:9092", "ok")], _probe())])
    calls: list[int] = []

    def connect() -> tuple[list[Check], Probe | None]:
        calls.append(1)
        return next(outcomes)

    with shared_connect(KEY, connect) as (results, probe):
        assert probe is None and results[0].failed
    with shared_connect(KEY, connect) as (_, first):
        assert first is not None
    with shared_connect(KEY, connect) as (_, again):  # the last user left: a new client, not a kept one
        assert again is not None and again is not first
    assert len(calls) == 3


def test_settings_with_their_own_callback_never_share() -> None:
    # each mapping's settings (with its token callback) live as long as its setup, hence its key
    first, second = {"oauth_cb": lambda _: ("t", 0.0)}, {"oauth_cb": lambda _: ("t", 0.0)}
    assert settings_key(["b1:9092"], first) != settings_key(["b1:9092"], second)
    assert settings_key(["b1:9092"], first) == settings_key(["b1:9092"], first)
    assert settings_key(["b1:9092"], {"x": "1"}) != settings_key(["b2:9092"], {"x": "1"})
    assert settings_key(["b1:9092"], {"x": "1"}) == settings_key(["b1:9092"], {"x": "1"})


def test_the_heap_is_trimmed_at_most_once_a_second() -> None:
    first = release_free_memory()  # False where there is no glibc, or when a mapping trimmed just now
    assert release_free_memory() is False, f"trimmed twice within a second (first call: {first})"
