"""Live capture: filtered AF_PACKET sockets, one per traced interface.

Each socket is made race-free: ``socket(AF_PACKET, type, 0)`` receives nothing until it is
bound, the filter is attached first, and only then is the socket bound to its interface
with ETH_P_ALL, so no unfiltered frame can slip in between.

Ethernet-like devices (Ethernet, loopback) get a SOCK_RAW socket and frames come out as
LINKTYPE_ETHERNET (a VLAN tag the kernel moved out of band is put back, as libpcap does).
Every other device, and ``-i any`` (one socket bound to interface index 0), gets a
SOCK_DGRAM socket: the kernel then hands the filter the frame from its IP header on,
whatever the device's link header is, and the frames come out as LINKTYPE_LINUX_SLL2 with
the interface index, device type and packet type from the socket address.

:meth:`LiveCapture.batches` reads the sockets and feeds an engine: with the C engine
(``Engine.drain``) each poll round is a few recvmmsg(2) calls and no Python per frame;
without it (or with ``SMCTRACE_RECEIVE=python`` in the environment, for comparison) it
runs :meth:`LiveCapture.frames`, one recvmsg and one :class:`Frame` per frame, and feeds
them one by one.  Both give the same segments and frames.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from smctrace.capabilities import missing_for_capture
from smctrace.frame import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, Frame, LinkLayer
from smctrace.live.errors import LiveError
from smctrace.live.netdev import (
    ANY_INTERFACE,
    ARPHRD_LOOPBACK,
    Device,
    bind_packet_socket,
    index_in_namespace_of,
    resolve,
)
from smctrace.match import cbpf, rule
from smctrace.match.bcc import BccError, BccFilter, FilterParams, bcc_problem, program_text

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
SO_TIMESTAMPNS = 35  # also the cmsg type SCM_TIMESTAMPNS
SO_RCVBUFFORCE = 33
SO_ATTACH_BPF = 50
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100

BACKENDS = ("auto", "bcc", "cbpf")
SNAP_PAYLOAD = rule.PAYLOAD_CAP
# Headers in front of the payload: Ethernet + 2 VLAN tags + IPv6 with extension headers +
# TCP with options; 256 bytes cover every realistic stack.
DEFAULT_SNAPLEN = SNAP_PAYLOAD + 256
# Room for bursts of handshakes while the tracer decodes (about 20,000 handshakes' kept
# frames); a receive buffer costs kernel memory only while the tracer is behind.
RECEIVE_BUFFER_BYTES = 256 << 20
FRAMES_PER_WAKEUP = 256  # drain at most this many frames of one socket before polling again
RECEIVE_PATH_VARIABLE = "SMCTRACE_RECEIVE"  # "python": the per-frame Python path, always

_AUXDATA = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
_TIMESPEC = struct.Struct("=qq")
_SLL2 = struct.Struct("!HHIHBB8s")  # LINKTYPE_LINUX_SLL2 header, 20 bytes


@dataclass(slots=True)
class _Channel:
    """One capture socket and what is needed to turn its frames into Frames."""

    device: Device
    sock: socket.socket
    interface: int  # position of the device in the interface list
    received: int = 0  # PACKET_STATISTICS, accumulated (the kernel clears on read)
    dropped: int = 0


@dataclass(slots=True)
class Batch:
    """What one poll round of :meth:`LiveCapture.batches` read: the engine's segments,
    how many frames were read, and (only when asked for, for ``-w``) the frames."""

    segments: list[Any] = field(default_factory=list)
    count: int = 0
    frames: list[Frame] = field(default_factory=list)

    def per_frame(self) -> Iterator[tuple[Frame, list[Any]]]:
        """Each kept frame with the segments it gave (live, the engine applies no rule,
        so a segment always belongs to the frame of its number)."""
        by_number: dict[int, list[Any]] = {}
        for seg in self.segments:
            by_number.setdefault(seg[1], []).append(seg)
        for frame in self.frames:
            yield frame, by_number.get(frame.number, [])


def _drain(fd: int) -> None:
    """Empty a wake-up pipe (non-blocking)."""
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


class LiveCapture:
    """Filtered live capture on one or more interfaces (``"any"``: all of the netns).

    Use as a context manager, or call :meth:`attach` and :meth:`close` yourself.
    """

    def __init__(
        self,
        interfaces: list[str],
        backend: str = "auto",
        snaplen: int = DEFAULT_SNAPLEN,
        promisc: bool = True,
        *,
        filter_params: FilterParams | None = None,
        buffer_bytes: int = RECEIVE_BUFFER_BYTES,
    ) -> None:
        # Nothing is checked here: every problem surfaces from attach() as a LiveError.
        self.interfaces = list(interfaces) or [ANY_INTERFACE]
        self.backend = backend
        self.backend_used: str = "cbpf" if backend == "cbpf" else "bcc"
        self.notice: str | None = None
        # 0 means "whole frames" as in tcpdump -s 0; the filter still caps the payload.
        self.snaplen = snaplen if snaplen != 0 else 65535
        self.promisc = promisc
        self.buffer_bytes = buffer_bytes
        self.filter_params = filter_params or FilterParams(snap_payload=SNAP_PAYLOAD)
        self.attach_seconds = 0.0  # time attach() took (start-up cost of the backend)
        self._channels: list[_Channel] = []
        self._bcc_filters: dict[LinkLayer, BccFilter] = {}
        self._final_counters: dict[str, int] | None = None
        self._closed = False
        self._ifindex_by_name: dict[str, int] = {}

    # -- set-up -----------------------------------------------------------------------

    def attach(self) -> None:
        """Load the filter and open the sockets.  Raises LiveError (one line)."""
        started = time.monotonic()
        if self._closed or self._channels:
            raise LiveError("capture already attached or closed")
        if self.backend not in BACKENDS:
            raise LiveError(f"unknown capture backend {self.backend!r} (use auto, bcc or cbpf)")
        if ANY_INTERFACE in self.interfaces and len(self.interfaces) > 1:
            raise LiveError("-i any already covers every interface; give it alone")
        if len(set(self.interfaces)) != len(self.interfaces):
            raise LiveError("an interface is given twice")
        if self.snaplen < 64:
            raise LiveError(f"snapshot length {self.snaplen} is too small (at least 64)")
        devices = [resolve(name) for name in self.interfaces]
        missing = missing_for_capture(need_bpf=False)
        if missing:
            raise LiveError("live capture needs root or CAP_NET_RAW (try sudo)")
        link_layers = sorted({device.link_layer for device in devices})
        try:
            if self.backend_used == "bcc":
                self._load_bcc(link_layers)
            for index, device in enumerate(devices):
                self._channels.append(self._open_channel(index, device))
        except BaseException:
            self.close()
            raise
        self.attach_seconds = time.monotonic() - started

    def _load_bcc(self, link_layers: list[LinkLayer]) -> None:
        problem = bcc_problem()
        if problem is None:
            try:
                for link_layer in link_layers:
                    self._bcc_filters[link_layer] = BccFilter(link_layer, self.filter_params)
                return
            except BccError as exc:
                if self.backend == "bcc":
                    raise LiveError(str(exc)) from None
                problem = str(exc)
        elif self.backend == "bcc":
            raise LiveError(problem)
        for bcc_filter in self._bcc_filters.values():
            bcc_filter.close()
        self._bcc_filters.clear()
        self.backend_used = "cbpf"
        self.notice = f"using the classic-BPF filter ({cbpf.LIMITS}): {problem}"

    def _attach_filter(self, sock: socket.socket, device: Device) -> None:
        if self.backend_used == "bcc":
            prog_fd = self._bcc_filters[device.link_layer].fd
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
        else:
            program = cbpf.cbpf_program(device.link_layer, self.filter_params.snap_payload)
            cbpf.attach_filter(sock, program)

    def _open_channel(self, index: int, device: Device) -> _Channel:
        kind = socket.SOCK_RAW if device.link_layer == LinkLayer.ETHERNET else socket.SOCK_DGRAM
        # Protocol 0: the socket receives nothing until bind() names ETH_P_ALL below.
        sock = socket.socket(socket.AF_PACKET, kind, 0)
        try:
            try:
                self._attach_filter(sock, device)
            except OSError as exc:
                if exc.errno != errno.ENOMEM:
                    raise
                # Linux before 6.9 allows 20480 bytes of socket option memory, which the
                # filter is charged to, by default: raise it to 6.9's default, once.
                raised = _raise_optmem()
                if raised is None:
                    raise LiveError(_optmem_problem(self.backend_used)) from exc
                self._attach_filter(sock, device)
                raised_notice = (f"raised net.core.optmem_max from {raised} to "
                                 f"{OPTMEM_ENOUGH} bytes (Linux 6.9's default) to attach the "
                                 "filter")
                self.notice = f"{self.notice}; {raised_notice}" if self.notice else raised_notice
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.buffer_bytes)
            except PermissionError:  # without CAP_NET_ADMIN: as much as rmem_max allows
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer_bytes)
            try:
                bind_packet_socket(sock, device.ifindex)
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    raise LiveError(f"interface {device.name} does not exist") from exc
                if exc.errno == errno.ENETDOWN:
                    raise LiveError(f"interface {device.name} is down") from exc
                raise
            if self.promisc and device.ifindex:
                membership = struct.pack("iHH8s", device.ifindex, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
            sock.setblocking(False)
        except PermissionError as exc:
            sock.close()
            raise LiveError(
                f"attaching to {device.name} was refused: run as root or with CAP_NET_RAW"
            ) from exc
        except BaseException:
            sock.close()
            raise
        return _Channel(device=device, sock=sock, interface=index)

    def __enter__(self) -> LiveCapture:
        if not self._channels:  # attach() may have been called already
            self.attach()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- capture ----------------------------------------------------------------------

    def _poller(self, wake_fd: int | None) -> tuple[select.poll, dict[int, _Channel]]:
        """A poll object over every socket (and ``wake_fd``), and each socket's channel."""
        if not self._channels:
            raise LiveError("capture is not attached")
        poller = select.poll()
        by_fd: dict[int, _Channel] = {}
        for channel in self._channels:
            poller.register(channel.sock.fileno(), select.POLLIN | select.POLLERR)
            by_fd[channel.sock.fileno()] = channel
        if wake_fd is not None:
            poller.register(wake_fd, select.POLLIN)
        return poller, by_fd

    def frames(
        self, stop: Callable[[], bool], poll_interval: float = 0.2, wake_fd: int | None = None
    ) -> Iterator[Frame | None]:
        """Frames as they pass the filter; None whenever the queues are drained, and on
        idle ticks (at least every ``poll_interval`` seconds), so the caller can flush its
        output and run timers.  Ends when ``stop()`` is
        true; raises LiveError when a traced interface goes away or down.

        ``wake_fd`` (e.g. the read end of a ``signal.set_wakeup_fd`` pipe) interrupts the
        wait at once, so a long ``poll_interval`` (few idle wake-ups: no CPU when nothing
        happens) does not delay a stop request."""
        poller, by_fd = self._poller(wake_fd)
        number = 0
        while not stop():
            events = poller.poll(poll_interval * 1000)
            if not events:
                yield None
                continue
            for fd, _ in events:
                if fd == wake_fd:
                    _drain(fd)
                    continue
                channel = by_fd[fd]
                for _ in range(FRAMES_PER_WAKEUP):
                    try:
                        data, ancdata, _flags, address = channel.sock.recvmsg(
                            self.snaplen, 256
                        )
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        raise self._channel_error(channel, exc) from exc
                    frame = self._frame(channel, data, ancdata, address, number + 1)
                    if frame is not None:
                        number += 1
                        yield frame
                if stop():
                    return
            # What was ready has been read: a pause in the stream (the caller flushes its
            # output and runs its timers).
            yield None

    def batches(
        self, engine: Any, stop: Callable[[], bool], poll_interval: float = 0.2,
        wake_fd: int | None = None, *, keep_frames: bool = False,
        native: bool | None = None,
    ) -> Iterator[Batch]:
        """Feed the frames that pass the filter to ``engine`` (as ``engine.feed(...,
        rule=False, out)``); one :class:`Batch` per poll round, an empty one on idle
        ticks (at least every ``poll_interval`` seconds).  ``keep_frames``: the batches
        also carry the frames (for ``-w``).  ``native``: None picks ``engine.drain``
        (the C engine's recvmmsg path) when there is one and the environment does not
        ask for the Python path; stop, wake-up and errors as in :meth:`frames`."""
        if native is None:
            native = (hasattr(engine, "drain")
                      and os.environ.get(RECEIVE_PATH_VARIABLE, "") != "python")
        if native:
            yield from self._native_batches(engine, stop, poll_interval, wake_fd, keep_frames)
            return
        batch = Batch()
        for frame in self.frames(stop, poll_interval, wake_fd):
            if frame is None:
                yield batch
                batch = Batch()
                continue
            batch.count += 1
            engine.feed(frame.data, frame.linktype, frame.time, frame.number,
                        frame.interface, frame.orig_len, False, batch.segments)
            if keep_frames:
                batch.frames.append(frame)
        if batch.count:
            yield batch

    def _native_batches(
        self, engine: Any, stop: Callable[[], bool], poll_interval: float,
        wake_fd: int | None, keep_frames: bool,
    ) -> Iterator[Batch]:
        poller, by_fd = self._poller(wake_fd)
        drain = engine.drain
        number = 0
        while not stop():
            events = poller.poll(poll_interval * 1000)
            batch = Batch()
            raw: list[tuple[float, int, bytes, int, int, int]] | None = (
                [] if keep_frames else None)
            for fd, _ in events:
                if fd == wake_fd:
                    _drain(fd)
                    continue
                channel = by_fd[fd]
                count, error = drain(
                    fd, channel.interface, channel.device.link_layer == LinkLayer.ETHERNET,
                    self.snaplen, number, FRAMES_PER_WAKEUP, batch.segments, raw)
                number += count
                batch.count += count
                if error not in (0, errno.EAGAIN):
                    if raw:
                        batch.frames += [Frame(*fields) for fields in raw]
                    yield batch
                    raise self._channel_error(channel, OSError(error, os.strerror(error)))
                if stop():
                    break
            if raw:
                batch.frames = [Frame(*fields) for fields in raw]
            yield batch

    def _channel_error(self, channel: _Channel, exc: OSError) -> LiveError:
        name = channel.device.name
        if exc.errno in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
            if name != ANY_INTERFACE and not index_in_namespace_of(channel.sock, name):
                return LiveError(f"interface {name} went away")
            return LiveError(f"interface {name} went down")
        return LiveError(f"reading from {name} failed: {exc.strerror or exc}")

    def _ifindex(self, channel: _Channel, name: str) -> int:
        ifindex = self._ifindex_by_name.get(name)
        if ifindex is None:
            # 0 if the interface is gone already; the frame is still worth showing.
            ifindex = index_in_namespace_of(channel.sock, name)
            self._ifindex_by_name[name] = ifindex
        return ifindex

    def _frame(
        self,
        channel: _Channel,
        data: bytes,
        ancdata: list[tuple[int, int, bytes]],
        address: tuple[str, int, int, int, bytes],
        number: int,
    ) -> Frame | None:
        ifname, protocol, pkttype, hatype, hwaddr = address
        # Each frame passes lo twice; the filters drop the outgoing copy, this is the
        # safety net for filters that cannot (like libpcap).
        if pkttype == rule.PACKET_OUTGOING and hatype == ARPHRD_LOOPBACK:
            return None
        wire_len = len(data)
        stamp = 0.0
        vlan: tuple[int, int] | None = None
        for level, kind, payload in ancdata:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(payload) >= _AUXDATA.size:
                status, wire_len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(payload)
                if status & TP_STATUS_VLAN_VALID:
                    vlan = (tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q, tci)
            elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
                stamp = seconds + nanoseconds / 1e9
        if not stamp:
            stamp = time.time()
        if channel.device.link_layer == LinkLayer.ETHERNET:
            if vlan is not None and len(data) >= 12:
                # The NIC or the kernel took the tag out of the frame; put it back where it
                # was so the frame reads as it was on the wire.
                data = data[:12] + struct.pack("!HH", *vlan) + data[12:]
                wire_len += 4
            linktype = LINKTYPE_ETHERNET
        else:
            header = _SLL2.pack(
                protocol, 0, self._ifindex(channel, ifname), hatype, pkttype, min(len(hwaddr), 8),
                hwaddr[:8],
            )
            data = header + data
            wire_len += _SLL2.size
            linktype = LINKTYPE_LINUX_SLL2
        return Frame(
            time=stamp,
            linktype=linktype,
            data=data[: self.snaplen],
            orig_len=max(wire_len, len(data)),
            interface=channel.interface,
            number=number,
        )

    def interface_link_types(self) -> list[tuple[str, int]]:
        """(name, link type of its frames) per traced interface, in Frame.interface order
        (for ``-w``).  Call after attach()."""
        if not self._channels:
            raise LiveError("capture is not attached")
        return [(channel.device.name,
                 LINKTYPE_ETHERNET if channel.device.link_layer == LinkLayer.ETHERNET
                 else LINKTYPE_LINUX_SLL2) for channel in self._channels]

    # -- statistics and tear-down -----------------------------------------------------

    def _poll_socket_stats(self) -> None:
        for channel in self._channels:
            with contextlib.suppress(OSError):
                raw = channel.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                packets, drops = struct.unpack("=II", raw)
                # tp_packets already includes tp_drops (the kernel adds them on read).
                channel.received += packets
                channel.dropped += drops

    def _filter_counters(self) -> dict[str, int]:
        if self._final_counters is not None:
            return self._final_counters
        totals: dict[str, int] = {}
        for bcc_filter in self._bcc_filters.values():
            for name, value in bcc_filter.counters().items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def stats(self) -> dict[str, int]:
        """Counters so far: ``seen_by_filter`` (frames the eBPF filter looked at; -1 with
        the classic-BPF backend, which cannot count), ``kept`` (frames the filter let
        through), ``received`` (frames that reached the socket, including dropped ones)
        and ``dropped`` (lost for lack of receive-buffer room); with the eBPF filter also
        what it counted of SYNs with the SMC option (``smc_syns``, ``answered``, and
        ``syns_deferred``: SYNs over the rate limit, remembered but not passed)."""
        if not self._closed:
            self._poll_socket_stats()
        received = sum(channel.received for channel in self._channels)
        dropped = sum(channel.dropped for channel in self._channels)
        if self.backend_used == "bcc" and (self._bcc_filters or self._final_counters):
            counters = self._filter_counters()
            return {"seen_by_filter": counters["seen_by_filter"],
                    "kept": counters["kept_by_filter"], "received": received,
                    "dropped": dropped, "smc_syns": counters["smc_syns"],
                    "answered": counters["answered"],
                    "syns_deferred": counters["syns_deferred"]}
        return {"seen_by_filter": -1, "kept": received, "received": received,
                "dropped": dropped}

    def socket_stats(self) -> dict[str, tuple[int, int]]:
        """Per traced interface: (``received``, ``dropped``) of its socket, as in stats().
        ``received`` counts every frame the filter let through on that interface."""
        if not self._closed:
            self._poll_socket_stats()
        return {channel.device.name: (channel.received, channel.dropped)
                for channel in self._channels}

    def filter_stats(self) -> dict[str, tuple[int, int]]:
        """Per eBPF filter: (``seen_by_filter``, ``kept``), keyed by the names of the
        interfaces it serves, joined by ',' (interfaces of one kind of link layer share one
        filter and its counters).  Empty with the classic-BPF backend, which cannot count."""
        if self._closed or not self._bcc_filters:
            return {}
        names: dict[LinkLayer, list[str]] = {}
        for channel in self._channels:
            names.setdefault(channel.device.link_layer, []).append(channel.device.name)
        stats = {}
        for link_layer, bcc_filter in self._bcc_filters.items():
            counters = bcc_filter.counters()
            stats[",".join(names.get(link_layer, []))] = (counters["seen_by_filter"],
                                                          counters["kept_by_filter"])
        return stats

    def close(self) -> None:
        """Detach: close the sockets and release the eBPF program.  Idempotent; stats()
        still answers afterwards."""
        if self._closed:
            return
        self._poll_socket_stats()
        if self._bcc_filters:
            with contextlib.suppress(Exception):
                self._final_counters = self._filter_counters()
        for channel in self._channels:
            channel.sock.close()
        for bcc_filter in self._bcc_filters.values():
            bcc_filter.close()
        self._bcc_filters.clear()
        self._closed = True


