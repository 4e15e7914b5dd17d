"""The one schema: every output validates against the published document, the fast JSON
writer equals the schema's records byte for byte, the README shows the schema as it is,
and the type rule holds."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from smctrace import schema
from smctrace.capture.pcapfile import CaptureFile
from smctrace.output.jsonl import JsonOutput, encode
from smctrace.pipeline import Tracer
from tests.support.tracing import RecordingSink

REPO = Path(__file__).resolve().parents[1]
REAL = sorted((REPO / "tests" / "data" / "real-kernel").glob("*.pcap"))
GOLDEN = sorted((REPO / "tests" / "golden").glob("*.jsonl"))
VALIDATOR = Draft202012Validator(schema.json_schema())
MAX_EXACT = 2**53


def smctrace_json(path: Path, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "smctrace", "-f", str(path), "--json", *args],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_the_document_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(schema.json_schema())
    printed = subprocess.run([sys.executable, "-m", "smctrace", "--json-schema"],
                             capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert json.loads(printed) == schema.json_schema()


def _walk_numbers(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _walk_numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _walk_numbers(v)]
    return []


@pytest.mark.parametrize("args", [(), ("--reserved", "--hex")], ids=["plain", "reserved-hex"])
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_capture_output_validates(path: Path, args: tuple[str, ...]) -> None:
    events = smctrace_json(path, *args)
    assert events[-1]["event"] == "summary"
    assert events[-1]["schema_version"] == schema.SCHEMA_VERSION
    for event in events:
        errors = sorted(VALIDATOR.iter_errors(event), key=str)
        assert not errors, (event, [e.message for e in errors])
        assert all(abs(n) < MAX_EXACT for n in _walk_numbers(event)), event


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_golden_validates(path: Path) -> None:
    for line in path.read_text().splitlines():
        if line.startswith("# stderr"):
            continue
        assert VALIDATOR.is_valid(json.loads(line)), line


@pytest.mark.parametrize("reserved,hex_dump", [(False, False), (True, True)])
def test_fast_message_lines_equal_the_schema_records(reserved: bool, hex_dump: bool) -> None:
    sink = RecordingSink()
    tracer = Tracer(sink)
    for path in REAL:
        with CaptureFile(str(path)) as capture:
            tracer.feed_segments(capture.segments(tracer.engine))
    tracer.finish()
    # every message type of the real captures goes through the writer
    assert {e.message.kind for e in sink.messages} >= {"proposal", "accept", "confirm", "decline"}
    out = io.StringIO()
    writer = JsonOutput(out, reserved=reserved, hex_dump=hex_dump)
    for event in sink.messages * 2:  # the second time from the writer's cache
        writer.on_message(event)
    writer.flush()
    expected = [encode(schema.clc_record(e, reserved=reserved, hex_dump=hex_dump))
                for e in sink.messages * 2]
    assert out.getvalue().splitlines() == expected


def test_every_declared_field_is_emitted_and_only_those() -> None:
    """The declarations and the objects agree: no undocumented field, no stale one."""
    emitted: dict[str, set[str]] = {kind: set() for kind in schema.MESSAGE_FIELDS}
    for path in REAL:
        for event in smctrace_json(path):
            if event["event"] == "clc":
                emitted[event["type"]] |= set(event["fields"])
    for kind in ("proposal", "accept", "confirm", "decline"):
        declared = {p.name for g in schema.MESSAGE_FIELDS[kind] for p in g.props}
        assert emitted[kind] <= declared, emitted[kind] - declared
    declared_connection = {p.name for p in schema.CONNECTION_EVENT}
    for path in REAL[:3]:
        for event in smctrace_json(path):
            if event["event"] == "connection":
                assert set(event) == declared_connection
