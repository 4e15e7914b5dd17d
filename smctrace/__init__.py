"""smctrace: trace SMC (Shared Memory Communications, RFC 7609) CLC handshakes.

Pipeline, one module per stage:

    capture (pcap file / live socket) -> Frame
    packet                            -> Segment   (link, IP, TCP)
    streams                           -> ClcMessage bytes per connection and direction
    clc                               -> Proposal / Accept / Confirm / Decline (pure decoder)
    connections                       -> ConnectionOutcome
    output                            -> text, JSON lines, tables, pcapng
"""

__version__ = "0.1.0"
