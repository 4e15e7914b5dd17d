"""smctrace's exit statuses, defined once: the CLI exits with them, and its --help epilog,
the man page's EXIT STATUS section and the README's table are rendered from them.

The scheme is tcpdump's with the usage convention of click, argparse and so the bcc tools
(``execsnoop`` and friends, which exit 2 on a bad argument):

- 0: the trace ran to its end.  Finding no SMC at all is a result, not an error (tcpdump
  exits 0 on a capture its filter matched nothing in), and so is the reader of standard
  output going away (``smctrace ... | head``), which tcpdump treats likewise.
- 1: a problem with the input or the system, which the user can fix: tcpdump exits 1 for
  an unreadable or truncated file and a missing interface or privilege.  A damaged file
  exits 1 *after* everything before the damage has been decoded and printed, as tcpdump
  prints the packets before "truncated dump file"; the output is partial, the status
  says so.
- 2: the command line itself is wrong: an unknown option, a bad option value, options
  that cannot be combined, a filter expression libpcap rejects.  Nothing was read.  This
  is what click (and argparse) exit with for usage errors, so smctrace's own usage checks
  agree with the ones click makes before smctrace runs; a script can tell "fix the
  command" from "fix the input".

- 3: the trace ran to its end but part of the input could not be searched: frames of a
  link type smctrace does not read, TCP headers cut by the snap length.  "0 SMC
  connections" would otherwise look like a searched capture without SMC; the warning
  lines say what was missed.  Like 1, the output before it is complete and valid.

More statuses were considered and left out: tshark's separate codes for a bad interface,
file or filter split what the user does about them no further than 1 and 2 do, and a
separate status for "damaged after a valid prefix" would make ``smctrace -f`` on a
capture still being written (truncated last record) fail differently from tcpdump -r.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from smctrace import roff


@dataclass(frozen=True, slots=True)
class ExitStatus:
    name: str
    code: int
    meaning: str  # one sentence for people, for --help, the man page and the README


OK = ExitStatus(
    "OK",
    0,
    "The trace ran to its end (with or without SMC connections in it), or the reader of "
    "standard output went away.",
)
ERROR = ExitStatus(
    "ERROR",
    1,
    "A problem with the input or the system, reported in one line on standard error: a "
    "file that cannot be read or is not a capture, a damaged capture (everything before "
    "the damage is decoded and printed first), a missing interface, missing privileges, "
    "BCC or kernel headers missing.",
)
USAGE = ExitStatus(
    "USAGE",
    2,
    "The command line is wrong: an unknown option, a bad option value, options that "
    "cannot be combined, or a filter expression libpcap rejects. Nothing was read.",
)
NOT_SEARCHED = ExitStatus(
    "NOT_SEARCHED",
    3,
    "The trace ran to its end, but part of the input could not be searched (frames of a "
    "link type smctrace does not read, TCP headers cut by the snap length): a warning "
    "line on standard error says what.",
)
EXIT_STATUSES = (OK, ERROR, USAGE, NOT_SEARCHED)

HELP_WIDTH = 78  # what click wraps --help to (80 columns less a margin of 2)
EPILOG_INDENT = 2  # click indents the epilog by this much


def render_text(width: int = HELP_WIDTH, indent: int = 2) -> str:
    """The table as plain text: a heading, then each status with its meaning wrapped."""
    lines = ["Exit status:"]
    prefix = " " * indent
    for status in EXIT_STATUSES:
        lines += textwrap.wrap(
            status.meaning,
            width=width,
            initial_indent=f"{prefix}{status.code}  ",
            subsequent_indent=prefix + " " * (len(str(status.code)) + 2),
        )
    return "\n".join(lines)


def help_epilog() -> str:
    """The table for a click command's ``epilog``: ``\\b`` keeps click from rewrapping it,
    and it is wrapped so that it still fits the help width once click has indented it."""
    return "\b\n" + render_text(width=HELP_WIDTH - EPILOG_INDENT)


def render_roff() -> str:
    """The table as the body of a man page's EXIT STATUS section (one .TP per status)."""
    lines = []
    for status in EXIT_STATUSES:
        lines += [".TP", f".B {status.code}", roff.text_lines(status.meaning)]
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """The table in Markdown, for the README."""
    lines = ["| status | meaning |", "|---|---|"]
    lines += [f"| {status.code} | {status.meaning} |" for status in EXIT_STATUSES]
    return "\n".join(lines) + "\n"