OPTMEM_MAX = "/proc/sys/net/core/optmem_max"
OPTMEM_ENOUGH = 131072  # bytes: room for either filter with a margin


def _raise_optmem() -> int | None:
    """Raise net.core.optmem_max (of this network namespace) to OPTMEM_ENOUGH; the old
    value, or None if it was already that large or cannot be written."""
    try:
        current = int(Path(OPTMEM_MAX).read_text())
        if current >= OPTMEM_ENOUGH:
            return None
        Path(OPTMEM_MAX).write_text(f"{OPTMEM_ENOUGH}\n")
    except (OSError, ValueError):
        return None
    return current


def _optmem_problem(backend: str) -> str:
    """Why attaching the filter ran out of memory: the kernel charges a socket filter
    to the socket's option memory, net.core.optmem_max, 20480 bytes by default before
    Linux 6.9, less than the classic-BPF program (about 1,500 instructions) needs."""
    try:
        limit = f"{int(Path(OPTMEM_MAX).read_text())} bytes"
    except (OSError, ValueError):
        limit = "unknown"
    return (f"attaching the {'eBPF' if backend == 'bcc' else 'classic-BPF'} filter failed: "
            f"not enough socket option memory (net.core.optmem_max is {limit}; Linux before "
            f"6.9 defaults to 20480): raise it with sysctl -w net.core.optmem_max="
            f"{OPTMEM_ENOUGH}")


