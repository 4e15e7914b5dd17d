"""The README's generated sections are what their sources make today: the JSON schema
(smctrace/schema.py), the exit statuses (smctrace/exitcodes.py) and the options (the click
command).  SMCTRACE_UPDATE_GOLDEN=1 rewrites them, like the golden files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from smctrace import exitcodes, manpage, schema
from smctrace.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS: dict[str, Callable[[], str]] = {
    "schema": schema.markdown,
    "exitcodes": exitcodes.render_markdown,
    "options": lambda: manpage.markdown_options(main),
}


def bounds(text: str, name: str) -> tuple[int, int]:
    begin = text.index("-->", text.index(f"<!-- {name}:begin")) + 4
    return begin, text.index(f"<!-- {name}:end -->")


@pytest.mark.parametrize("name", SECTIONS)
def test_the_readme_shows_the_section_as_generated(name: str) -> None:
    text = README.read_text()
    begin, end = bounds(text, name)
    generated = SECTIONS[name]()
    if os.environ.get("SMCTRACE_UPDATE_GOLDEN") == "1":
        README.write_text(text[:begin] + generated + text[end:])
        return
    assert text[begin:end] == generated, (
        f"the README's {name} section is stale: run the tests with SMCTRACE_UPDATE_GOLDEN=1 "
        "and review the diff")
