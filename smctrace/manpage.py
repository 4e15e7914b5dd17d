"""The smctrace(1) man page, generated from the click command itself.

``python -m smctrace.manpage > man/smctrace.1`` (``make man``) writes the page; a test
regenerates it from the current :func:`smctrace.cli.main` and fails if the committed page
differs, so the page cannot drift from the options.

Where each section comes from:

- NAME: the first paragraph of the command's help.
- SYNOPSIS: click's usage pieces (``[OPTIONS]``, arguments).
- DESCRIPTION: the command's help, its ``\\b`` (unwrapped) paragraphs kept as they are.
- OPTIONS: every visible option: its names, metavar (or type), help, range and default.
- EXIT STATUS: :mod:`smctrace.exitcodes`.
- EXAMPLES: the help's ``\\b`` paragraph that starts with ``Examples:``; each line is a
  command, two or more spaces, and what it does.
- SEE ALSO: tcpdump(8), tshark(1).
"""

from __future__ import annotations

import inspect
import re
import sys

import click

from smctrace import exitcodes, roff

# The date .TH shows: that of the release the page documents; bump it with the version.
RELEASE_DATE = "2025-12-01"
SEE_ALSO = (("tcpdump", 8), ("tshark", 1))
_EXAMPLES_HEADING = "Examples:"
_UNWRAPPED = "\b"  # click's marker of a paragraph it must not rewrap
_HELP_END = "\f"  # click shows no help text after this character
_COLUMNS = re.compile(r"\s{2,}")
_METAVAR_WORD = re.compile(r"[A-Z][A-Z0-9_-]*")


def _paragraphs(text: str) -> list[str]:
    text = inspect.cleandoc(text.split(_HELP_END, 1)[0])
    return [part.strip("\n") for part in re.split(r"\n\s*\n", text) if part.strip()]


def _is_unwrapped(paragraph: str) -> bool:
    return paragraph.startswith(_UNWRAPPED)


def _unwrapped_lines(paragraph: str) -> list[str]:
    return paragraph.removeprefix(_UNWRAPPED).strip("\n").splitlines()


def _summary(help_text: str) -> str:
    """The first paragraph, as NAME wants it: no final period, lower-case start."""
    first = " ".join(_paragraphs(help_text)[0].split()).rstrip(".")
    if first[:1].isupper() and first[1:2].islower():
        first = first[0].lower() + first[1:]
    return first


def _usage(command: click.Command, context: click.Context) -> str:
    pieces = " ".join(command.collect_usage_pieces(context))
    parts = []
    for token in re.split(r"(\s+)", pieces):
        parts.append(_METAVAR_WORD.sub(lambda match: roff.italic(match.group()), token)
                     if token.strip() else token)
    return roff.option(context.info_name or command.name or "") + " " + "".join(parts)


def _metavar(option: click.Option) -> str:
    """How the option's value is shown after its names ('' for flags)."""
    if option.is_flag or option.count:
        return ""
    if option.metavar is not None:
        return roff.italic(option.metavar)
    kind = option.type
    if isinstance(kind, click.Choice):
        return "{" + "|".join(roff.bold(str(choice)) for choice in kind.choices) + "}"
    if isinstance(kind, click.IntRange):
        return roff.italic("INTEGER")
    if isinstance(kind, click.FloatRange):
        return roff.italic("FLOAT")
    return roff.italic(kind.name.upper())


def _range(option: click.Option) -> str:
    kind = option.type
    if option.count or not isinstance(kind, click.IntRange | click.FloatRange):
        return ""
    bounds = []
    if kind.min is not None:
        bounds.append(("above " if kind.min_open else "at least ") + str(kind.min))
    if kind.max is not None:
        bounds.append(("below " if kind.max_open else "at most ") + str(kind.max))
    return f"The value is {' and '.join(bounds)}." if bounds else ""


def _default(option: click.Option, context: click.Context) -> str:
    """'Default: ...' as a line of roff, or '' where there is nothing to say."""
    default = option.get_default(context, call=True)
    # Anything but a plain value is "no default" (None, or a sentinel in newer clicks).
    if not isinstance(default, str | int | float) or option.multiple or option.count:
        return ""
    if option.is_bool_flag and option.secondary_opts:
        names = option.opts if default else option.secondary_opts
        return f"Default: {roff.literal(max(names, key=len))}."
    if option.is_flag:
        return ""  # a flag defaults to being off, which goes without saying
    return roff.text_lines(f"Default: {default}.")


