"""Simulated devices on pseudo-terminal pairs: the demo and the tests need no hardware.

``PtyPort`` makes a pty, puts its slave side in raw mode (no CR/LF translation, no
echo) and points a stable symlink at it, the way udev's ``/dev/serial/by-id/...``
points at a USB scanner. The bridge opens the symlink like any serial port; the
simulator "types" into the master side and reads what the bridge writes back.
``unplug()`` and ``replug()`` act out a cable pulled and plugged back in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import termios
import time
import tty
from pathlib import Path


class PtyPort:
    def __init__(self, link: Path | str) -> None:
        self.link = Path(link)
        self.master: int | None = None
        self.slave: int | None = None
        self.replug()

    @property
    def slave_path(self) -> str:
        if self.slave is None:
            raise OSError("port is unplugged")
        return os.ttyname(self.slave)

    def replug(self) -> None:
        """A new pty behind the same stable path."""
        self.unplug()
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = self.link.with_name(self.link.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)  # atomic: the path always points somewhere valid or nowhere

    def unplug(self) -> None:
        """Close the pty (the bridge's reads fail) and remove the stable path."""
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    close = unplug

    def type(self, data: bytes) -> None:
        """Bytes as the device would send them, in one write."""
        if self.master is None:
            raise OSError("port is unplugged")
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    def read(self, timeout: float = 1.0, *, until: bytes | None = None) -> bytes:
        """What the bridge wrote to the device: all of it within ``timeout``, or up to
        and including ``until`` as soon as it has arrived."""
        if self.master is None:
            raise OSError("port is unplugged")
        got = bytearray()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                break
            got += os.read(self.master, 4096)
            if until is not None and until in got:
                break
        return bytes(got)

    def pending_input(self) -> int:
        """Bytes typed but not yet read by the bridge (the slave's input queue)."""
        if self.slave is None:
            raise OSError("port is unplugged")
        raw = fcntl.ioctl(self.slave, termios.TIOCINQ, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])

    def __enter__(self) -> PtyPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()


def is_open_elsewhere(path: Path | str) -> bool:
    """True while another process or thread holds the port's exclusive lock.

    The bridge opens ports with ``exclusive=True`` (a ``flock``); tests use this to
    wait until the bridge has the port before they type into it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
