"""uvicorn HTTP protocols whose file responses go from the page cache to the socket (zero-copy).

One change on the command line, none in the application::

    uvicorn app:app --http zcopy.uvicorn:HttpToolsProtocol     # or zcopy.uvicorn:H11Protocol

These are uvicorn's own protocol classes, subclassed: parsing, keep-alive, pipelining, logging
and timeouts stay uvicorn's. What they add: on a plain TCP or Unix connection the ASGI scope
offers the extensions ``http.response.pathsend`` (Starlette's and FastAPI's ``FileResponse``
use it when offered) and ``http.response.zerocopysend`` (a file object, with optional
``offset``/``count`` and ``more_body``), and those bodies are sent by the engine (``sendfile``),
never read into Python. Stock uvicorn offers neither, so Starlette reads the file in 64 KiB
chunks through the event loop.

On TLS connections the extensions are not offered (the engine writes below TLS and would send
plaintext), so applications take their stock path. Ranges through Starlette still stream: it
uses ``pathsend`` only for whole files.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any, cast

import h11
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from uvicorn.config import Config
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.server import ServerState

from ._transport import FdSender, plain_socket_fd

__all__ = ["PATHSEND", "ZEROCOPYSEND", "H11Protocol", "HttpToolsProtocol"]

PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"

# errnos that mean the peer is gone: the response ends quietly, as uvicorn's own sends do.
_GONE = {errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNABORTED}

_Cycle = httptools_impl.RequestResponseCycle | h11_impl.RequestResponseCycle


class _FileBodies:
    """What both protocols add: the scope extensions and the engine-sent file bodies.

    uvicorn creates the request/response cycle inside its parser callbacks, so rather than
    copying those, the application is wrapped: the wrapper adds the extensions and intercepts the
    two file messages; every other message goes to uvicorn's own ``send``, whose bound ``self``
    is the cycle whose state (started, complete, Content-Length left, keep-alive) we keep.
    """

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    app: ASGI3Application
    _zc_sender: FdSender | None
    #: The status line and headers uvicorn produced for a file response, held back so that the
    #: engine sends them with the start of the file in one call (one segment for a small file).
    _zc_head: bytes

    def _zc_flush_head(self) -> None:
        """Writes held-back headers through the transport (before any other write)."""
        if self._zc_head:
            head, self._zc_head = self._zc_head, b""
            self.transport.write(head)

    # uvicorn's hooks, extended once for both protocols (this mixin comes first in their MRO,
    # so super() is uvicorn's protocol class).
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        self._zc_init()

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._zc_connection_made()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        self._zc_connection_lost()

    def _zc_init(self) -> None:
        self._zc_sender = None
        self._zc_head = b""
        self.app = _with_file_bodies(self.app, self)

    def _zc_connection_made(self) -> None:
        fd = plain_socket_fd(self.transport)
        self._zc_sender = None if fd is None else FdSender(self.loop, fd)

    def _zc_connection_lost(self) -> None:
        if self._zc_sender is not None:
            self._zc_sender.wake()

    async def _zc_send_file(self, cycle: _Cycle, message: dict[str, Any]) -> None:
        kind = message["type"]
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        if cycle.disconnected:
            return
        if not cycle.response_started:
            raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
        if cycle.response_complete:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")
        if self._zc_sender is not None:
            self._zc_sender.sent = 0
        if kind == PATHSEND:
            fd = os.open(message["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                await self._zc_body(cycle, fd, 0, os.fstat(fd).st_size, False)
            finally:
                os.close(fd)
            return
        file = message["file"]
        fd = file if isinstance(file, int) else file.fileno()
        offset: int | None = message.get("offset")
        start = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else offset
        count: int | None = message.get("count")
        if count is None:
            count = max(os.fstat(fd).st_size - start, 0)
        try:
            await self._zc_body(cycle, fd, start, count, bool(message.get("more_body", False)))
        finally:
            if offset is None and self._zc_sender is not None and self._zc_sender.sent:
                os.lseek(fd, start + self._zc_sender.sent, os.SEEK_SET)

    async def _zc_body(self, cycle: Any, fd: int, offset: int, count: int, more_body: bool) -> None:
        raise NotImplementedError

    async def _zc_sendfile(self, cycle: _Cycle, fd: int, offset: int, count: int) -> bool:
        """Send the range after whatever the transport holds; False if the peer went away."""
        sender = self._zc_sender
        assert sender is not None, "file bodies are offered only with a sender"
        transport = self.transport
        await _drain(cycle)
        if cycle.disconnected or transport.is_closing():
            return False
        # No pipelined request may be parsed (and answered, say with a 400) mid-body.
        resume = not cycle.flow.read_paused
        cycle.flow.pause_reading()
        head, self._zc_head = self._zc_head, b""
        try:
            sent = await sender.send(fd, offset, count, head)
        except OSError as err:
            if not (isinstance(err, ConnectionError) or err.errno in _GONE):
                raise
            # Reading is paused, so the transport would not notice the reset by itself.
            cycle.disconnected = True
            transport.close()
            return False
        finally:
            sender.close()
            if resume and not transport.is_closing():
                cycle.flow.resume_reading()
        if sent < count:
            raise RuntimeError(f"Response file ended after {sent} of its {count} bytes")
        return True


class _Capture:
    """Stands in for a transport while uvicorn writes a response's headers: keeps the bytes,
    passes everything else through."""

    def __init__(self, real: asyncio.Transport) -> None:
        self._real = real
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def _captured_head(cycle: _Cycle, send: ASGISendCallable, start: ASGISendEvent) -> bytes:
    """uvicorn's own handling of ``http.response.start`` (status, headers, keep-alive, its
    Content-Length bookkeeping), with the bytes it would write kept instead of written."""
    real = cycle.transport
    capture = _Capture(real)
    cycle.transport = cast(asyncio.Transport, capture)
    try:
        await send(start)
    finally:
        cycle.transport = real
    return bytes(capture.data)


async def _drain(cycle: _Cycle) -> None:
    # Wait until the transport's buffer (the headers, usually already sent) is empty: with both
    # limits at 0 the transport pauses the protocol now and resumes it exactly when empty.
    transport = cycle.transport
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        while transport.get_write_buffer_size() and not (cycle.disconnected or transport.is_closing()):
            await cycle.flow.drain()
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)


def _with_file_bodies(app: ASGI3Application, protocol: _FileBodies) -> ASGI3Application:
    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        cycle = getattr(send, "__self__", None)
        if scope["type"] != "http" or protocol._zc_sender is None or cycle is None:
            return await app(scope, receive, send)
        extensions = scope.setdefault("extensions", {})
        assert extensions is not None
        extensions[PATHSEND] = {}
        extensions[ZEROCOPYSEND] = {}

        pending_start: ASGISendEvent | None = None

        async def send_with_files(message: ASGISendEvent) -> None:
            # The start of a response is held until the next message says whether the body is
            # a file: then uvicorn's header bytes go out with the file in one engine call.
            nonlocal pending_start
            kind = message["type"]
            if kind == "http.response.start":
                pending_start = message
                return
            file_body = kind in (PATHSEND, ZEROCOPYSEND)
            if pending_start is not None:
                start, pending_start = pending_start, None
                if file_body:
                    protocol._zc_head = await _captured_head(cycle, send, start)
                else:
                    await send(start)
            if file_body:
                try:
                    await protocol._zc_send_file(cycle, cast(dict[str, Any], message))
                finally:
                    protocol._zc_flush_head()
            else:
                await send(message)

        await app(scope, receive, send_with_files)
        if pending_start is not None:
            await send(pending_start)

    return cast(ASGI3Application, wrapped)


class HttpToolsProtocol(_FileBodies, httptools_impl.HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools protocol, with file bodies sent by the engine on plain connections."""

    async def _zc_body(
        self, cycle: httptools_impl.RequestResponseCycle, fd: int, offset: int, count: int, more_body: bool
    ) -> None:
        transport = self.transport
        if cycle.scope["method"] == "HEAD":
            cycle.expected_content_length = 0
        elif cycle.chunked_encoding:
            self._zc_flush_head()
            if count:
                transport.write(b"%x\r\n" % count)
                if not await self._zc_sendfile(cycle, fd, offset, count):
                    return
            transport.write((b"\r\n" if count else b"") + (b"" if more_body else b"0\r\n\r\n"))
        else:
            if count > cycle.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            cycle.expected_content_length -= count
            if count and not await self._zc_sendfile(cycle, fd, offset, count):
                return
        if not more_body:
            # As uvicorn's own send ends a response.
            if cycle.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            cycle.response_complete = True
            cycle.message_event.set()
            if not cycle.keep_alive:
                transport.close()
            cycle.on_response()


class _Length:
    # h11 frames a body it is told only the length of (its documented sendfile support).
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class H11Protocol(_FileBodies, h11_impl.H11Protocol):  # type: ignore[misc]
    """uvicorn's h11 protocol, with file bodies sent by the engine on plain connections."""

    async def _zc_body(
        self, cycle: h11_impl.RequestResponseCycle, fd: int, offset: int, count: int, more_body: bool
    ) -> None:
        transport = self.transport
        conn = cycle.conn
        if cycle.scope["method"] != "HEAD" and count:
            marker = _Length(count)
            pieces: list[object] = list(conn.send_with_data_passthrough(h11.Data(data=cast(bytes, marker))) or [])
            for piece in pieces:
                if piece is not marker:
                    self._zc_flush_head()
                    transport.write(cast(bytes, piece))
                elif not await self._zc_sendfile(cycle, fd, offset, count):
                    return
        if not more_body:
            # As uvicorn's own send ends a response.
            cycle.response_complete = True
            cycle.message_event.set()
            transport.write(conn.send(h11.EndOfMessage()) or b"")
            if conn.our_state is h11.MUST_CLOSE or not cycle.keep_alive:
                conn.send(h11.ConnectionClosed())
                transport.close()
            cycle.on_response()
