"""The garbage collector policy: full collections walk only what is new, cycles are freed later."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ocpp_proxy.gc_policy import GcPolicy


class _Node:
    """An object that can be part of a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[_Clock]:
    yield _Clock()


@pytest.fixture
def policy(clock: _Clock) -> Iterator[GcPolicy]:
    installed = GcPolicy(clock.monotonic, full_sweep_interval_s=60.0)
    installed.install()
    try:
        yield installed
    finally:
        installed.uninstall()
        gc.collect()


def _cycle() -> _Node:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a


def test_what_survives_a_full_collection_is_left_out_of_the_next(policy: GcPolicy) -> None:
    kept = [_Node() for _ in range(100)]
    frozen_before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= frozen_before + len(kept)


def test_a_cycle_frozen_while_alive_is_freed_at_the_next_full_sweep(
    policy: GcPolicy, clock: _Clock
) -> None:
    node = _cycle()
    gc.collect()  # the cycle is alive: frozen with the rest
    cycle = weakref.ref(node)
    del node
    gc.collect()
    assert cycle() is not None  # unreachable but frozen: kept until the interval is over

    clock.now += 60.0
    gc.collect()  # the sweep: everything is unfrozen
    gc.collect()  # and this full collection sees the cycle
    assert cycle() is None


def test_uninstall_gives_everything_back_to_the_collector(clock: _Clock) -> None:
    policy = GcPolicy(clock.monotonic)
    policy.install()
    assert gc.get_freeze_count() > 0
    policy.uninstall()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gc.get_freeze_count() == 0  # full collections freeze nothing any more
