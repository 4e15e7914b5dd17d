"""The numbers of the pcap and pcapng file formats, once for the readers and writers
(and, generated into the C engine's header, for the engine's record walk)."""

from __future__ import annotations

from typing import Final

PCAP_MAGIC_MICRO: Final = 0xA1B2C3D4
PCAP_MAGIC_NANO: Final = 0xA1B23C4D
PCAP_MAGICS: Final = (PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO)
PCAP_FILE_HEADER_LEN: Final = 24
PCAP_RECORD_HEADER_LEN: Final = 16
# libpcap's largest snap length; a record claiming more is corrupt unless the file header
# announced a bigger snap length (capped so a corrupt header cannot make a reader buffer
# gigabytes).
PCAP_MAX_SNAPLEN: Final = 262144
PCAP_MAX_CAPLEN_LIMIT: Final = 64 * 1024 * 1024
# The link type field's upper bits carry FCS information (pcap-linktype(7)).
PCAP_LINKTYPE_MASK: Final = 0x03FFFFFF

PCAPNG_SHB: Final = 0x0A0D0D0A
PCAPNG_IDB: Final = 0x00000001
PCAPNG_OPB: Final = 0x00000002  # obsolete packet block
PCAPNG_SPB: Final = 0x00000003
PCAPNG_EPB: Final = 0x00000006
PCAPNG_BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
PCAPNG_MAX_BLOCK_LEN: Final = 64 * 1024 * 1024
PCAPNG_EPB_FIXED: Final = 20  # interface, timestamp (2 words), captured and original length
PCAPNG_SPB_FIXED: Final = 4  # original length

OPT_ENDOFOPT: Final = 0
OPT_COMMENT: Final = 1
SHB_USERAPPL: Final = 4
IF_NAME: Final = 2
IF_TSRESOL: Final = 9
IF_TSOFFSET: Final = 14


def pcapng_time(stamp: int, units: int, tsoffset: int) -> float:
    """Seconds of a pcapng timestamp: whole seconds and the fraction apart, so a 64-bit
    stamp keeps its precision (the C engine computes exactly the same, in this order)."""
    return float(stamp // units) + float(stamp % units) / float(units) + float(tsoffset)
