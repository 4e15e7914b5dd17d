"""Send frames out of a network interface: real captures replayed, floods, benchmarks.

Run inside the network namespace that holds the interface (the socket is made where the
process runs), e.g. ``ip netns exec NS python -m tests.support.replay IFACE a.pcap b.pcap``:

    python -m tests.support.replay IFACE [--rate FPS] [--wait-go] [--flood N] FILE...

FILE is a pcap/pcapng capture (Ethernet frames) or a *frame blob* written by
:func:`write_blob` (``.frames``: 2-byte big-endian length + frame, repeated).  Frames leave
with sendmmsg(2) in batches, at top speed or paced at ``--rate`` frames/s.  ``--flood N``
interleaves N ordinary TCP segments (data, ACKs, plain SYN/FIN, a payload starting with
half an eyecatcher) evenly between the frames: traffic the kernel filter must drop.
With ``--wait-go`` the sender prints ``ready`` once its socket is bound and waits for a
line on standard input, so a caller can start its clock.  At the end it prints one JSON
line: ``{"frames": sent, "flood": flood frames sent, "seconds": ..., "retries": ...}``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import socket
import struct
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from smctrace.capture.pcapfile import CaptureFile
from smctrace.packet import ACK, FIN, PSH, SYN
from tests.support.synth import tcp_frame

BATCH = 128
SEND_BUFFER = 8 << 20
MAX_RETRIES = 100_000


def capture_frames(paths: Iterable[Path | str]) -> list[bytes]:
    """The link-layer bytes of every frame of the given captures, in order."""
    frames: list[bytes] = []
    for path in paths:
        with CaptureFile(str(path)) as capture:
            frames += [frame.data for frame in capture.frames()]
    return frames


def write_blob(path: Path, frames: Iterable[bytes]) -> int:
    """Write frames as a blob for the sender; returns how many were written."""
    count = 0
    with path.open("wb") as out:
        for data in frames:
            out.write(struct.pack("!H", len(data)) + data)
            count += 1
    return count


def read_blob(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames: list[bytes] = []
    pos = 0
    while pos + 2 <= len(data):
        (length,) = struct.unpack_from("!H", data, pos)
        frames.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return frames


def load(paths: Sequence[str]) -> list[bytes]:
    frames: list[bytes] = []
    for name in paths:
        path = Path(name)
        frames += read_blob(path) if path.suffix == ".frames" else capture_frames([path])
    return frames


def flood_frames(count: int) -> list[bytes]:
    """``count`` ordinary TCP segments on varying source ports (never SMC-relevant)."""
    templates = [
        bytearray(tcp_frame("198.51.100.1", "198.51.100.2", 1024, 80, flags=flags,
                            payload=payload))
        for flags, payload in ((ACK | PSH, bytes(100)), (ACK, b""), (SYN, b""),
                               (FIN | ACK, b""), (ACK | PSH, b"\xe2\xd4" + bytes(60)))
    ]
    out: list[bytes] = []
    for i in range(count):
        template = templates[i % len(templates)]
        struct.pack_into("!H", template, 34, 1024 + (i % 60000))  # the TCP source port
        out.append(bytes(template))
    return out


def interleave(frames: list[bytes], flood: list[bytes]) -> list[bytes]:
    """The flood spread evenly between the frames (all of it sent before the last frame)."""
    if not flood:
        return frames
    per_gap = len(flood) // max(len(frames), 1) + 1
    out: list[bytes] = []
    taken = 0
    for data in frames:
        out += flood[taken : taken + per_gap]
        taken += per_gap
        out.append(data)
    return out


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_Iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def send(interface: str, frames: list[bytes], *, rate: float = 0.0,
         wait_go: bool = False) -> dict[str, float]:
    """Send ``frames`` out of ``interface`` (in this process's namespace)."""
    blob = b"".join(frames)
    buffer = ctypes.create_string_buffer(blob, len(blob))
    base = ctypes.addressof(buffer)
    count = len(frames)
    iovecs = (_Iovec * max(count, 1))()
    messages = (_Mmsghdr * max(count, 1))()
    offset = 0
    for i, data in enumerate(frames):
        iovecs[i].base, iovecs[i].len = base + offset, len(data)
        messages[i].hdr.iov = ctypes.pointer(iovecs[i])
        messages[i].hdr.iovlen = 1
        offset += len(data)
    libc = ctypes.CDLL(None, use_errno=True)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((interface, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    if wait_go:
        print("ready", flush=True)
        sys.stdin.readline()
    sent = retries = 0
    start = time.perf_counter()
    while sent < count:
        if rate:
            delay = start + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        want = min(BATCH, count - sent)
        got = libc.sendmmsg(sock.fileno(),
                            ctypes.byref(messages, sent * ctypes.sizeof(_Mmsghdr)), want, 0)
        if got < 0:
            retries += 1
            if retries > MAX_RETRIES:
                raise OSError(ctypes.get_errno(),
                              f"sendmmsg: {os.strerror(ctypes.get_errno())}")
            time.sleep(0.0001)
            continue
        sent += got
    seconds = time.perf_counter() - start
    sock.close()
    return {"frames": sent, "seconds": seconds, "retries": retries}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.replay",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("interface")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--rate", type=float, default=0.0, help="frames/s (0: top speed)")
    parser.add_argument("--flood", type=int, default=0, metavar="N")
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args(argv)
    frames = load(args.files)
    flood = flood_frames(args.flood)
    result = send(args.interface, interleave(frames, flood), rate=args.rate,
                  wait_go=args.wait_go)
    result["flood"] = len(flood)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
