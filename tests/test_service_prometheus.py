"""A real Prometheus server scrapes ``smctrace -i --http`` while the real-kernel captures
are replayed on a veth pair: PromQL through Prometheus' HTTP API returns the connection
counts by outcome, path, version and decline (and sender) that the captures contain, the
CLC message counts, the loss counters per interface and the handshake histogram; the
contrib alert rules load in it.

Everything (smctrace, Prometheus, the queries) runs inside one private network namespace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import netlab, prometheus
from tests.support.service import REAL_CAPTURES, REPO, LiveTracer, ServiceLab, offline

HTTP = "127.0.0.1:9100"
LABELS = ("outcome", "path", "version", "decline", "decline_from")


@pytest.fixture(scope="module")
def lab() -> Iterator[ServiceLab]:
    for problem in (netlab.available(), prometheus.available()):
        if problem:
            pytest.skip(problem)
    with ServiceLab("smct-prom") as service_lab:
        yield service_lab


@pytest.fixture(scope="module")
def expected() -> list[dict[str, Any]]:
    return [e for path in REAL_CAPTURES for e in offline(path)]


def version_label(e: dict[str, Any]) -> str:
    if e["version"] is None:
        return ""
    if e["version"] >= 2 and e["release"] is not None:
        return f"v{e['version']}.{e['release']}"
    return f"v{e['version']}"


def connection_series(events: list[dict[str, Any]]) -> dict[tuple[str, ...], float]:
    counts: Counter[tuple[str, ...]] = Counter()
    for e in events:
        if e["event"] == "connection":
            decline = e["decline"] or {}
            counts[(e["outcome"], e["path"] or "", version_label(e), decline.get("name", ""),
                    decline.get("from") or "")] += 1
    return {key: float(n) for key, n in counts.items()}


@pytest.fixture(scope="module")
def scraped(lab: ServiceLab, tmp_path_factory: pytest.TempPathFactory,
            expected: list[dict[str, Any]]) -> Iterator[tuple[prometheus.Prometheus,
                                                             LiveTracer]]:
    """smctrace traced every capture once, Prometheus scraping it all along."""
    tracer = lab.start_tracer("--http", HTTP)
    try:
        tracer.wait_ready()
    except RuntimeError as exc:
        pytest.skip(f"live tracing unavailable here: {exc}")
    rules = REPO / "contrib" / "prometheus" / "smctrace-alerts.yml"
    with prometheus.Prometheus(lab, tmp_path_factory.mktemp("prometheus"), [HTTP],
                               rule_files=[rules]) as server:
        up = server.wait_for('up{job="smctrace"}', ["instance"], lambda r: r == {(HTTP,): 1})
        assert up == {(HTTP,): 1.0}, "Prometheus never scraped smctrace"
        lab.replay(REAL_CAPTURES)
        # SMC-R connections wait up to 10 s for a late Decline, live in wall-clock time
        tracer.wait_connections(sum(e["event"] == "connection" for e in expected), timeout=60)
        yield server, tracer


def test_connection_counts_by_outcome_path_version_decline(
        scraped: tuple[prometheus.Prometheus, LiveTracer],
        expected: list[dict[str, Any]]) -> None:
    server, tracer = scraped
    want = connection_series(expected)
    promql = f"sum by ({', '.join(LABELS)}) (smctrace_connections_total{{job=\"smctrace\"}})"
    got = server.wait_for(promql, LABELS, lambda r: r == want)
    assert got == want
    assert connection_series(tracer.connections()) == want  # the JSON said the same
    by_outcome = server.by_labels('sum by (outcome) (smctrace_connections_total)', "outcome")
    assert by_outcome == {("smc",): 3.0, ("fallback",): 6.0}
    declines = server.by_labels(
        'sum by (decline, decline_from) (smctrace_connections_total{outcome="fallback"})',
        "decline", "decline_from")
    assert declines == {("NOSMCDEV", "client"): 2.0, ("TIMEOUT_CL", "client"): 1.0,
                        ("NOUEID", "server"): 1.0, ("NOSMCRDEV", "server"): 1.0,
                        ("", ""): 1.0}  # B2: the server's SYN-ACK had no SMC option
    assert server.by_labels('sum by (path, version) (smctrace_connections_total'
                            '{outcome="smc"})', "path", "version") == \
        {("SMC-D", "v2.1"): 2.0, ("SMC-R", "v2.1"): 1.0}


def test_messages_histogram_and_gauges(scraped: tuple[prometheus.Prometheus, LiveTracer],
                                       expected: list[dict[str, Any]]) -> None:
    server, _ = scraped
    kinds = Counter(e["type"] for e in expected if e["event"] == "clc")
    want = {(kind,): float(n) for kind, n in kinds.items()}
    got = server.wait_for("smctrace_clc_messages_total > 0", ["type"], lambda r: r == want)
    assert got == want
    timed = [e for e in expected if e["event"] == "connection" and e["handshake_ms"] is not None]
    assert server.by_labels("sum(smctrace_handshake_seconds_count)") == {(): float(len(timed))}
    # every SMC-D handshake over loopback-ism took less than 25 ms
    assert server.by_labels('sum(smctrace_handshake_seconds_bucket{path="SMC-D",le="0.025"})'
                            ) == {(): 2.0}
    assert server.by_labels("smctrace_malformed_messages_total + smctrace_gaps_total") == \
        {(): 0.0}
    followed = server.wait_for("smctrace_connections_followed", [], lambda r: r == {(): 0.0})
    assert followed == {(): 0.0}
    (build,) = server.query("smctrace_build_info")
    assert build["value"][1] == "1" and build["metric"]["version"]


def test_loss_counters_per_interface(lab: ServiceLab,
                                     scraped: tuple[prometheus.Prometheus, LiveTracer]) -> None:
    server, _ = scraped
    # The counters are published once a second by the idle tracer: wait for the last ones.
    summary = lab.fetch_json(f"http://{HTTP}/api/summary")
    kept = server.wait_for("smctrace_frames_kept_total", ["interface"],
                           lambda r: r == {(lab.traced,): float(summary["received"])})
    assert kept == {(lab.traced,): float(summary["received"])}
    assert summary["kept"] == summary["received"] > 0
    assert server.by_labels("smctrace_frames_dropped_total", "interface") == \
        {(lab.traced,): 0.0}
    seen = server.by_labels("smctrace_frames_seen_by_filter_total", "interface")
    assert seen[(lab.traced,)] >= summary["received"]


def test_contrib_alert_rules_load_and_evaluate(
        scraped: tuple[prometheus.Prometheus, LiveTracer]) -> None:
    server, _ = scraped
    groups = server.api("rules")["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {"instance:smctrace_fallback_ratio:rate10m", "SmcFallbackRateHigh",
                          "SmctraceFramesDropped", "SmctraceDown"}
    assert all(rule["health"] == "ok" for rule in rules.values()), rules


def test_the_trace_ends_cleanly(lab: ServiceLab,
                                scraped: tuple[prometheus.Prometheus, LiveTracer]) -> None:
    _, tracer = scraped
    events = tracer.stop()
    assert tracer.proc.returncode == 0, tracer.stderr
    assert events[-1]["event"] == "summary" and events[-1]["dropped"] == 0
    assert not any("Traceback" in line for line in tracer.stderr)

