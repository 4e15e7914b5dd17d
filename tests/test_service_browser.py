"""The live page in a real browser: headless Chromium (DevTools protocol over a pipe) on
``smctrace -i --http`` while captures are replayed on a veth pair.  The page shows a row
for each traced connection, updates by itself when new connections arrive, and renders a
hostile EID and hostnames as text.  A screenshot is kept as a test artifact (in
$SMCTRACE_TEST_ARTIFACTS if set, else in pytest's temporary directory), never in git.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import browser, hostile, netlab
from tests.support.service import REAL_CAPTURES, LiveTracer, ServiceLab, offline

HTTP = "127.0.0.1:9100"
URL = f"http://{HTTP}/"
FIRST = [path for path in REAL_CAPTURES if path.name.startswith(("A-", "C-", "D2-", "F-"))]
LATER = [path for path in REAL_CAPTURES if path not in FIRST]

ROWS = """[...document.querySelectorAll('#recent tbody tr')].map(tr =>
    [...tr.cells].map(td => td.textContent))"""
COLUMNS = ("time", "client", "server", "outcome", "path", "decline", "handshake", "peers")


@pytest.fixture(scope="module")
def lab() -> Iterator[ServiceLab]:
    for problem in (netlab.available(), browser.available()):
        if problem:
            pytest.skip(problem)
    with ServiceLab("smct-web") as service_lab:
        yield service_lab


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("SMCTRACE_TEST_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def tracer(lab: ServiceLab) -> LiveTracer:
    started = lab.start_tracer("--http", HTTP)
    try:
        started.wait_ready()
    except RuntimeError as exc:
        pytest.skip(f"live tracing unavailable here: {exc}")
    return started


@pytest.fixture(scope="module")
def page(lab: ServiceLab, tracer: LiveTracer,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[browser.Page]:
    with browser.Chromium(lab.argv(), tmp_path_factory.mktemp("chromium-profile")) as chrome:
        yield chrome.open(URL)


def rows(page: browser.Page) -> list[dict[str, str]]:
    return [dict(zip(COLUMNS, cells, strict=True)) for cells in page.evaluate(ROWS)]


def expected_rows(paths: list[Path]) -> list[tuple[str, str, str, str]]:
    out = []
    for path in paths:
        for e in offline(path):
            if e["event"] == "connection":
                decline = e["decline"]
                text = "" if decline is None else \
                    f"{decline['hex']} {decline['name']}: {decline['text']} ({decline['from']})"
                out.append((e["client"], e["server"], e["outcome"], text))
    return out


def shown(page_rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(r["client"], r["server"], r["outcome"],
             r["decline"] if r["decline"].startswith("0x") else "") for r in page_rows]


def test_rows_of_the_traced_connections(lab: ServiceLab, tracer: LiveTracer,
                                        page: browser.Page, artifacts: Path) -> None:
    lab.replay(FIRST)
    want = expected_rows(FIRST)
    tracer.wait_connections(len(want))
    page.wait_until(f"document.querySelectorAll('#recent tbody tr').length === {len(want)}")
    got = rows(page)
    assert sorted(shown(got)) == sorted(want)
    smc = [r for r in got if r["outcome"] == "smc"]
    assert sorted(r["path"] for r in smc) == ["SMC-D v2.1", "SMC-R v2.1"]
    assert all(float(r["handshake"]) > 0 for r in got)
    counts = page.evaluate("['smc','fallback','failed','incomplete'].map(o => "
                           "document.getElementById('count-' + o).textContent)")
    assert counts == [str(sum(1 for r in want if r[2] == o))
                      for o in ("smc", "fallback", "failed", "incomplete")]
    page.screenshot(artifacts / "page-first.png")


def test_page_updates_when_new_connections_arrive(lab: ServiceLab, tracer: LiveTracer,
                                                  page: browser.Page,
                                                  artifacts: Path) -> None:
    before = len(rows(page))
    assert before > 0  # test_rows_of_the_traced_connections ran first
    marker = page.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloaded
    lab.replay(LATER)
    want = expected_rows(FIRST) + expected_rows(LATER)
    tracer.wait_connections(len(want))
    page.wait_until(f"document.querySelectorAll('#recent tbody tr').length === {len(want)}")
    assert page.evaluate("window.__sameDocument") == marker == "yes"
    got = rows(page)
    assert sorted(shown(got)) == sorted(want)
    # newest first: the last connection traced is the top row
    last = tracer.connections()[-1]
    assert (got[0]["client"], got[0]["server"]) == (last["client"], last["server"])
    declines = page.evaluate("[...document.querySelectorAll('#declines tbody tr')].map("
                             "tr => tr.cells[0].textContent + ' ' + tr.cells[2].textContent"
                             " + ' ' + tr.cells[3].textContent)")
    assert "0x03030000 NOSMCDEV client 2" in declines
    loss = page.evaluate("document.getElementById('loss').textContent")
    assert "dropped" in loss and "seen by filter" in loss
    interfaces = page.evaluate(
        "[...document.querySelectorAll('#interfaces tbody tr')].map(tr => tr.cells[0]"
        ".textContent)")
    assert interfaces == [lab.traced]
    page.screenshot(artifacts / "page-updated.png")


def test_hostile_names_render_as_text(lab: ServiceLab, tracer: LiveTracer, page: browser.Page,
                                      artifacts: Path, tmp_path: Path) -> None:
    count = len(tracer.connections())
    # had any of the markup run, it would have called alert()
    page.evaluate("window.alert = () => { window.__alerted = true; }; 0")
    lab.replay([hostile.write_capture(tmp_path / "hostile.pcap")])
    tracer.wait_connections(count + 1)
    page.wait_until(f"document.querySelectorAll('#recent tbody tr').length === {count + 1}")
    top = rows(page)[0]
    assert top["client"] == "198.51.100.7:40001" and top["outcome"] == "smc"
    assert top["peers"] == (f"client {hostile.HOSTILE_CLIENT_HOSTNAME}, server "
                            f"{hostile.HOSTILE_SERVER_HOSTNAME}, EID {hostile.HOSTILE_EID}")
    # nothing of it became markup: no script, image or bold element anywhere in the page,
    # and the top row's cells hold text nodes only
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # page.js
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0
    assert page.evaluate("[...document.querySelector('#recent tbody tr').cells].every("
                         "td => [...td.childNodes].every(n => n.nodeType === 3))") is True
    assert page.evaluate("window.__alerted === undefined") is True
    page.screenshot(artifacts / "page-hostile.png")
    print(f"screenshots in {artifacts}")


def test_page_api_matches_json(lab: ServiceLab, tracer: LiveTracer) -> None:
    """What the page drew came from /api/page, whose connections are the --json objects
    and whose summary (the tracer's, published once a second) catches up with them."""
    traced = tracer.connections()
    deadline = time.monotonic() + 10
    while True:
        data: dict[str, Any] = lab.fetch_json(f"{URL}api/page")
        if data["summary"]["connections"] == len(traced) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [row["connection"] for row in data["rows"]] == traced[-len(data["rows"]):]
    assert data["summary"]["connections"] == len(traced)
    assert data["summary"]["kept"] == data["summary"]["received"] > 0
