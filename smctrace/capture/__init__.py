"""Capture sources: everything that produces link-layer frames (pcap/pcapng files).

A source yields :class:`~smctrace.frame.Frame` objects in capture order; on damaged input
it raises :class:`~smctrace.frame.CaptureError` after every frame before the damage.
"""
