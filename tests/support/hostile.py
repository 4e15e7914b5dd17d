"""A real SMC-D handshake whose peers name themselves in markup: a capture to show that
wire strings (EIDs, hostnames) reach pages and APIs as text, never as HTML.

The Proposal, Accept and Confirm of tests/data/real-kernel/C-smcd-loopback-ism-k612lo.pcap
are taken as the kernel sent them, with their 32-byte EID and hostname fields overwritten
(same length, so every offset and length stays valid), and framed with
:func:`tests.support.synth.tcp_frame` between addresses of their own.
"""

from __future__ import annotations

from pathlib import Path

from smctrace.capture.pcapfile import CaptureFile
from smctrace.capture.pcapwriter import PcapWriter
from smctrace.frame import LINKTYPE_ETHERNET
from smctrace.packet import ACK, FIN, PSH, SYN, parse_frame
from smctrace.streams import starts_clc
from tests.support.synth import tcp_frame

SOURCE = Path(__file__).resolve().parents[1] / "data" / "real-kernel" / \
    "C-smcd-loopback-ism-k612lo.pcap"
FIELD = 32  # EID and hostname fields are 32 bytes, blank-padded
REAL_EID = b"SMCLAB-UEID-1"
REAL_HOSTNAME = b"(none)"

HOSTILE_EID = "<script>alert(1)</script>"
HOSTILE_SERVER_HOSTNAME = "<img src=x onerror=alert(2)>"
HOSTILE_CLIENT_HOSTNAME = "</td><b>x</b>&amp;"


def _patched(payload: bytes, server: bool) -> bytes:
    hostname = HOSTILE_SERVER_HOSTNAME if server else HOSTILE_CLIENT_HOSTNAME
    for real, hostile in ((REAL_EID, HOSTILE_EID), (REAL_HOSTNAME, hostname)):
        payload = payload.replace(real.ljust(FIELD), hostile.encode().ljust(FIELD))
    return payload


def clc_payloads() -> list[tuple[str, bytes]]:
    """(sender, payload) of each CLC message of the real handshake, with hostile names."""
    out: list[tuple[str, bytes]] = []
    client_port = None
    with CaptureFile(str(SOURCE)) as capture:
        for frame in capture.frames():
            seg = parse_frame(frame)
            if seg is None:
                continue
            if seg.flags & SYN and not seg.flags & ACK:
                client_port = seg.sport
            if starts_clc(seg.payload):
                sender = "client" if seg.sport == client_port else "server"
                out.append((sender, _patched(seg.payload, sender == "server")))
    return out


def handshake_frames(client: str = "198.51.100.7", server: str = "198.51.100.8",
                     client_port: int = 40001, server_port: int = 7001) -> list[bytes]:
    """SYN, SYN-ACK, ACK (all with the SMC option where Linux puts it), the three CLC
    messages, FIN: an ``smc`` connection over SMC-D."""
    frames = [tcp_frame(client, server, client_port, server_port, flags=SYN, seq=100,
                        smc_option=True),
              tcp_frame(server, client, server_port, client_port, flags=SYN | ACK, seq=900,
                        ack=101, smc_option=True),
              tcp_frame(client, server, client_port, server_port, flags=ACK, seq=101,
                        ack=901)]
    seq = {"client": 101, "server": 901}
    for sender, payload in clc_payloads():
        if sender == "client":
            frames.append(tcp_frame(client, server, client_port, server_port,
                                    flags=ACK | PSH, seq=seq["client"], ack=seq["server"],
                                    payload=payload))
        else:
            frames.append(tcp_frame(server, client, server_port, client_port,
                                    flags=ACK | PSH, seq=seq["server"], ack=seq["client"],
                                    payload=payload))
        seq[sender] += len(payload)
    frames.append(tcp_frame(client, server, client_port, server_port, flags=FIN | ACK,
                            seq=seq["client"], ack=seq["server"]))
    return frames


def write_capture(path: Path, start: float = 1_800_000_000.0, **addresses: object) -> Path:
    """The hostile handshake as a classic pcap file."""
    with path.open("wb") as out:
        writer = PcapWriter(out, LINKTYPE_ETHERNET)
        for i, frame in enumerate(handshake_frames(**addresses)):  # type: ignore[arg-type]
            writer.write(start + i * 0.0001, frame)
    return path
