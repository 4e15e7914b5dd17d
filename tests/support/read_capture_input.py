"""Read a capture input through open_capture_input, as a separate process.

``python -m tests.support.read_capture_input SOURCE`` prints one JSON object: the
display name, the byte count and SHA-256 of the decompressed bytes, and how much the
peak RSS grew while reading (KiB).  With ``--copy`` the decompressed bytes go to standard
output instead.  A process of its own, so that standard input can be a pipe and the peak
RSS is this reading's alone.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys

from smctrace.capture.compressed import open_capture_input
from smctrace.capture.pcapfile import CHUNK_SIZE
from smctrace.frame import CaptureError


def main(arguments: list[str]) -> int:
    source = arguments[0]
    copy = "--copy" in arguments[1:]
    # The capture reader's window, its pages touched one by one so that they count before
    # the baseline (and no temporary copy raises the peak, hiding later growth).
    window = bytearray(CHUNK_SIZE)
    for page in range(0, CHUNK_SIZE, 4096):
        window[page] = 1
    view = memoryview(window)
    digest = hashlib.sha256()
    total = 0
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = None
    stream, name = open_capture_input(source)
    try:
        while True:
            count = stream.readinto(view)  # type: ignore[attr-defined]
            if not count:
                break
            total += count
            if copy:
                sys.stdout.buffer.write(view[:count])
            else:
                digest.update(view[:count])
    except CaptureError as caught:
        error = str(caught)
    finally:
        stream.close()
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline
    if not copy:
        print(json.dumps({"name": name, "bytes": total, "sha256": digest.hexdigest(),
                          "rss_growth_kib": growth, "error": error}))
    elif error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
