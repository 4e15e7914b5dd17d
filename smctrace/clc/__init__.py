"""Pure decoder for SMC CLC handshake messages (Proposal, Accept, Confirm, Decline).

Bytes in, typed dataclasses out; knows nothing of captures or TCP. :func:`decode` never
raises: invalid messages come back with ``malformed`` set to a short reason and are
decoded as far as the bytes allow.

Layouts are data (:mod:`smctrace.clc.layouts`), codes and names are in
:mod:`smctrace.clc.codes`. Value representations in ``fields()`` (see
:mod:`smctrace.clc.values`): identifiers, addresses, tokens, keys, CHIDs, ISM GIDs and
masks are zero-padded hex strings like tshark shows them ("0x0000157d"); counts,
indices, offsets, releases and buffer sizes (in bytes) are ints; RoCE GIDs are IPv6
text, MACs colon hex; peer IDs are "instance@mac" (with ``peer_id_hex`` for the raw
value); wire strings are escaped with :func:`safe_text`.
"""

from smctrace.clc.codes import (
    EYECATCHER_D,
    EYECATCHER_R,
    HEADER_LEN,
    MAX_MESSAGE_LEN,
    DeclineCode,
    MessageType,
    OsType,
    SmcPath,
    SmcType,
    decline_name,
    describe_decline,
    os_type_name,
)
from smctrace.clc.decode import decode, peek_header
from smctrace.clc.messages import (
    Accept,
    AcceptConfirm,
    ClcHeader,
    ClcMessage,
    Confirm,
    Decline,
    FirstContactExtension,
    MessageKind,
    Proposal,
    SmcdLink,
    SmcdV2GidEntry,
    SmcrLink,
)
from smctrace.clc.values import PeerId, SmcdGid, safe_text

__all__ = [
    "EYECATCHER_D",
    "EYECATCHER_R",
    "HEADER_LEN",
    "MAX_MESSAGE_LEN",
    "Accept",
    "AcceptConfirm",
    "ClcHeader",
    "ClcMessage",
    "Confirm",
    "Decline",
    "DeclineCode",
    "FirstContactExtension",
    "MessageKind",
    "MessageType",
    "OsType",
    "PeerId",
    "Proposal",
    "SmcPath",
    "SmcType",
    "SmcdGid",
    "SmcdLink",
    "SmcdV2GidEntry",
    "SmcrLink",
    "decline_name",
    "decode",
    "describe_decline",
    "os_type_name",
    "peek_header",
    "safe_text",
]
