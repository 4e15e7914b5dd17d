"""Prometheus metrics of a trace, exposed with prometheus_client from a registry of their
own.

Names follow node_exporter's conventions: base units (``_seconds``), ``_total`` on
counters, ``_info`` with value 1.  Every label value comes from a small fixed set, so a
fleet's series count does not grow with traffic: outcomes, the two SMC paths, versions
``v1``/``v2.N``, Decline names (unknown codes by their class byte, e.g. ``UNKNOWN_0x03``)
and the sender.  Peers' addresses are never labels.

The tracer thread counts into :class:`TraceCounters` (through the service's sink): plain
integers and dicts, one writer, no lock, about 0.1 us an update (a prometheus_client
Counter child costs 0.4 us an increment for its lock, a Histogram child 0.8 us, and a
connection touches several).
:class:`TraceMetrics` is a prometheus_client collector that turns those counts into
metric families when Prometheus scrapes, in the HTTP thread: it copies each dict in one C
call under the GIL, so it never sees one half-updated.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from smctrace import __version__
from smctrace.clc.codes import DECLINE_CLASS_NAMES, HISTORIC_DECLINE_CODES, DeclineCode
from smctrace.events import Outcome

# text format 0.0.4, which every Prometheus server reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# From 100 us (SMC-D over loopback-ism: well under a millisecond) to 10 s (SMC-R first
# contact waits for the RoCE link, a late Decline comes after 5 s and more).
HANDSHAKE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                     0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# the "le" label of each bucket, as prometheus_client writes it, +Inf last
BUCKET_LABELS: tuple[str, ...] = tuple(
    floatToGoString(bound)  # type: ignore[no-untyped-call]
    for bound in (*HANDSHAKE_BUCKETS, float("inf")))
PATHS = frozenset({"SMC-R", "SMC-D"})
ROLES = frozenset({"client", "server"})
MESSAGE_TYPES = ("proposal", "accept", "confirm", "decline", "unknown")

_KNOWN_DECLINES: dict[int, str] = {
    **{int(code): code.name for code in DeclineCode},
    **{code: name for code, (name, _text) in HISTORIC_DECLINE_CODES.items()},
}

# Counters are exported as node_exporter does: no ``_created`` series beside them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# What a connection is counted under: outcome, path, version, release, decline label and
# sender, as the tracker reported them (turned into label values only when scraped).
ConnectionKey = tuple[Outcome, str | None, int | None, int | None, str, str | None]


def decline_label(code: int) -> str:
    """The ``decline`` label of a Decline reason code: its name (``NOUEID``), or for an
    unknown code its class (``UNKNOWN_0x03``), or ``UNKNOWN`` for an unknown class too."""
    code &= 0xFFFFFFFF
    name = _KNOWN_DECLINES.get(code)
    if name is not None:
        return name
    cls = code >> 24
    return f"UNKNOWN_0x{cls:02x}" if cls in DECLINE_CLASS_NAMES else "UNKNOWN"


def version_label(version: int | None, release: int | None) -> str:
    """``v1``, ``v2.0``, ``v2.1`` (``v2`` without a release), or empty."""
    if version is None or not 0 < version < 16:
        return ""
    if version >= 2 and release is not None and 0 <= release < 16:
        return f"v{version}.{release}"
    return f"v{version}"


def path_label(path: str | None) -> str:
    if path is None:
        return ""
    return path if path in PATHS else "other"


def connection_labels(key: ConnectionKey) -> tuple[str, str, str, str, str]:
    """Label values (outcome, path, version, decline, decline_from) of a ConnectionKey."""
    outcome, path, version, release, decline, sender = key
    return (outcome, path_label(path), version_label(version, release), decline,
            sender if sender in ROLES else "")


class TraceCounters:
    """The counts of one trace, written by the tracer thread alone (ServiceSink)."""

    def __init__(self) -> None:
        # by type, counted from each outcome's list of its connection's messages
        self.messages: dict[str, int] = dict.fromkeys(MESSAGE_TYPES, 0)
        self.malformed = 0
        self.gaps = 0
        self.connections: dict[ConnectionKey, int] = {}
        # (outcome, path) -> observations per bucket (not cumulative; the last one is
        # +Inf), then the sum of the observed seconds
        self.handshakes: dict[tuple[Outcome, str | None], list[float]] = {}
        self.followed = 0


class _CaptureCounters:
    """The kernel's counters per interface, as last published by the tracer thread (the
    scrape never touches the capture sockets or the eBPF maps itself)."""

    def __init__(self) -> None:
        # (per interface: received, dropped; per filter: seen, kept), replaced whole
        self.latest: tuple[Mapping[str, tuple[int, int]], Mapping[str, tuple[int, int]]] = (
            {}, {})

    def publish(self, sockets: Mapping[str, tuple[int, int]],
                filters: Mapping[str, tuple[int, int]]) -> None:
        self.latest = (sockets, filters)


class TraceMetrics(Collector):
    """The metrics of one trace and the registry that exposes them."""

    def __init__(self, counters: TraceCounters) -> None:
        self.counters = counters
        self.capture = _CaptureCounters()
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.http_requests = Counter(
            "smctrace_http_requests", "Requests to the --http service, by status code.",
            ["code"], registry=self.registry)
        Info("smctrace_build", "smctrace version.", registry=self.registry).info(
            {"version": __version__, "python": platform.python_version()})
        ProcessCollector(registry=self.registry)
        self._labels: dict[ConnectionKey, tuple[str, ...]] = {}

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterable[Metric]:
        counts = self.counters
        yield self._connections(dict(counts.connections))
        messages = CounterMetricFamily(
            "smctrace_clc_messages",
            "CLC messages decoded, counted when their connection's outcome is reported.",
            labels=["type"])
        for kind, n in list(counts.messages.items()):
            messages.add_metric([kind], n)
        yield messages
        yield CounterMetricFamily("smctrace_malformed_messages",
                                  "CLC messages that broke a rule of the protocol.",
                                  value=counts.malformed)
        yield CounterMetricFamily("smctrace_gaps",
                                  "Holes in CLC phases: bytes the capture never saw.",
                                  value=counts.gaps)
        yield self._handshake_histogram(dict(counts.handshakes))
        yield GaugeMetricFamily("smctrace_connections_followed",
                                "Connections followed right now (no outcome yet).",
                                value=counts.followed)
        yield from self._capture_families()

    def _connections(self, connections: dict[ConnectionKey, int]) -> Metric:
        family = CounterMetricFamily(
            "smctrace_connections", "Connections with an outcome.",
            labels=["outcome", "path", "version", "decline", "decline_from"])
        totals: dict[tuple[str, ...], int] = {}
        for key, n in connections.items():
            labels = self._labels.get(key)
            if labels is None:
                labels = self._labels[key] = connection_labels(key)
            totals[labels] = totals.get(labels, 0) + n  # e.g. two paths that read "other"
        for labels, n in totals.items():
            family.add_metric(list(labels), n)
        return family

    @staticmethod
    def _handshake_histogram(handshakes: dict[tuple[Outcome, str | None], list[float]]
                             ) -> Metric:
        family = HistogramMetricFamily(
            "smctrace_handshake_seconds",
            "From the SYN (or first CLC message) to the segment that decided the outcome.",
            labels=["outcome", "path"])
        merged: dict[tuple[str, str], list[float]] = {}
        for (outcome, path), values in handshakes.items():
            into = merged.setdefault((outcome, path_label(path)), [0.0] * len(values))
            for i, value in enumerate(list(values)):
                into[i] += value
        for labels, values in merged.items():
            cumulative: list[tuple[str, float]] = []
            running = 0.0
            for bound, n in zip(BUCKET_LABELS, values[:-1], strict=True):
                running += n
                cumulative.append((bound, running))
            family.add_metric(list(labels), cumulative, sum_value=values[-1])
        return family

    def _capture_families(self) -> Iterable[Metric]:
        sockets, filters = self.capture.latest
        if filters:
            seen = CounterMetricFamily(
                "smctrace_frames_seen_by_filter",
                "Frames the eBPF filter looked at (interfaces sharing one filter: their "
                "names joined by ',').", labels=["interface"])
            for names, (filter_seen, _filter_kept) in filters.items():
                seen.add_metric([names], filter_seen)
            yield seen
        if sockets:
            kept = CounterMetricFamily(
                "smctrace_frames_kept",
                "Frames the in-kernel filter let through to the capture socket.",
                labels=["interface"])
            dropped = CounterMetricFamily(
                "smctrace_frames_dropped",
                "Kept frames the capture socket dropped for lack of receive-buffer room.",
                labels=["interface"])
            for name, (received, drops) in sockets.items():
                kept.add_metric([name], received)
                dropped.add_metric([name], drops)
            yield kept
            yield dropped

