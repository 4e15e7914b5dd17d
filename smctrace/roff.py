"""Text into roff (man(7)): the escaping the man page and the exit-status table share."""

from __future__ import annotations

import re

# A hyphen that starts a word ("-f", "--json", a lone "-") is an option or a dash for
# standard input: roff's minus sign, so that it can be copied into a shell.  A hyphen
# inside a word ("eBPF-based") stays a hyphen.
_WORD_START_HYPHEN = re.compile(r"(?<![\w\\])-")


def escape(text: str) -> str:
    """``text`` as roff text: backslashes and option hyphens escaped, non-ASCII characters
    as ``\\[uXXXX]`` (groff reads its input as Latin-1 unless told otherwise)."""
    text = text.replace("\\", "\\e")
    text = _WORD_START_HYPHEN.sub(r"\\-", text)
    return "".join(char if ord(char) < 128 else f"\\[u{ord(char):04X}]" for char in text)


# Where a sentence ends: a period (or ! ?) then a space and a capital letter.
_SENTENCE_END = re.compile(r"(?<=[.!?]) (?=[A-Z])")
LINE_WIDTH = 80  # what man-page style (mandoc -W style) asks of input lines


def text_lines(text: str) -> str:
    """Body text, escaped, as input lines: a new line per sentence (roff then puts the
    right space after each period) and none longer than LINE_WIDTH where a space allows;
    no line is read as a request or macro."""
    lines = []
    for sentence in _SENTENCE_END.split(escape(" ".join(text.split()))):
        line = ""
        for word in sentence.split(" "):
            if line and len(line) + 1 + len(word) > LINE_WIDTH:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "\n".join(_protected(line) for line in lines)


def verbatim(line: str) -> str:
    """A line kept as it stands (between .nf and .fi), escaped."""
    return _protected(escape(line))


def _protected(line: str) -> str:
    """An input line that roff will not read as a request or macro call."""
    return "\\&" + line if line[:1] in (".", "'") else line


def bold(text: str) -> str:
    return f"\\fB{escape(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{escape(text)}\\fR"


def literal(text: str) -> str:
    """Text to be typed as it stands (an option, a command): every hyphen a minus sign."""
    return escape(text).replace("\\-", "-").replace("-", "\\-")


def option(text: str) -> str:
    """An option name or a command line, in bold."""
    return f"\\fB{literal(text)}\\fR"
