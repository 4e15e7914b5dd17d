"""Prometheus metrics of a trace, made with prometheus_client in a registry of their own.

Names follow node_exporter's conventions: base units (``_seconds``), ``_total`` on
counters, ``_info`` with value 1.  Every label value comes from a small fixed set, so a
fleet's series count does not grow with traffic: outcomes, the two SMC paths, versions
``v1``/``v2.N``, Decline names (unknown codes by their class byte, e.g. ``UNKNOWN_0x03``)
and the sender.  Peers' addresses are never labels.

The tracer thread calls :meth:`TraceMetrics.on_message` and
:meth:`TraceMetrics.on_connection`: each is a dict look-up for the cached label child and
an increment under that child's own short lock; the scrape (HTTP thread) takes the same
locks only to read a value.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from smctrace import __version__
from smctrace.clc.codes import DECLINE_CLASS_NAMES, HISTORIC_DECLINE_CODES, DeclineCode
from smctrace.events import ConnectionOutcome, MessageEvent

# text format 0.0.4, which every Prometheus server reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# From 100 us (SMC-D over loopback-ism: well under a millisecond) to 10 s (SMC-R first
# contact waits for the RoCE link, a late Decline comes after 5 s and more).
HANDSHAKE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                     0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PATHS = frozenset({"SMC-R", "SMC-D"})
ROLES = frozenset({"client", "server"})
MESSAGE_TYPES = ("proposal", "accept", "confirm", "decline", "unknown")

_KNOWN_DECLINES: dict[int, str] = {
    **{int(code): code.name for code in DeclineCode},
    **{code: name for code, (name, _text) in HISTORIC_DECLINE_CODES.items()},
}

# Counters are exported as node_exporter does: no ``_created`` series beside them.
disable_created_metrics()  # type: ignore[no-untyped-call]


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


class _CaptureCollector(Collector):
    """The kernel's counters per interface, as last published by the tracer thread (the
    scrape never touches the capture sockets or the eBPF maps itself)."""

    def __init__(self) -> None:
        # (per interface: received, dropped; per filter: seen, kept), replaced whole
        self._counters: tuple[Mapping[str, tuple[int, int]], Mapping[str, tuple[int, int]]] = (
            {}, {})

    def publish(self, sockets: Mapping[str, tuple[int, int]],
                filters: Mapping[str, tuple[int, int]]) -> None:
        self._counters = (sockets, filters)

    def collect(self) -> Iterable[Metric]:
        sockets, filters = self._counters
        if not sockets and not filters:
            return
        seen = CounterMetricFamily(
            "smctrace_frames_seen_by_filter",
            "Frames the eBPF filter looked at (interfaces sharing one filter: their names "
            "joined by ',').", labels=["interface"])
        kept = CounterMetricFamily(
            "smctrace_frames_kept",
            "Frames the in-kernel filter let through to the capture socket.",
            labels=["interface"])
        dropped = CounterMetricFamily(
            "smctrace_frames_dropped",
            "Kept frames the capture socket dropped for lack of receive-buffer room.",
            labels=["interface"])
        for names, (filter_seen, _filter_kept) in filters.items():
            seen.add_metric([names], filter_seen)
        for name, (received, drops) in sockets.items():
            kept.add_metric([name], received)
            dropped.add_metric([name], drops)
        yield from (seen, kept, dropped) if filters else (kept, dropped)


class TraceMetrics:
    """The metrics of one trace and the registry that exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._connections = Counter(
            "smctrace_connections", "Connections with an outcome.",
            ["outcome", "path", "version", "decline", "decline_from"], registry=reg)
        self._messages = Counter("smctrace_clc_messages", "CLC messages decoded.", ["type"],
                                 registry=reg)
        self._malformed = Counter("smctrace_malformed_messages",
                                  "CLC messages that broke a rule of the protocol.",
                                  registry=reg)
        self._gaps = Counter("smctrace_gaps", "Holes in CLC phases: bytes the capture never "
                             "saw.", registry=reg)
        self._handshake = Histogram(
            "smctrace_handshake_seconds",
            "From the SYN (or first CLC message) to the segment that decided the outcome.",
            ["outcome", "path"], buckets=HANDSHAKE_BUCKETS, registry=reg)
        self.followed = Gauge("smctrace_connections_followed",
                              "Connections followed right now (no outcome yet).",
                              registry=reg)
        self.http_requests = Counter("smctrace_http_requests",
                                     "Requests to the --http service, by status code.",
                                     ["code"], registry=reg)
        Info("smctrace_build", "smctrace version.", registry=reg).info(
            {"version": __version__, "python": platform.python_version()})
        self.capture = _CaptureCollector()
        reg.register(self.capture)
        ProcessCollector(registry=reg)
        # Label children, made once per label tuple (the label values are bounded).
        self._connection_children: dict[tuple[Any, ...], Any] = {}
        self._handshake_children: dict[tuple[str, str | None], Any] = {}
        self._message_children = {kind: self._messages.labels(kind) for kind in MESSAGE_TYPES}
        for kind in MESSAGE_TYPES:  # every type shows from the start, also at 0
            self._message_children[kind].inc(0)

    def on_message(self, event: MessageEvent) -> None:
        message = event.message
        child = self._message_children.get(message.kind)
        if child is None:
            child = self._message_children["unknown"]
        child.inc()
        if message.malformed:
            self._malformed.inc()

    def on_gap(self) -> None:
        self._gaps.inc()

    def on_connection(self, outcome: ConnectionOutcome, decline: str) -> None:
        """``decline`` is :func:`decline_label` of the Decline, or empty."""
        key = (outcome.outcome, outcome.path, outcome.version, outcome.release, decline,
               outcome.decline_from)
        child = self._connection_children.get(key)
        if child is None:
            child = self._connections.labels(
                outcome.outcome, _path_label(outcome.path),
                version_label(outcome.version, outcome.release), decline,
                outcome.decline_from if outcome.decline_from in ROLES else "")
            self._connection_children[key] = child
        child.inc()
        if outcome.handshake_ms is not None:
            hkey = (outcome.outcome, outcome.path)
            histogram = self._handshake_children.get(hkey)
            if histogram is None:
                histogram = self._handshake.labels(outcome.outcome, _path_label(outcome.path))
                self._handshake_children[hkey] = histogram
            histogram.observe(outcome.handshake_ms / 1000.0)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


def _path_label(path: str | None) -> str:
    if path is None:
        return ""
    return path if path in PATHS else "other"
