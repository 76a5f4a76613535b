"""asyncio helpers: ``sock_sendfile`` through the engine on any running loop (uvloop included).

uvloop implements no sendfile at all, and asyncio's own ``loop.sock_sendfile`` falls back to
read + send on loops without it. ``zcopy.aio.sock_sendfile`` sends in the kernel on every loop:
it lets the engine move what the socket's buffer takes without waiting (timeout 0), then waits
for writability with ``loop.add_writer``, so the loop is never blocked on the socket.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import ssl
from typing import Protocol

from . import _zcopy

__all__ = ["new_event_loop", "sock_sendfile"]

# Bytes moved per engine call before the loop gets to run other callbacks: keeps many concurrent
# transfers fair when the peers drain as fast as we send.
_CHUNK = 8 * 1024 * 1024
# Read size of the plain-send fallback for files without a usable descriptor.
_FALLBACK_BUFSIZE = 256 * 1024


class _SendableFile(Protocol):
    # What loop.sock_sendfile needs of `file` (fileno() is optional).
    def readinto(self, buffer: memoryview, /) -> int | None: ...
    def seek(self, offset: int, /) -> object: ...


async def sock_sendfile(sock: socket.socket, file: _SendableFile, offset: int = 0, count: int | None = None) -> int:
    """Send ``file`` over the non-blocking stream socket ``sock``; return the bytes sent.

    Like ``loop.sock_sendfile(sock, file, offset, count)`` on any running loop: ``file`` is a
    file opened in binary mode, read from ``offset`` (not its position), ``count`` bytes or up to
    EOF; the file's position is set to ``offset`` + bytes sent when the call ends. A blocking
    socket raises ``ValueError`` (asyncio checks that only in debug mode). Files without a
    usable descriptor are sent with plain ``send`` calls, each one counted. When the task is cancelled, the
    file's position is still left at ``offset`` + bytes sent, so the caller can resume from
    ``file.tell()``.
    """
    loop = asyncio.get_running_loop()
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    _check_params(sock, file, offset, count)
    try:
        fileno: int = getattr(file, "fileno")()
        fsize = os.fstat(fileno).st_size
    except (AttributeError, io.UnsupportedOperation, OSError):
        return await _sendfile_fallback(loop, sock, file, offset, count)
    if not (count if count else fsize):
        return 0  # empty file
    sockno = sock.fileno()
    total = 0
    try:
        while True:
            want = _CHUNK
            if count:
                want = min(want, count - total)
                if want <= 0:
                    break
            try:
                moved = _zcopy.transfer(fileno, sockno, offset=offset + total, count=want, timeout=0).bytes
            except BlockingIOError as err:
                total += err.characters_written
                await _writable(loop, sockno)
                continue
            except _zcopy.UnsupportedError as err:
                moved = getattr(err, "bytes_transferred", 0)
                if total == 0 and moved == 0:
                    # Not something the engine can read (a socket's fileno, say): plain sends.
                    return await _sendfile_fallback(loop, sock, file, offset, count)
                total += moved
                raise
            except OSError as err:
                total += getattr(err, "bytes_transferred", 0)
                raise
            total += moved
            if moved < want:
                break  # EOF
            # Let the other callbacks of the loop run between chunks.
            await _writable(loop, sockno)
        return total
    finally:
        if total > 0:
            _set_position(file, offset + total)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop whose ``loop.sendfile`` sends through the engine (``zcopy.uvloop.Loop``;
    needs the ``web`` extra), so aiohttp's ``FileResponse`` goes zero-copy on uvloop:
    ``web.run_app(app, loop=zcopy.aio.new_event_loop())``."""
    from .uvloop import Loop

    return Loop()


def _set_position(file: _SendableFile, pos: int) -> None:
    file.seek(pos)


def _check_params(sock: socket.socket, file: object, offset: int, count: int | None) -> None:
    # Same checks and messages as asyncio's loop._check_sendfile_params.
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_writer(fd)


async def _sendfile_fallback(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, file: _SendableFile, offset: int, count: int | None
) -> int:
    # asyncio's _sock_sendfile_fallback (read in an executor, then send), except that each
    # send is counted as it happens: cancelled mid-buffer, the file's position is still
    # offset + exactly the bytes the socket took (loop.sock_sendall cannot say how many).
    if offset:
        file.seek(offset)
    blocksize = min(count, _FALLBACK_BUFSIZE) if count else _FALLBACK_BUFSIZE
    buf = bytearray(blocksize)
    total = 0
    try:
        while True:
            if count:
                blocksize = min(count - total, blocksize)
                if blocksize <= 0:
                    break
            view = memoryview(buf)[:blocksize]
            read = await loop.run_in_executor(None, file.readinto, view)
            if not read:
                break  # EOF
            data = view[:read]
            while data:
                try:
                    sent = sock.send(data)
                except (BlockingIOError, InterruptedError):
                    await _writable(loop, sock.fileno())
                    continue
                total += sent
                data = data[sent:]
        return total
    finally:
        if total > 0:
            _set_position(file, offset + total)