def _option_entry(option: click.Option, context: click.Context) -> list[str]:
    names = ", ".join(roff.option(name) for name in option.opts)
    if option.secondary_opts:
        names += " / " + ", ".join(roff.option(name) for name in option.secondary_opts)
    metavar = _metavar(option)
    heading = f"{names} {metavar}" if metavar else names
    entry = [".TP", heading]
    description = " ".join(part for part in (option.help or "", _range(option)) if part)
    if description:
        entry.append(roff.text_lines(description))
    default = _default(option, context)
    if default:
        entry.append(default)
    return entry


def _examples(paragraph: str) -> list[str]:
    lines = []
    for line in _unwrapped_lines(paragraph)[1:]:
        command_line, *explanation = _COLUMNS.split(line.strip(), maxsplit=1)
        lines += [".TP", roff.option(command_line)]
        if explanation:
            text = explanation[0]
            lines.append(roff.text_lines(text[0].upper() + text[1:] + "."))
    return lines


def render(command: click.Command, *, name: str = "smctrace", version: str = "") -> str:
    """The man page (roff, man(7) macros, section 1) of ``command``."""
    context = click.Context(command, info_name=name, **command.context_settings)
    help_text = command.help or ""
    description: list[str] = []
    examples: list[str] = []
    for paragraph in _paragraphs(help_text):
        if _is_unwrapped(paragraph):
            lines = _unwrapped_lines(paragraph)
            if lines and lines[0].strip() == _EXAMPLES_HEADING:
                examples = _examples(paragraph)
                continue
            description += [".PP", ".nf", *(roff.verbatim(line) for line in lines), ".fi"]
        else:
            description += [".PP", roff.text_lines(paragraph)]
    description = description[1:]  # no paragraph break right after the section heading
    epilog = command.epilog or ""
    if epilog and epilog != exitcodes.help_epilog():  # that one is EXIT STATUS below
        description += [part for paragraph in _paragraphs(epilog)
                        for part in (".PP", roff.text_lines(paragraph))]
    options: list[str] = []
    for param in command.get_params(context):
        if isinstance(param, click.Option) and not param.hidden:
            options += _option_entry(param, context)

    title = f"{name} {version}".strip()
    page = [
        f'.TH {name.upper()} 1 "{RELEASE_DATE}" "{roff.escape(title)}" "User Commands"',
        ".SH NAME",
        roff.text_lines(f"{name} - {_summary(help_text)}"),
        ".SH SYNOPSIS",
        _usage(command, context),
        ".SH DESCRIPTION",
        *description,
        ".SH OPTIONS",
        *options,
        ".SH EXIT STATUS",
        exitcodes.render_roff().rstrip("\n"),
    ]
    if examples:
        page += [".SH EXAMPLES", *examples]
    page += [".SH SEE ALSO",
             ",\n".join(f".BR {page_name} ({section})" for page_name, section in SEE_ALSO)]
    return "\n".join(page) + "\n"


def markdown_options(command: click.Command, *, name: str = "smctrace") -> str:
    """The options as a Markdown table (the README's), from the same definitions."""
    context = click.Context(command, info_name=name, **command.context_settings)
    rows = ["| option | meaning |", "|---|---|"]
    for param in command.get_params(context):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        names = ", ".join(param.opts)
        if param.secondary_opts:
            names += " / " + ", ".join(param.secondary_opts)
        metavar = "" if param.is_flag else param.make_metavar(context)
        text = " ".join(part for part in (param.help or "", _range(param)) if part)
        default = param.default
        if param.show_default and not param.is_flag and isinstance(default, str | int):
            text += f" Default: {default}."
        cell = f"{names} {metavar}".strip()
        rows.append(f"| `{_cell(cell)}` | {_cell(text)} |")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> None:
    from smctrace import __version__
    from smctrace.cli import main as command

    sys.stdout.write(render(command, version=__version__))


if __name__ == "__main__":
    main()
