"""--http: the live page, Prometheus /metrics and the JSON API next to the chosen output
(:mod:`smctrace.service`); here, when the command opens, starts and stops it."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import click

from smctrace.cli.errors import UsageError, UserError
from smctrace.events import EventSink

if TYPE_CHECKING:
    from smctrace.service import Service

DEFAULT_RECENT = 1000  # connections kept for the page and /api/connections


def open_service(listen: str, recent: int, source: str, output: EventSink) -> Service:
    """Listen now (still as root, so ports below 1024 work); serve later.  Its sink
    passes every event on to ``output``."""
    from smctrace.service import Service, ServiceError
    from smctrace.service.address import ListenAddressError, parse_listen_address

    try:
        parse_listen_address(listen)
    except ListenAddressError as exc:
        raise UsageError(str(exc)) from None  # a bad option value, like click's own
    try:
        service = Service(listen, recent=recent, source=source, output=output)
        service.bind()
    except ServiceError as exc:
        raise UserError(str(exc)) from None
    if not service.address.loopback:
        click.echo(f"smctrace: --http on {service.address.host} can be reached from other "
                   "hosts: it shows peers' addresses and hostnames", err=True)
    return service


def start_service(service: Service) -> None:
    service.start()
    click.echo(f"smctrace: serving {service.url} (page, /metrics, /api/summary, "
               "/api/connections)", err=True)


def serve_until_interrupted(service: Service) -> None:
    """-f --http: the trace is over; keep serving it until SIGINT or SIGTERM."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    click.echo(f"smctrace: the trace is finished; serving it on {service.url} until "
               "interrupted", err=True)
    while not stop.wait(1.0):
        pass
