"""The options of ``smctrace``, defined once: --help, the man page (:mod:`smctrace.manpage`)
and the README's usage come from them."""

from __future__ import annotations

import math
import sys

import click

from smctrace import __version__, exitcodes
from smctrace.cli.errors import Command, UsageError, UserError, user_errors
from smctrace.cli.run import CountingSink, OutputOptions, make_output
from smctrace.match.rule import MAX_CONNECTIONS

MAX_SECONDS = 1e9  # --duration: about 31 years; anything longer is a typo
MAX_BUFFER_KIB = (1 << 21) - 1  # -B: the socket buffer size is an int (2 GiB)
MAX_TABLE = 1 << 26  # --max-connections: what the engines accept


def finite_seconds(_ctx: click.Context, param: click.Parameter,
                   value: float | None) -> float | None:
    """``nan`` passes click's range check (every comparison with it is false): a trace
    that would never stop is a usage error instead."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", param=param)
    return value


def snap_length(_ctx: click.Context, param: click.Parameter, value: int) -> int:
    if 0 < value < 128:
        raise click.BadParameter(f"{value} is not 0 or in the range 128<=x<=65535",
                                 param=param)
    return value


@click.command(cls=Command, context_settings={"help_option_names": ["-h", "--help"]},
               epilog=exitcodes.help_epilog())
@click.argument("expression", nargs=-1, metavar="[EXPRESSION]")
@click.option("-f", "-r", "--file", "paths", multiple=True, metavar="FILE",
              help="Read a pcap or pcapng file, plain or compressed (gzip, bzip2, xz, "
                   "zstd); '-' for standard input.  Repeatable: the files are read in "
                   "order as one trace.")
@click.option("-i", "--interface", "interfaces", multiple=True, metavar="IFACE",
              help="Trace live on IFACE (repeatable; 'any' for every interface).")
@click.option("--filter", "filter_option", metavar="EXPRESSION",
              help="Only frames this tcpdump filter expression selects, e.g. 'host "
                   "10.1.1.1 and port 7001' (pcap-filter(7); the same as the trailing "
                   "EXPRESSION).")
@click.option("--json", "as_json", is_flag=True,
              help="Write JSON lines (schema: --json-schema).")
@click.option("--json-schema", "print_schema", is_flag=True,
              help="Print the JSON Schema of the JSON lines and exit.")
@click.option("--table", "as_table", is_flag=True,
              help="At the end, print tables of connections and of outcome counts.")
@click.option("-q", "--quiet", is_flag=True,
              help="Only connection outcomes and the summary (no message lines).")
@click.option("-v", "--verbose", is_flag=True,
              help="Every field of every CLC message below its line (text output).")
@click.option("--hex", "hex_dump", is_flag=True, help="Add a hex dump of every CLC message.")
@click.option("--reserved", is_flag=True, help="Show reserved fields.")
@click.option("--no-timestamps", is_flag=True, help="Do not print packet times (text output).")
@click.option("-c", "--count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N connections have an outcome.")
@click.option("--duration", type=click.FloatRange(min=0, max=MAX_SECONDS), metavar="SECS",
              callback=finite_seconds,
              help="Stop after SECS seconds (offline: of packet time from the first "
                   "frame).")
@click.option("-w", "--write", metavar="FILE",
              help="Also write the frames that matter for SMC (SYNs, SYN-ACKs, CLC "
                   "segments, FIN/RST) to FILE: pcapng with each frame's CLC messages as "
                   "comments, classic pcap if FILE ends in .pcap.")
@click.option("--max-connections", type=click.IntRange(min=1, max=MAX_TABLE), metavar="N",
              help=f"Connections followed at once (default {MAX_CONNECTIONS}); when the "
                   "table is full the oldest undecided one is reported, evicted.")
@click.option("-s", "--snaplen", type=click.IntRange(min=0, max=65535), default=1280,
              show_default=True, metavar="BYTES", callback=snap_length,
              help="Live: bytes kept per frame, 128 to 65535 (0: whole frames, as in "
                   "tcpdump; the kernel filter still caps CLC payloads).")
@click.option("-B", "--buffer-size", "buffer_kib",
              type=click.IntRange(min=64, max=MAX_BUFFER_KIB), metavar="KiB",
              help="Live: socket receive buffer per interface (default 262144 = 256 MiB); "
                   "holds bursts of handshakes while they are decoded (kernel memory is "
                   "used only while behind).")
@click.option("--promisc/--no-promisc", default=True, show_default=True,
              help="Live: put the interfaces into promiscuous mode.")
@click.option("--backend", type=click.Choice(["auto", "bcc", "cbpf"]), default="auto",
              show_default=True,
              help="Live: in-kernel filter: bcc (eBPF, follows each connection) or cbpf "
                   "(classic BPF, stateless: it cannot show a SYN-ACK without the option, "
                   "FIN/RST, or the continuation segments of a CLC message split across "
                   "segments; the summary warns when that may have happened).")
@click.option("--http", "http_listen", metavar="[ADDR:]PORT",
              help="Also serve a live page, Prometheus /metrics and a JSON API on ADDR:PORT "
                   "(default address 127.0.0.1; IPv6 as [ADDR]:PORT). With -f, the finished "
                   "trace is served until interrupted.")
@click.option("--http-recent", type=click.IntRange(min=1, max=100_000), metavar="N",
              help="--http: connections kept for the page and /api/connections "
                   "(default 1000).")
@click.option("--ebpf", "print_program", is_flag=True,
              help="Print the BPF program for the chosen backend (and the -i interfaces) "
                   "and exit.")
@click.option("-Z", "--relinquish-privileges", "user", metavar="USER", default="nobody",
              show_default=True, help="Live: drop root to USER once attached ('root' keeps it).")
@click.version_option(__version__, "--version")
def main(expression: tuple[str, ...], paths: tuple[str, ...], interfaces: tuple[str, ...],
         filter_option: str | None, as_json: bool, print_schema: bool, as_table: bool,
         quiet: bool, verbose: bool, hex_dump: bool, reserved: bool, no_timestamps: bool,
         count: int | None, duration: float | None, write: str | None,
         max_connections: int | None, snaplen: int, buffer_kib: int | None, promisc: bool,
         backend: str, http_listen: str | None, http_recent: int | None, print_program: bool,
         user: str) -> None:
    """Show, for every TCP connection, whether SMC was negotiated, over which path, and
    if not, exactly why.  EXPRESSION (tcpdump's filter language) selects the frames to
    look at.

    \b
    Examples:
      smctrace -f dump.pcap                     decode a capture file
      smctrace -f dump.pcap.gz port 7001        ... compressed, only port 7001
      smctrace -f big.pcap -w smc.pcapng        cut out the SMC handshakes
      tcpdump -i eth0 -w - | smctrace -f -      decode from a pipe
      sudo smctrace -i eth0 --json              trace live, JSON lines
    """
    with user_errors():
        status = run(expression=expression, paths=paths, interfaces=interfaces,
                     filter_option=filter_option, print_schema=print_schema,
                     print_program=print_program, backend=backend,
                     output=OutputOptions(as_json=as_json, as_table=as_table,
                                          hex_dump=hex_dump, reserved=reserved,
                                          timestamps=not no_timestamps, quiet=quiet,
                                          verbose=verbose),
                     count=count, duration=duration, write=write,
                     max_connections=max_connections, snaplen=snaplen,
                     buffer_kib=buffer_kib, promisc=promisc, user=user,
                     http_listen=http_listen, http_recent=http_recent)
    sys.exit(status)


def run(*, expression: tuple[str, ...], paths: tuple[str, ...], interfaces: tuple[str, ...],
        filter_option: str | None, print_schema: bool, print_program: bool, backend: str,
        output: OutputOptions, count: int | None, duration: float | None, write: str | None,
        max_connections: int | None, snaplen: int, buffer_kib: int | None, promisc: bool,
        user: str, http_listen: str | None = None, http_recent: int | None = None) -> int:
    """Check the combination of options, then run; returns the exit status."""
    if sys.stdout is None:  # started with standard output closed (>&-)
        raise UserError("standard output is closed")
    if print_schema:
        from smctrace.schema import schema_text

        click.echo(schema_text(), nl=False)
        return exitcodes.OK.code
    if print_program:
        from smctrace.live import program_source

        click.echo(program_source(backend, list(interfaces)))
        return exitcodes.OK.code
    if output.as_json and output.as_table:
        raise UsageError("--json and --table cannot be combined; pick one")
    if output.quiet and output.verbose:
        raise UsageError("-q and -v cannot be combined; pick one")
    if bool(paths) == bool(interfaces):
        raise UsageError("give either -f FILE or -i IFACE")
    if expression and filter_option is not None:
        raise UsageError("give the filter expression once: as trailing words or --filter")
    if http_recent is not None and http_listen is None:
        raise UsageError("--http-recent needs --http")
    filter_text = filter_option if filter_option is not None else " ".join(expression)
    chosen = make_output(sys.stdout, output)
    service = None
    if http_listen is not None:
        from smctrace.cli.service import DEFAULT_RECENT, open_service

        source = " ".join(f"-f {path}" for path in paths) or " ".join(
            f"-i {name}" for name in interfaces)
        service = open_service(http_listen, http_recent or DEFAULT_RECENT, source, chosen)
        chosen = service.sink
    sink = CountingSink(chosen, limit=count, quiet=output.quiet)
    try:
        if paths:
            from smctrace.cli.offline import OfflineOptions, trace_files

            if service is not None:
                from smctrace.cli.service import serve_until_interrupted, start_service

                start_service(service)
            status = trace_files(OfflineOptions(
                inputs=paths, expression=filter_text or None, duration=duration,
                write=write, max_connections=max_connections), sink)
            if service is not None:
                serve_until_interrupted(service)
            return status
        from smctrace.cli.live import LiveOptions, trace_live

        return trace_live(LiveOptions(
            interfaces=interfaces, backend=backend, snaplen=snaplen, promisc=promisc,
            duration=duration, write=write, user=user, buffer_kib=buffer_kib,
            expression=filter_text or None, max_connections=max_connections), sink,
            service=service)
    finally:
        if service is not None:
            service.stop()
