"""The --http service's parts, in process: listen addresses, metrics and their labels, the
ring of recent connections, hostnames and EIDs, the live summary, the JSON encoding."""

from __future__ import annotations

import io
import json
import random
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from smctrace.clc import ClcHeader, Decline
from smctrace.clc.codes import DECLINE_CLASS_NAMES, HISTORIC_DECLINE_CODES, DeclineCode
from smctrace.events import ConnectionId, ConnectionOutcome, Endpoint, Role
from smctrace.output.jsonl import JsonOutput
from smctrace.service import api, recent
from smctrace.service.address import ListenAddressError, parse_listen_address
from smctrace.service.metrics import HANDSHAKE_BUCKETS, decline_label, version_label
from smctrace.service.sink import ServiceSink
from tests.support import hostile
from tests.support.service import merged_real_capture
from tests.support.tracing import RecordingSink, trace_capture


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return merged_real_capture(tmp_path_factory.mktemp("svc") / "merged.pcap")


@pytest.fixture(scope="module")
def traced(merged: Path) -> tuple[ServiceSink, list[dict[str, Any]]]:
    """The merged real captures traced into the service's sink and into --json at once."""
    out = io.StringIO()
    sink = ServiceSink(recent=1000, output=JsonOutput(out))
    trace_capture(merged, sink)
    return sink, [json.loads(line) for line in out.getvalue().splitlines()]


def samples(sink: ServiceSink) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of /metrics by sample name, parsed by prometheus_client's own parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    text = sink.metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


# -- listen addresses -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "host", "port", "family", "loopback"), [
    ("9100", "127.0.0.1", 9100, socket.AF_INET, True),
    (":9100", "127.0.0.1", 9100, socket.AF_INET, True),
    ("localhost:9100", "127.0.0.1", 9100, socket.AF_INET, True),
    ("127.0.0.1:0", "127.0.0.1", 0, socket.AF_INET, True),
    ("[::1]:9100", "::1", 9100, socket.AF_INET6, True),
    ("[::]:9100", "::", 9100, socket.AF_INET6, False),
    ("0.0.0.0:9100", "0.0.0.0", 9100, socket.AF_INET, False),
    ("10.1.2.3:80", "10.1.2.3", 80, socket.AF_INET, False),
])
def test_listen_addresses(text: str, host: str, port: int, family: socket.AddressFamily,
                          loopback: bool) -> None:
    address = parse_listen_address(text)
    assert (address.host, address.port, address.family, address.loopback) == \
        (host, port, family, loopback)


