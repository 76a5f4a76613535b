"""zcopy: move bytes between files, pipes and sockets with the cheapest correct kernel path.

``zcopy.transfer`` picks among ``copy_file_range``, ``sendfile``, ``splice``, ``mmap`` +
``write``, ``MSG_ZEROCOPY`` and plain ``read``/``write`` for the two descriptors it is given,
falls back at run time without losing or duplicating a byte, and returns a ``Report`` of what it
did. The engine is the Rust crate ``zcopy-core``; this package is a thin shell over it.

Descriptors are borrowed for one call: pass an int, or any object with ``fileno()`` (sockets,
file objects). The GIL is released while the kernel works, and Ctrl-C interrupts a waiting
transfer.

Pages, not bytes, are shared: after ``sendfile``, ``splice`` or ``MSG_ZEROCOPY`` return, later
writes to the source file may still reach the peer, because the kernel holds references to the
page cache, not a copy. Do not modify a file region until the peer has it.

``zcopy.send_parts`` sends a whole response (header, file ranges, trailer) in one call, as one
TCP segment when it fits.

Every exception raised by a transfer carries ``.bytes_transferred``: the bytes that reached the
destination before it.
"""

from __future__ import annotations

import enum
import io
import os
import selectors
import shutil
import socket
import ssl
import stat
import sys
from typing import Protocol, Union

from . import _zcopy
from ._zcopy import PanicError, Report, UnsupportedError, ZeroCopySender, __version__

__all__ = [
    "Cache",
    "FileDescriptorLike",
    "Method",
    "PanicError",
    "Relayed",
    "Report",
    "UnsupportedError",
    "ZeroCopySender",
    "__version__",
    "capabilities",
    "copyfile",
    "relay",
    "send_parts",
    "socket_sendfile",
    "transfer",
]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


class _SendableFile(Protocol):
    # What socket.socket.sendfile needs of `file` (fileno() is optional).
    def read(self, size: int, /) -> bytes: ...
    def seek(self, offset: int, /) -> object: ...


#: A descriptor number, or an object whose ``fileno()`` returns one.
FileDescriptorLike = Union[int, _HasFileno]
_StrPath = Union[str, "os.PathLike[str]"]


class Method(enum.StrEnum):
    """The transfer methods. Values are the engine's stable names, accepted wherever a method
    name is."""

    #: Pick the cheapest correct path for the pair and fall back at run time.
    AUTO = "auto"
    #: ``read(2)`` + ``write(2)`` through a buffer: works for everything.
    READ_WRITE = "read_write"
    #: ``mmap(2)`` the source file, ``write(2)`` from the mapping.
    MMAP = "mmap"
    #: ``sendfile(2)``: file -> anything.
    SENDFILE = "sendfile"
    #: ``splice(2)`` through a pooled pipe unless one side is a pipe.
    SPLICE = "splice"
    #: ``copy_file_range(2)``: file -> file, reflink or in-kernel copy.
    COPY_FILE_RANGE = "copy_file_range"
    #: ``send(2)`` with ``MSG_ZEROCOPY`` from a mapping of the source file, to a TCP socket.
    MSG_ZEROCOPY = "msg_zerocopy"


class Cache(enum.StrEnum):
    """What a transfer does to the page cache of a regular-file source (``cache=``)."""

    #: The kernel's default: pages read stay cached.
    KEEP = "keep"
    #: Release the source's pages behind the transfer (``POSIX_FADV_DONTNEED``), so a file
    #: streamed once does not evict everything else.
    DROP_BEHIND = "drop_behind"
    #: Read with ``O_DIRECT`` into aligned buffers (plus drop-behind), as nginx's ``directio``;
    #: to a socket, an 8 MiB range already wholly cached is sent from the cache instead of
    #: being read again from the disk. Auto and read_write only.
    DIRECT = "direct"




# Native all the way (file objects included): a 4 KiB transfer pays no Python-level wrapper.
transfer = _zcopy.transfer
# A whole response (bytes parts and (file, offset, length) parts) in one call; native too.
send_parts = _zcopy.send_parts


