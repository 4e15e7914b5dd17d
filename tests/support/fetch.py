"""``python -m tests.support.fetch URL TIMEOUT``: GET a URL (from inside a network
namespace), print the status on the first line, then the body."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url, timeout = argv[0], float(argv[1])
    try:
        reply = urllib.request.urlopen(url, timeout=timeout)
        status, body = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    sys.stdout.buffer.write(b"%d\n" % status + body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
