"""Pieces shared by the renderers: outcome wording and the exit summary."""

from __future__ import annotations

import math
import time as _time

from smctrace.events import ConnectionOutcome, TraceSummary


class Clock:
    """Time of day like tcpdump's default (local time, microseconds).

    The hours-minutes-seconds part is formatted once per second: lines come in bursts.
    One instance per output, so a changed TZ is honoured by the next trace.  Any time a
    capture can hold is shown: before 1970 too, and one the platform cannot convert to a
    date (a pcapng can say 2**64 whole seconds) as the number, marked out of range.
    """

    def __init__(self) -> None:
        self._second: int | None = None
        self._prefix = ""

    def __call__(self, t: float) -> str:
        if not math.isfinite(t):
            return f"[time {t}: out of range]"
        whole = math.floor(t)
        micros = round((t - whole) * 1e6)
        if micros == 1_000_000:
            whole, micros = whole + 1, 0
        if whole != self._second:
            try:
                prefix = _time.strftime("%H:%M:%S", _time.localtime(whole))
            except (OverflowError, OSError, ValueError):
                return f"[time {whole}.{micros:06d} s: out of range]"
            self._second, self._prefix = whole, prefix
        return f"{self._prefix}.{micros:06d}"


def path_label(o: ConnectionOutcome) -> str | None:
    """'SMC-D v2.1', 'SMC-R v1', ... for an established connection."""
    if o.path is None or o.version is None:
        return None
    label = f"{o.path} v{o.version}"
    if o.version >= 2 and o.release is not None:
        label += f".{o.release}"
    return label


def describe_outcome(o: ConnectionOutcome) -> str:
    """The outcome in plain words, one line."""
    ms = f", {o.handshake_ms:.1f} ms" if o.handshake_ms is not None else ""
    if o.outcome == "smc":
        contact = {True: ", first contact", False: ", link group reused", None: ""}
        return f"{path_label(o) or 'SMC'} established{contact[o.first_contact]}{ms}"
    if o.outcome == "fallback":
        return f"fallback: {o.reason}{ms}"
    if o.outcome == "failed":
        return f"failed: {o.reason}{ms}"
    return f"incomplete: {o.reason}"


def _sample(sample: list[str]) -> str:
    return f" (e.g. {', '.join(sample[:2])})" if sample else ""


def summary_line(s: TraceSummary) -> str:
    """tcpdump-style one-line exit summary."""
    counts = ", ".join(f"{n} {name}" for name, n in s.outcomes.items())
    plain = "" if s.plain_tcp is None else f"{s.plain_tcp} plain TCP, "
    line = (f"{s.frames} frames read, {s.connections} SMC connection"
            f"{'' if s.connections == 1 else 's'} ({counts}), "
            f"{plain}{s.messages} CLC message{'' if s.messages == 1 else 's'}")
    if s.malformed:
        line += f", {s.malformed} malformed"
    if s.gaps:
        line += f", {s.gaps} gaps"
    if s.duplicates:
        line += f", {s.duplicates} duplicate segments dropped"
    if s.unanswered_syns:
        line += (f", {s.unanswered_syns} unanswered SMC SYN{'s' if s.unanswered_syns != 1 else ''}"
                 f"{_sample(s.unanswered_sample)}")
    if s.unanswered_midstream:
        n = s.unanswered_midstream
        line += (f", {n} mid-stream CLC message{'s' if n != 1 else ''} without an answer, "
                 f"not decoded{_sample(s.unanswered_midstream_sample)}")
    if s.evicted:
        line += f", {s.evicted} evicted (connection table full)"
    if s.capture:
        # live: what the kernel filter saw and kept, and what the socket received and
        # dropped (like tcpdump's "received by filter" / "dropped by kernel")
        line += "; " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in s.capture.items()
                                 if n is not None)
    return line