class Relayed(tuple[int, int]):
    """What ``relay`` did: the pair (bytes a -> b, bytes b -> a), a tuple of exactly two ints so
    that ``x, y = zcopy.relay(a, b)`` keeps working, with ``.a_to_b``, ``.b_to_a`` and
    ``.buffered`` besides. Compares and hashes as the pair."""

    _buffered: bool

    def __new__(cls, a_to_b: int, b_to_a: int, buffered: bool) -> Relayed:
        self = super().__new__(cls, (a_to_b, b_to_a))
        self._buffered = buffered
        return self

    @property
    def a_to_b(self) -> int:
        """Bytes delivered from ``a`` to ``b``."""
        return self[0]

    @property
    def b_to_a(self) -> int:
        """Bytes delivered from ``b`` to ``a``."""
        return self[1]

    @property
    def buffered(self) -> bool:
        """True when a direction found the per-user pipe budget (``fs.pipe-user-pages-soft``)
        exhausted and moved its bytes with recv/send through a 64 KiB buffer instead of splice:
        a hint to raise the limit, not an error."""
        return self._buffered

    def __repr__(self) -> str:
        return f"Relayed(a_to_b={self[0]}, b_to_a={self[1]}, buffered={self._buffered})"

    def __reduce__(self) -> tuple[type[Relayed], tuple[int, int, bool]]:
        # tuple's own pickling would call __new__ with the pair alone and drop ``buffered``.
        return (Relayed, (self[0], self[1], self._buffered))


def relay(a: FileDescriptorLike, b: FileDescriptorLike, *, timeout: float | None = None) -> Relayed:
    """Relay two connected stream sockets into each other (splice) until both directions end.

    EOF from one side becomes ``shutdown(SHUT_WR)`` on the other (half-close). Returns the bytes
    moved as a ``Relayed``: the pair (a -> b, b -> a), which unpacks as two ints, with
    ``.a_to_b``, ``.b_to_a`` and ``.buffered`` (True when pipes were scarce and a direction went
    through a user-space buffer). Both sockets are borrowed: not closed, flags restored. An
    exception carries ``.bytes_transferred`` (both ways) and ``.relayed`` (the pair).
    """
    return Relayed(*_zcopy.relay(a, b, timeout))


def capabilities() -> dict[str, bool]:
    """Which explicit methods this kernel supports, keyed by method name (probed once)."""
    return _zcopy.capabilities()


def copyfile(src: _StrPath, dst: _StrPath, *, follow_symlinks: bool = True) -> int:
    """Copy the contents of the file ``src`` to ``dst`` like ``shutil.copyfile``, through the
    engine (``copy_file_range`` first: reflinks and in-kernel copies). Returns the bytes copied.

    The same file twice raises ``shutil.SameFileError``; a named pipe raises
    ``shutil.SpecialFileError``. With ``follow_symlinks=False`` and a symlink ``src``, a symlink
    is created instead and 0 is returned.
    """
    sys.audit("shutil.copyfile", src, dst)
    if _samefile(src, dst):
        raise shutil.SameFileError(f"{src!r} and {dst!r} are the same file")
    for i, fn in enumerate((src, dst)):
        try:
            st = os.stat(fn)
        except OSError:
            continue  # dst may not exist yet; a missing src fails at open() below
        if stat.S_ISFIFO(st.st_mode):
            fn = os.fspath(fn)
            raise shutil.SpecialFileError(f"`{fn}` is a named pipe")
        if i == 0 and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, os.strerror(21), os.fspath(src))
    if not follow_symlinks and os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return 0
    with open(src, "rb", buffering=0) as fsrc, open(dst, "wb", buffering=0) as fdst:
        report = transfer(fsrc.fileno(), fdst.fileno(), method="copy_file_range", fallback=True)
        return report.bytes


def _samefile(src: _StrPath, dst: _StrPath) -> bool:
    try:
        return os.path.samefile(src, dst)
    except OSError:
        return os.path.normcase(os.path.abspath(src)) == os.path.normcase(os.path.abspath(dst))


class _GiveupOnSendfile(Exception):
    """The engine cannot send this file: use plain send(), as socket.sendfile does."""


def _check_sendfile_params(sock: socket.socket, file: object, offset: int, count: int | None) -> None:
    # Same checks and messages as socket.socket._check_sendfile_params.
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type & socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")


