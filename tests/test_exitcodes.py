"""The exit statuses: one table, rendered for --help, the man page and the README."""

from __future__ import annotations

import textwrap

import click
from click.testing import CliRunner

from smctrace import exitcodes
from smctrace.exitcodes import ERROR, EXIT_STATUSES, NOT_SEARCHED, OK, USAGE


def test_the_scheme() -> None:
    assert [(status.name, status.code) for status in EXIT_STATUSES] == [
        ("OK", 0), ("ERROR", 1), ("USAGE", 2), ("NOT_SEARCHED", 3)
    ]
    assert (OK.code, ERROR.code, USAGE.code, NOT_SEARCHED.code) == (0, 1, 2, 3)


def test_usage_status_is_clicks_own() -> None:
    """click exits with USAGE on the usage errors it finds before smctrace runs."""

    @click.command()
    @click.option("-c", type=click.IntRange(min=1))
    def command(c: int | None) -> None:
        """Nothing."""

    result = CliRunner().invoke(command, ["-c", "0"])
    assert result.exit_code == USAGE.code


def test_text_table_wraps_within_the_help_width() -> None:
    text = exitcodes.render_text()
    lines = text.split("\n")
    assert lines[0] == "Exit status:"
    assert all(len(line) <= exitcodes.HELP_WIDTH for line in lines)
    for status in EXIT_STATUSES:
        start = next(line for line in lines if line.startswith(f"  {status.code}  "))
        assert status.meaning.startswith(start.removeprefix(f"  {status.code}  "))
    # Wrapped words, rejoined, give back every meaning.
    assert " ".join(text.split()[2:]) == " ".join(
        f"{status.code} {status.meaning}" for status in EXIT_STATUSES
    )


def test_help_epilog_is_shown_as_it_stands() -> None:
    @click.command(epilog=exitcodes.help_epilog())
    def command() -> None:
        """Nothing."""

    result = CliRunner().invoke(command, ["--help"], terminal_width=80)
    assert result.exit_code == OK.code
    table = exitcodes.render_text(width=exitcodes.HELP_WIDTH - exitcodes.EPILOG_INDENT)
    assert textwrap.indent(table, " " * exitcodes.EPILOG_INDENT) in result.output
    assert max(len(line) for line in result.output.splitlines()) <= exitcodes.HELP_WIDTH


def test_roff_table_has_an_entry_per_status() -> None:
    roff_text = exitcodes.render_roff()
    assert roff_text.count(".TP\n") == len(EXIT_STATUSES)
    for status in EXIT_STATUSES:
        assert f".TP\n.B {status.code}\n" in roff_text


def test_markdown_table_has_a_row_per_status() -> None:
    rows = exitcodes.render_markdown().splitlines()
    assert rows[:2] == ["| status | meaning |", "|---|---|"]
    assert rows[2:] == [f"| {status.code} | {status.meaning} |" for status in EXIT_STATUSES]