@pytest.mark.parametrize("text", ["", "x", "host.example:80", "127.0.0.1:", "127.0.0.1:99999",
                                  "::1:9100", "[::1]", "[::1]9100", "[fe80::1%eth0]:80",
                                  "1.2.3:80", "127.0.0.1:-1"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ListenAddressError) as caught:
        parse_listen_address(text)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("--http")


# -- metrics ------------------------------------------------------------------------------


def test_label_values() -> None:
    assert decline_label(int(DeclineCode.NOUEID)) == "NOUEID"
    assert decline_label(0x02000000) == HISTORIC_DECLINE_CODES[0x02000000][0]
    assert decline_label(0x03990000) == "UNKNOWN_0x03"
    assert decline_label(0x7F000001) == "UNKNOWN"
    assert [version_label(v, r) for v, r in ((1, None), (2, 1), (2, 0), (2, None),
                                             (None, None))] == \
        ["v1", "v2.1", "v2.0", "v2", ""]


def expected_connection_series(events: list[dict[str, Any]]) -> dict[tuple[str, ...], int]:
    """smctrace_connections_total as it must be, worked out from the --json objects."""
    out: dict[tuple[str, ...], int] = {}
    for e in events:
        if e["event"] != "connection":
            continue
        version = ""
        if e["version"] is not None:
            version = f"v{e['version']}" + (f".{e['release']}" if e["version"] >= 2 and
                                             e["release"] is not None else "")
        decline = e["decline"] or {}
        key = (e["outcome"], e["path"] or "", version, decline.get("name", ""),
               decline.get("from") or "")
        out[key] = out.get(key, 0) + 1
    return out


def test_metrics_match_the_json_of_real_captures(
        traced: tuple[ServiceSink, list[dict[str, Any]]]) -> None:
    sink, events = traced
    got = samples(sink)
    connections = {(s["outcome"], s["path"], s["version"], s["decline"], s["decline_from"]):
                   int(v) for s, v in got["smctrace_connections_total"]}
    assert connections == expected_connection_series(events)
    assert sum(connections.values()) == 9  # the real captures hold 9 SMC connections
    messages = {s["type"]: int(v) for s, v in got["smctrace_clc_messages_total"]}
    clc = [e["type"] for e in events if e["event"] == "clc"]
    assert messages == {kind: clc.count(kind) for kind in
                        ("proposal", "accept", "confirm", "decline", "unknown")}
    assert got["smctrace_malformed_messages_total"] == [({}, 0.0)]
    assert got["smctrace_gaps_total"] == [({}, 0.0)]
    assert got["smctrace_connections_followed"] == [({}, 0.0)]


def test_handshake_histogram(traced: tuple[ServiceSink, list[dict[str, Any]]]) -> None:
    sink, events = traced
    got = samples(sink)
    timed = [e for e in events if e["event"] == "connection" and e["handshake_ms"] is not None]
    for outcome, path in {(e["outcome"], e["path"] or "") for e in timed}:
        mine = [e["handshake_ms"] / 1000 for e in timed
                if (e["outcome"], e["path"] or "") == (outcome, path)]
        buckets = {s["le"]: v for s, v in got["smctrace_handshake_seconds_bucket"]
                   if (s["outcome"], s["path"]) == (outcome, path)}
        assert len(buckets) == len(HANDSHAKE_BUCKETS) + 1
        for bound in HANDSHAKE_BUCKETS:
            assert buckets[str(bound)] == sum(1 for x in mine if x <= bound)
        assert buckets["+Inf"] == len(mine)
        (count,) = [v for s, v in got["smctrace_handshake_seconds_count"]
                    if (s["outcome"], s["path"]) == (outcome, path)]
        (total,) = [v for s, v in got["smctrace_handshake_seconds_sum"]
                    if (s["outcome"], s["path"]) == (outcome, path)]
        assert count == len(mine) and total == pytest.approx(sum(mine))
    # SMC-D over loopback-ism in well under 100 ms, the TIMEOUT_CL fallback after 5.5 s
    smcd = {s["le"]: v for s, v in got["smctrace_handshake_seconds_bucket"]
            if s["path"] == "SMC-D"}
    assert smcd["0.025"] == 2
    assert {s["le"]: v for s, v in got["smctrace_handshake_seconds_bucket"]
            if s["outcome"] == "fallback"}["5.0"] == 5


def test_exposition_is_node_exporter_style(
        traced: tuple[ServiceSink, list[dict[str, Any]]]) -> None:
    sink, _ = traced
    text = sink.metrics.exposition().decode()
    assert "_created" not in text  # no creation-time series beside the counters
    got = samples(sink)
    (build,) = got["smctrace_build_info"]
    assert build[1] == 1.0 and build[0]["version"]
    assert "process_cpu_seconds_total" in got
    # the live capture's counters appear once there is a capture to count
    assert not any(name.startswith("smctrace_frames_") for name in got)


def decline_outcome(n: int, code: int, sender: Role) -> ConnectionOutcome:
    header = ClcHeader(eyecatcher="SMC-R", type=4, length=28, version=1, flags=0)
    return ConnectionOutcome(
        conn=ConnectionId(Endpoint(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                                   1024 + n % 60000), Endpoint("10.255.0.1", 7001)),
        start=float(n), end=n + 0.01, syn_option=True, synack_option=True,
        messages=("proposal", "decline"), outcome="fallback", path=None, version=None,
        release=None, first_contact=None, decline=Decline(header=header, raw=b"",
                                                          diagnosis=code),
        decline_from=sender, reason="declined", handshake_ms=10.0)


def test_label_values_stay_bounded() -> None:
    """10,000 Declines with random codes from 10,000 peers: a bounded number of series,
    none naming a peer."""
    rng = random.Random(5)
    sink = ServiceSink(recent=10)
    for n in range(10_000):
        sender: Role = "client" if rng.random() < 0.5 else "server"
        sink.on_connection(decline_outcome(n, rng.getrandbits(32), sender))
    series = samples(sink)["smctrace_connections_total"]
    allowed = {code.name for code in DeclineCode} | \
        {name for name, _ in HISTORIC_DECLINE_CODES.values()} | \
        {f"UNKNOWN_0x{cls:02x}" for cls in DECLINE_CLASS_NAMES} | {"UNKNOWN"}
    assert {labels["decline"] for labels, _ in series} <= allowed
    assert len(series) <= 2 * (len(DECLINE_CLASS_NAMES) + 1)  # random codes: unknown ones
    assert sum(v for _, v in series) == 10_000
    assert not any("10." in value for labels, _ in series for value in labels.values())
    assert len(sink.top_declines(1000)) <= 2 * (len(DECLINE_CLASS_NAMES) + 1)


# -- the ring, peer names, the live summary ------------------------------------------------


def test_ring_keeps_the_newest_and_selects() -> None:
    ring = recent.RecentConnections(3)
    for n in range(1, 6):
        ring.add(decline_outcome(n, 0x03030008, "server"), None)
    assert [seq for seq, _, _ in ring.select()] == [3, 4, 5]
    assert [seq for seq, _, _ in ring.select(after=3)] == [4, 5]
    assert [seq for seq, _, _ in ring.select(after=1)] == [3, 4, 5]  # 2 fell out
    assert ring.select(after=5) == []
    assert [seq for seq, _, _ in ring.select(since=4.0)] == [4, 5]  # end 4.01 > 4
    assert [seq for seq, _, _ in ring.select(limit=1)] == [5]
    assert ring.last_seq == 5
    with pytest.raises(ValueError):
        recent.RecentConnections(0)


def test_hostnames_and_eid_reach_the_page_rows(tmp_path: Path) -> None:
    sink = ServiceSink(recent=10)
    trace_capture(hostile.write_capture(tmp_path / "hostile.pcap"), sink)
    (row,) = json.loads(api.page(sink, api.TraceInfo("-f x", 0.0), ""))["rows"]
    assert (row["client_hostname"], row["server_hostname"], row["eid"]) == \
        (hostile.HOSTILE_CLIENT_HOSTNAME, hostile.HOSTILE_SERVER_HOSTNAME, hostile.HOSTILE_EID)
    assert row["connection"]["outcome"] == "smc"


def accept_event(tmp_path: Path) -> Any:
    """The hostile capture's Accept, as the tracker reported it."""
    sink = RecordingSink()
    trace_capture(hostile.write_capture(tmp_path / "hostile.pcap"), sink)
    return next(e for e in sink.messages if e.message.kind == "accept")


def test_pending_peer_names_are_bounded(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.setattr(recent, "MAX_PENDING_PEERS", 3)
    collector = recent.PeerNameCollector()
    accept = accept_event(tmp_path)
    conns = [ConnectionId(Endpoint(accept.conn.client.ip, port), accept.conn.server)
             for port in range(10)]
    for conn in conns:
        collector.on_message(conn, accept.message)
    assert len(collector._pending) == 3
    assert collector.take(conns[9]) == [None, hostile.HOSTILE_SERVER_HOSTNAME,
                                        hostile.HOSTILE_EID]
    assert collector.take(conns[0]) is None  # the oldest went


def test_peer_names_go_with_the_connection_object(tmp_path: Path) -> None:
    """Names are kept under the tracker's ConnectionId object: an equal but other object
    (a connection of the same addresses, later) never gets them."""
    collector = recent.PeerNameCollector()
    accept = accept_event(tmp_path)
    collector.on_message(accept.conn, accept.message)
    twin = ConnectionId(accept.conn.client, accept.conn.server)
    assert twin == accept.conn and twin is not accept.conn
    assert collector.take(twin) is None
    collector.on_message(accept.conn, accept.message)
    assert collector.take(accept.conn) == [None, hostile.HOSTILE_SERVER_HOSTNAME,
                                           hostile.HOSTILE_EID]
    assert collector.take(accept.conn) is None  # taken once


def test_live_summary_then_final(traced: tuple[ServiceSink, list[dict[str, Any]]],
                                 merged: Path) -> None:
    sink, events = traced
    summary = events[-1]
    assert json.loads(api.summary(sink)) == summary  # after finish(): the final one
    live = ServiceSink(recent=10)
    tracer, _frames = trace_capture(merged, live, finish=False)
    live.tick(tracer.summary(123), tracer.tracker.followed)
    now = json.loads(api.summary(live))
    assert now["frames"] == 123
    assert (now["outcomes"], now["messages"], now["connections"]) == \
        (tracer.summary(0).outcomes, tracer.summary(0).messages, tracer.summary(0).connections)
    page = json.loads(api.page(live, api.TraceInfo("-f x", 0.0), ""))
    assert page["state"] == "tracing" and page["followed"] == tracer.tracker.followed


def test_json_escapes_markup_and_decodes_to_the_same() -> None:
    obj = {"eid": hostile.HOSTILE_EID, "host": "a & b > c"}
    text = api.encode(obj)
    assert b"<" not in text and b">" not in text and b"&" not in text
    assert json.loads(text) == obj


def test_api_refuses_bad_queries() -> None:
    sink = ServiceSink(recent=10)
    for query in ("since=abc", "since=nan", "since=inf", "after=-1", "limit=x", "x=1",
                  "since=1&since=2", "since", "after=1e3", "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9"):
        with pytest.raises(api.ApiError):
            api.connections(sink, query)