def socket_sendfile(sock: socket.socket, file: _SendableFile, offset: int = 0, count: int | None = None) -> int:
    """A drop-in for ``sock.sendfile(file, offset, count)`` that sends through the engine.

    Same contract as ``socket.socket.sendfile``: ``file`` is a regular file opened in binary
    mode, read from ``offset`` (not from its position); ``count`` bytes or up to EOF; returns the
    bytes sent; the file's position is set to ``offset`` + bytes sent on return and on error
    (so ``file.tell()`` tells what was sent). Non-blocking sockets raise ``ValueError``; a socket
    timeout applies to each wait, as in ``socket.sendfile``. Files without a usable descriptor
    are sent with ``sock.send()``, and so is everything sent over an ``ssl.SSLSocket`` (TLS is
    done in user space: the engine must not write below it).
    """
    if isinstance(sock, ssl.SSLSocket):
        # TLS lives in user space: the descriptor below it must never see the file. Encrypted
        # send() calls, as socket.sendfile does (Python does not say whether kernel TLS is on).
        return _sendfile_use_send(sock, file, offset, count)
    try:
        return _sendfile_use_engine(sock, file, offset, count)
    except _GiveupOnSendfile:
        return _sendfile_use_send(sock, file, offset, count)


def _sendfile_use_engine(sock: socket.socket, file: _SendableFile, offset: int, count: int | None) -> int:
    _check_sendfile_params(sock, file, offset, count)
    sockno = sock.fileno()
    try:
        fileno: int = getattr(file, "fileno")()
    except (AttributeError, io.UnsupportedOperation) as err:
        raise _GiveupOnSendfile(err)  # not a regular file
    try:
        fsize = os.fstat(fileno).st_size
    except OSError as err:
        raise _GiveupOnSendfile(err)  # not a regular file
    if not fsize:
        return 0  # empty file
    timeout = sock.gettimeout()
    if timeout == 0:
        raise ValueError("non-blocking sockets are not supported")
    if isinstance(offset, int) and offset < 0:
        raise _GiveupOnSendfile(offset)  # os.sendfile fails with EINVAL; send() reports it
    total_sent = 0
    try:
        if not timeout:
            # A blocking socket: the engine waits itself (poll, GIL released).
            try:
                total_sent = transfer(fileno, sockno, offset=offset, count=count).bytes
            except OSError as err:
                total_sent = getattr(err, "bytes_transferred", 0)
                if total_sent == 0:
                    raise _GiveupOnSendfile(err)
                raise
            return total_sent
        # A socket timeout bounds each wait, as in socket.sendfile: send what fits, then wait.
        with selectors.PollSelector() as selector:
            selector.register(sockno, selectors.EVENT_WRITE)
            while True:
                left = None
                if count:
                    left = count - total_sent
                    if left <= 0:
                        break
                try:
                    total_sent += transfer(fileno, sockno, offset=offset + total_sent, count=left, timeout=0).bytes
                    break  # EOF or count reached
                except BlockingIOError as err:
                    total_sent += err.characters_written
                    if not selector.select(timeout):
                        raise TimeoutError("timed out")
                except OSError as err:
                    total_sent += getattr(err, "bytes_transferred", 0)
                    if total_sent == 0:
                        raise _GiveupOnSendfile(err)
                    raise err from None
        return total_sent
    finally:
        if total_sent > 0 and hasattr(file, "seek"):
            file.seek(offset + total_sent)


def _sendfile_use_send(sock: socket.socket, file: _SendableFile, offset: int = 0, count: int | None = None) -> int:
    # socket.socket._sendfile_use_send, kept identical in behaviour.
    _check_sendfile_params(sock, file, offset, count)
    if sock.gettimeout() == 0:
        raise ValueError("non-blocking sockets are not supported")
    if offset:
        file.seek(offset)
    blocksize = min(count, 8192) if count else 8192
    total_sent = 0
    file_read = file.read
    sock_send = sock.send
    try:
        while True:
            if count:
                blocksize = min(count - total_sent, blocksize)
                if blocksize <= 0:
                    break
            data = memoryview(file_read(blocksize))
            if not data:
                break  # EOF
            while True:
                try:
                    sent = sock_send(data)
                except BlockingIOError:
                    continue
                else:
                    total_sent += sent
                    if sent < len(data):
                        data = data[sent:]
                    else:
                        break
        return total_sent
    finally:
        if total_sent > 0 and hasattr(file, "seek"):
            file.seek(offset + total_sent)
