"""Probes the live benchmarks run in a fresh process inside the lab's namespace:

    python -m bench.probe attach IFACE BACKEND
        import smctrace.live, attach a LiveCapture, close it; one JSON line with the
        import and attach seconds and the backend used (start-up section);
    python -m bench.probe capture IFACE BACKEND [--python]
        the live receive path alone: LiveCapture.batches into the engine (parsed
        segments, no tracker, decoder or output) until SIGINT/SIGTERM, printing
        ``{"event": "connection"}`` per 1,000 segments and a summary line with the frames
        and segments read and the capture's counters (capacity section).
        ``--python``: the per-frame Python receive path instead of Engine.drain.

PYTHONPATH must hold scripts/ (the launcher's children get it from bench.livelab).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence


def attach(interface: str, backend: str) -> dict[str, object]:
    started = time.monotonic()
    from smctrace.live import LiveCapture

    imported = time.monotonic()
    capture = LiveCapture([interface], backend=backend)
    capture.attach()
    capture.close()
    return {"import": imported - started, "attach": capture.attach_seconds,
            "used": capture.backend_used}


def capture(interface: str, backend: str, python_receive: bool) -> dict[str, object]:
    from smctrace.live import LiveCapture
    from smctrace.match.engine import new_engine

    stop: list[int] = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    live = LiveCapture([interface], backend=backend)
    live.attach()
    print(f"tracing on {interface} (capture probe)", file=sys.stderr, flush=True)
    engine = new_engine()
    frames = segments = reported = 0
    last = 0.0
    for batch in live.batches(engine, lambda: bool(stop), poll_interval=0.2,
                              native=False if python_receive else None):
        if batch.count:
            frames += batch.count
            segments += len(batch.segments)
            last = time.time()
            while segments - reported >= 1000:
                reported += 1000
                print('{"event": "connection"}', flush=True)
    live.close()
    return {"event": "summary", "frames": frames, "segments": segments, "last": last,
            **live.stats()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    parser.add_argument("mode", choices=("attach", "capture"))
    parser.add_argument("interface")
    parser.add_argument("backend")
    parser.add_argument("--python", action="store_true", help="the Python receive path")
    args = parser.parse_args(argv)
    if args.mode == "attach":
        result = attach(args.interface, args.backend)
    else:
        result = capture(args.interface, args.backend, args.python)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