def _auto_backend() -> str:
    return "bcc" if bcc_problem() is None else "cbpf"


def program_source(backend: str, interfaces: list[str], snap_payload: int = SNAP_PAYLOAD) -> str:
    """What would be attached, as text (``--ebpf``): the BPF C source with its defines for
    the bcc backend, the instruction listing (``tcpdump -d`` style) for cbpf.  One part per
    kind of link layer among ``interfaces``; without interfaces, one for each kind."""
    if backend not in BACKENDS:
        raise LiveError(f"unknown capture backend {backend!r} (use auto, bcc or cbpf)")
    if backend == "auto":
        backend = _auto_backend()
    devices = []
    if not interfaces:
        devices = [Device(name="Ethernet interfaces", ifindex=0, hatype=1,
                          link_layer=LinkLayer.ETHERNET),
                   Device(name="interfaces without an Ethernet header and -i any", ifindex=0,
                          hatype=0, link_layer=LinkLayer.NONE)]
    for name in interfaces:
        try:
            devices.append(resolve(name))
        except LiveError:
            # Only printing: an interface that does not exist (here, yet) is shown with
            # the program for Ethernet, the common case.
            devices.append(Device(name=name, ifindex=0, hatype=1, link_layer=LinkLayer.ETHERNET))
    parts = []
    for link_layer in sorted({device.link_layer for device in devices}):
        names = ", ".join(device.name for device in devices if device.link_layer == link_layer)
        socket_kind = "SOCK_RAW" if link_layer == LinkLayer.ETHERNET else "SOCK_DGRAM"
        if backend == "bcc":
            params = FilterParams(snap_payload=snap_payload)
            parts.append(
                f"/* smctrace eBPF socket filter for {names} ({socket_kind}) */\n"
                + program_text(link_layer, params)
            )
        else:
            program = cbpf.cbpf_program(link_layer, snap_payload)
            parts.append(
                f"; smctrace classic-BPF filter for {names} ({socket_kind}), "
                f"{len(program)} instructions\n" + cbpf.listing(program)
            )
    return "\n".join(parts)


__all__ = ["DEFAULT_SNAPLEN", "Batch", "LiveCapture", "program_source"]
