"""The engine under an asyncio transport: send a file range on the socket a transport owns.

Web servers write headers through their transport and would read the file into the same
transport; here the body goes from the page cache to the socket with the engine instead. The
rules that make that safe:

- Only plain stream transports qualify (``plain_socket_fd``): a TLS transport's socket carries
  ciphertext, and bytes written below it would go out in clear. Anything not on the allowlist
  takes the stock path.
- The transport's write buffer must be empty first, and nothing may be written through it
  while the file goes out; the caller pauses reading so a pipelined request cannot trigger a
  write (an error response) in the middle of the body.
- The engine runs with timeout 0 and never blocks the loop; while the socket is full we wait for
  writability on a *duplicate* of the descriptor: the loop refuses a second watcher on the fd a
  transport owns, and the duplicate also keeps the number from being reused by a new connection
  should the transport close its own while we wait.
- The file stays in the page cache: a slow reader costs no memory in the server.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Any

from . import _zcopy

__all__ = ["STATS", "FdSender", "plain_socket_fd"]

#: Bodies and bytes this process sent through the engine on transports (``sends`` counts calls
#: of ``FdSender.send``): what tells an operator, or a test, that responses went zero-copy.
STATS = {"sends": 0, "bytes": 0}

# Bytes moved per engine call before the loop gets to run other callbacks: keeps many concurrent
# responses fair when the peers drain as fast as we send.
_CHUNK = 8 * 1024 * 1024

# Transports whose socket carries the bytes we write to it unchanged, by class name and module:
# asyncio's selector socket transport and uvloop's TCP and Unix stream transports. TLS transports
# (asyncio.sslproto, uvloop's _SSLProtocolTransport) wrap one of these and are not listed.
_PLAIN = {
    ("asyncio.selector_events", "_SelectorSocketTransport"),
    ("uvloop.loop", "TCPTransport"),
    ("uvloop.loop", "UnixTransport"),
}


def plain_socket_fd(transport: asyncio.BaseTransport) -> int | None:
    """The descriptor of the stream socket under ``transport``, or None when the engine must not
    write to it (TLS, a pipe, an unknown transport class, a closing transport)."""
    cls = type(transport)
    if (cls.__module__, cls.__name__) not in _PLAIN or transport.is_closing():
        return None
    if transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("ssl_object") is not None:
        return None
    sock: Any = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    fd = sock.fileno()
    return fd if isinstance(fd, int) and fd >= 0 else None


class FdSender:
    """Sends file ranges on one connection's socket with the engine, never blocking the loop.

    One per connection. ``wake()`` is called by the owner's ``connection_lost`` so that a send
    waiting on a stalled peer ends when the connection does; ``close()`` releases the duplicate
    descriptor (called after each response, so nothing outlives it).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd = fd
        self._dup: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._lost = False
        #: Bytes the current or last ``send`` delivered, also when it raised.
        self.sent = 0

    def wake(self) -> None:
        """The connection is gone: end any wait for writability."""
        self._lost = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        """Close the duplicate descriptor, if one was made."""
        if self._dup is not None:
            os.close(self._dup)
            self._dup = None

    async def send(self, fileno: int, offset: int, count: int, head: bytes = b"") -> int:
        """Send ``head`` (a response's headers, may be empty) and then ``count`` bytes of
        ``fileno`` from ``offset``; return the file bytes sent, fewer only at the file's EOF.
        Headers and the first chunk of the file go in one engine call (``send_parts``: one
        segment for a small file). Raises ``ConnectionError`` when the connection is lost while
        waiting and the engine's ``OSError`` otherwise; ``self.sent`` holds the file bytes
        delivered."""
        self.sent = 0
        STATS["sends"] += 1
        try:
            return await self._send(fileno, offset, count, memoryview(head))
        finally:
            STATS["bytes"] += self.sent

    async def _send(self, fileno: int, offset: int, count: int, head: memoryview) -> int:
        while self.sent < count or head:
            want = min(_CHUNK, count - self.sent)
            # The transport's own number is used only until the first wait: after an await it may
            # have been closed and reused.
            fd = self._fd if self._dup is None else self._dup
            try:
                if head:
                    parts: list[Any] = [head, (fileno, offset + self.sent, want)] if want else [head]
                    moved = _zcopy.send_parts(fd, parts, timeout=0).bytes
                else:
                    moved = _zcopy.transfer(fileno, fd, offset=offset + self.sent, count=want, timeout=0).bytes
            except BlockingIOError as err:
                head = self._account(head, err.characters_written)
                await self._writable()
                continue
            except OSError as err:
                head = self._account(head, getattr(err, "bytes_transferred", 0))
                raise
            except ValueError as err:  # send_parts: the file is shorter than its range
                raise OSError(errno.EIO, f"the response file ended early: {err}") from err
            had_head = len(head)
            head = self._account(head, moved)
            if moved - had_head < want:
                break  # EOF
            if self.sent < count:
                await self._writable()  # let the loop's other callbacks run between chunks
        return self.sent

    def _account(self, head: memoryview, n: int) -> memoryview:
        """Records `n` bytes delivered, headers first; returns the headers still to send."""
        h = min(n, len(head))
        self.sent += n - h
        return head[h:]

    async def _writable(self) -> None:
        if self._lost:
            raise ConnectionResetError("connection lost")
        if self._dup is None:
            self._dup = os.dup(self._fd)
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiter = fut
        self._loop.add_writer(self._dup, _wake, fut)
        try:
            await fut
        finally:
            self._waiter = None
            self._loop.remove_writer(self._dup)
        if self._lost:
            raise ConnectionResetError("connection lost")


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)

