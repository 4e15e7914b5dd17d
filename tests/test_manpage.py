"""The man page: generated from the CLI, committed, and rendered without a warning."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from smctrace import __version__, exitcodes, manpage, roff
from smctrace.cli import main

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "man" / "smctrace.1"


def current_page() -> str:
    return manpage.render(main, version=__version__)


def test_committed_page_is_generated_from_the_current_options() -> None:
    assert COMMITTED.read_text() == current_page(), (
        "man/smctrace.1 is out of date: regenerate it with `make man`"
    )


def test_python_m_smctrace_manpage_prints_the_page() -> None:
    proc = subprocess.run([sys.executable, "-m", "smctrace.manpage"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=True)
    assert proc.stdout == current_page()


def _lint(page: Path) -> None:
    """groff and mandoc (whichever are installed, at least one) find nothing to warn of."""
    checked = 0
    if shutil.which("groff"):
        proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
        checked += 1
    if shutil.which("mandoc"):
        proc = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(page)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), proc.stdout
        checked += 1
    if not checked:
        pytest.skip("neither groff nor mandoc is installed")


def test_committed_page_renders_without_warnings() -> None:
    _lint(COMMITTED)


def test_every_visible_option_is_documented() -> None:
    page = current_page()
    context = click.Context(main, info_name="smctrace", **main.context_settings)
    options = [param for param in main.get_params(context)
               if isinstance(param, click.Option) and not param.hidden]
    assert len(options) > 10
    for option in options:
        for name in (*option.opts, *option.secondary_opts):
            assert roff.option(name) in page, name
        if option.help:
            assert roff.text_lines(option.help).split("\n")[0] in page, option.help


def test_examples_are_valid_smctrace_command_lines() -> None:
    """Every example's smctrace invocation parses with the current options."""
    page = current_page()
    examples = page.split(".SH EXAMPLES\n", 1)[1].split(".SH ", 1)[0]
    commands = [line.removeprefix("\\fB").removesuffix("\\fR").replace("\\-", "-")
                for line in examples.splitlines() if line.startswith("\\fB")]
    assert commands
    for command in commands:
        words = shlex.split(command.split("|")[-1])
        arguments = words[words.index("smctrace") + 1 :]
        main.make_context("smctrace", arguments)  # raises on an unknown option or value


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog="Report bugs to nobody.")
@click.argument("expression", nargs=-1)
@click.option("--mode", type=click.Choice(["fast", "slow"]), default="fast", show_default=True,
              help="How fast. A second sentence.")
@click.option("-n", "--number", type=click.IntRange(1, 9), default=3, metavar="N",
              help=".leading dot, a \\ backslash, 5 µs.")
@click.option("--ratio", type=click.FloatRange(0, 1, min_open=True), help="A ratio.")
@click.option("--colour/--no-colour", default=False, help="Colour.")
@click.option("--secret", hidden=True)
@click.option("-v", "--verbose", count=True, help="More.")
def example_command(expression: tuple[str, ...], mode: str, number: int, ratio: float | None,
                    colour: bool, secret: str | None, verbose: int) -> None:
    """Do the example thing
    to every example.

    \b
    Preformatted:
    .line one
      'line two

    \b
    Examples:
      example -n 2 'port 1'   the first example
      example --mode slow     the second

    \f
    Not shown.
    """


def test_page_of_every_kind_of_option(tmp_path: Path) -> None:
    page = manpage.render(example_command, name="example", version="9.9")
    assert page.startswith('.TH EXAMPLE 1 "' + manpage.RELEASE_DATE + '" "example 9.9"')
    expected = [
        ".SH NAME\nexample \\- do the example thing to every example\n",
        "\\fBexample\\fR [\\fIOPTIONS\\fR] [\\fIEXPRESSION\\fR]...\n",
        ".nf\nPreformatted:\n\\&.line one\n  'line two\n.fi\n",
        "\\fB\\-\\-mode\\fR {\\fBfast\\fR|\\fBslow\\fR}\nHow fast.\nA second sentence.\n"
        "Default: fast.\n",
        "\\fB\\-n\\fR, \\fB\\-\\-number\\fR \\fIN\\fR\n\\&.leading dot, a \\e backslash, "
        "5 \\[u00B5]s.\nThe value is at least 1 and at most 9.\nDefault: 3.\n",
        "\\fB\\-\\-ratio\\fR \\fIFLOAT\\fR\nA ratio.\nThe value is above 0 and at most 1.\n",
        "\\fB\\-\\-colour\\fR / \\fB\\-\\-no\\-colour\\fR\nColour.\nDefault: \\-\\-no\\-colour.\n",
        "\\fB\\-v\\fR, \\fB\\-\\-verbose\\fR\nMore.\n",
        "\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n",
        ".PP\nReport bugs to nobody.\n",
        ".SH EXAMPLES\n.TP\n\\fBexample \\-n 2 'port 1'\\fR\nThe first example.\n"
        ".TP\n\\fBexample \\-\\-mode slow\\fR\nThe second.\n",
    ]
    for fragment in expected:
        assert fragment in page
    assert "secret" not in page and "Not shown" not in page
    path = tmp_path / "example.1"
    path.write_text(page)
    _lint(path)


def test_exit_status_epilog_is_not_repeated_in_the_description() -> None:
    command = click.Command("example", help="Do it.", epilog=exitcodes.help_epilog())
    page = manpage.render(command, name="example")
    assert page.count("The command line is wrong") == 1
