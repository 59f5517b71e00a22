"""Counters and gauges of the running proxy, rendered in the Prometheus text format.

One :class:`Metrics` per application (``app[METRICS]``). Counters only grow; gauges are read
when the page is rendered (queue depths, open connections), so the hot path pays one dict
update per event and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Named counters with labels, plus gauges computed at render time.

    Names follow Prometheus conventions (``ocpp_proxy_frames_total``); each is declared once
    with its help text by :meth:`describe` (undeclared names render with an empty help).
    """

    def __init__(self) -> None:
        self._counters: defaultdict[str, defaultdict[Labels, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._help: dict[str, tuple[str, str]] = {}
        self._gauges: list[Callable[[], Iterable[tuple[str, Labels, float]]]] = []

    def describe(self, name: str, kind: str, help_text: str) -> None:
        """Declare a metric: ``kind`` is ``counter`` or ``gauge``."""
        self._help[name] = (kind, help_text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels``."""
        self._counters[name][tuple(sorted(labels.items()))] += amount

    def counter(self, name: str, **labels: str) -> Counter:
        """A handle on one series of counter ``name``, for code that counts on every frame."""
        return Counter(self._counters[name], tuple(sorted(labels.items())))

    def value(self, name: str, **labels: str) -> float:
        """The current value of a counter (0 if it never counted)."""
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def gauge_source(self, source: Callable[[], Iterable[tuple[str, Labels, float]]]) -> None:
        """Register a function yielding ``(name, labels, value)`` gauges at render time."""
        self._gauges.append(source)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        samples: defaultdict[str, list[tuple[Labels, float]]] = defaultdict(list)
        for name, series in self._counters.items():
            samples[name].extend(series.items())
        for source in self._gauges:
            for name, labels, value in source():
                samples[name].append((labels, value))
        lines: list[str] = []
        for name in sorted(samples):
            kind, help_text = self._help.get(name, ("untyped", ""))
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples[name]:
                lines.append(f"{name}{_labels(labels)} {value:g}")
        return "\n".join(lines) + "\n"


class Counter:
    """One series of a counter: :meth:`inc` costs one dict update."""

    __slots__ = ("_key", "_series")

    def __init__(self, series: defaultdict[Labels, float], key: Labels) -> None:
        self._series = series
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1)."""
        self._series[self._key] += amount


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
