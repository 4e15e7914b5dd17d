"""How a run ends when something is wrong: one line on standard error, a documented
exit status (:mod:`smctrace.exitcodes`), never a traceback."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

import click

from smctrace.exitcodes import ERROR, OK, USAGE
from smctrace.frame import describe_os_error


class UserError(Exception):
    """A problem with the input or the system the user can fix: exit status 1."""


class UsageError(Exception):
    """The command line is wrong (a filter libpcap rejects, options that cannot be
    combined): exit status 2, like click's own usage errors."""


def fail(message: str, status: int) -> NoReturn:
    """One line on standard error, then exit (also when standard error is closed)."""
    with suppress(OSError, ValueError):
        click.echo(f"smctrace: {message}", err=True)
    sys.exit(status)


def _quiet_exit(status: int) -> NoReturn:
    """Standard output went away (``smctrace ... | head``): exit like other filters,
    without Python complaining at shutdown about flushing it."""
    with_devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(with_devnull, sys.stdout.fileno())
    os.close(with_devnull)
    sys.exit(status)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every error a user can hit into one line and its exit status."""
    try:
        yield
    except UserError as exc:
        fail(str(exc), ERROR.code)
    except UsageError as exc:
        fail(f"{exc} (see smctrace --help)", USAGE.code)
    except BrokenPipeError:
        _quiet_exit(OK.code)
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _quiet_exit(OK.code)
        if exc.errno == errno.EBADF:
            fail("standard output is closed", ERROR.code)
        fail(describe_os_error(exc), ERROR.code)
    except ValueError as exc:
        # Writing to a standard stream that was closed under us.
        if "closed file" in str(exc):
            fail("standard output is closed", ERROR.code)
        raise


class Command(click.Command):
    """click's command, but a usage error is one line, ``smctrace: <what> (see smctrace
    --help)``, and exit status 2, like every other error smctrace reports."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:  # --help, --version
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            fail(f"{exc.format_message()} (see smctrace --help)", USAGE.code)
        except click.ClickException as exc:
            fail(exc.format_message(), ERROR.code)
        except click.Abort:
            sys.exit(OK.code)
        except Exception as exc:
            # A bug, not something the user did: still one line (the traceback on demand).
            if os.environ.get("SMCTRACE_DEBUG") == "1":
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (please report it; "
                 "SMCTRACE_DEBUG=1 shows where)", ERROR.code)
