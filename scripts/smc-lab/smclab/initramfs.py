"""What each run appends to a kernel's initramfs: the scenario script, as a newc cpio."""

from __future__ import annotations

import gzip
import io


def cpio_newc(files: dict[str, bytes]) -> bytes:
    """A gzipped newc cpio archive (appended to the initramfs; Linux unpacks both).
    Parent directories of the files are added as directory entries."""
    out = io.BytesIO()
    dirs: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))

    def entry(name: str, data: bytes, mode: int, ino: int) -> None:
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0)
        )
        out.write(hdr.encode() + nb)
        out.write(b"\0" * (-(110 + len(nb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))

    for i, d in enumerate(sorted(dirs), start=1):
        entry(d, b"", 0o40755, i)
    for i, (name, data) in enumerate(files.items(), start=len(dirs) + 1):
        entry(name, data, 0o100755, i)
    entry("TRAILER!!!", b"", 0, 0)
    return gzip.compress(out.getvalue(), 6)
