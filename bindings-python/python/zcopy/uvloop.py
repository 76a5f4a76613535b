"""uvloop with a working ``loop.sendfile``, sent by the engine: aiohttp's ``FileResponse`` (and
any other ``loop.sendfile`` caller) goes zero-copy on uvloop.

uvloop implements no ``loop.sendfile`` (``NotImplementedError``), so aiohttp reads every file
into Python in chunks. ``Loop`` here is uvloop's loop plus ``sendfile`` with asyncio's semantics::

    web.run_app(app, loop=zcopy.uvloop.new_event_loop())    # or zcopy.aio.new_event_loop()
    asyncio.set_event_loop_policy(zcopy.uvloop.EventLoopPolicy())

What asyncio's ``loop.sendfile`` does, this does: reading is paused and the transport's buffer
drained before the file goes out, nothing is written in between, the return value is the bytes
sent, the file's position ends at ``offset`` + bytes sent, ``fallback=True`` reads and writes
through the transport where the engine must not be used (TLS: it would put plaintext on the
wire), and the same exceptions come out (``RuntimeError`` for a closing or unsupported
transport, ``SendfileNotAvailableError`` with ``fallback=False``, ``ValueError``/``TypeError``
for bad parameters). One difference: a connection error on the very first write is raised
(``BrokenPipeError``, ``ConnectionResetError``) instead of turning into a fallback attempt.
"""

from __future__ import annotations

import asyncio
import enum
import io
import os
import sys
from collections.abc import Coroutine
from typing import IO, Any, TypeVar, cast

import uvloop

from . import _zcopy
from ._transport import FdSender, plain_socket_fd
from .aio import _check_params

__all__ = ["EventLoopPolicy", "Loop", "new_event_loop", "run"]

_T = TypeVar("_T")
_FALLBACK_BLOCK = 64 * 1024


class _Mode(enum.Enum):
    NATIVE = "native"
    FALLBACK = "fallback"
    UNSUPPORTED = "unsupported"


def _mode(transport: asyncio.BaseTransport) -> _Mode:
    if plain_socket_fd(transport) is not None:
        return _Mode.NATIVE
    compatible = getattr(transport, "_sendfile_compatible", None)  # asyncio's own transports
    if compatible is not None:
        return _Mode.NATIVE if compatible.name == "TRY_NATIVE" else _Mode(compatible.name.lower())
    cls = type(transport)
    if (cls.__module__, cls.__name__) == ("uvloop.loop", "_SSLProtocolTransport"):
        return _Mode.FALLBACK
    return _Mode.UNSUPPORTED


class Loop(uvloop.Loop):
    """uvloop's event loop with ``sendfile`` through the engine."""

    async def sendfile(
        self,
        transport: asyncio.BaseTransport,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send ``file`` on ``transport``; like ``asyncio.AbstractEventLoop.sendfile``."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = _mode(transport)
        if mode is _Mode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is _Mode.NATIVE:
            try:
                return await self._zc_sendfile_native(cast(asyncio.Transport, transport), file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not supported for transport {transport!r}")
        return await self._zc_sendfile_fallback(cast(asyncio.Transport, transport), file, offset, count)

    async def _zc_sendfile_native(
        self, transport: asyncio.Transport, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        fd = plain_socket_fd(transport)
        assert fd is not None, "native mode means a plain socket"
        _check_params(transport.get_extra_info("socket"), file, offset, count)
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as err:
            raise asyncio.SendfileNotAvailableError("not a regular file") from err
        try:
            fsize = os.fstat(fileno).st_size
        except OSError as err:
            raise asyncio.SendfileNotAvailableError("not a regular file") from err
        if not (count if count else fsize):
            return 0  # empty file
        sender = FdSender(self, fd)
        proto = _SendfileProtocol(self, transport, sender)
        try:
            await proto.empty()
            await sender.send(fileno, offset, count if count else sys.maxsize)
            return sender.sent
        except _zcopy.UnsupportedError as err:
            if sender.sent:
                raise
            raise asyncio.SendfileNotAvailableError("the engine cannot send this file") from err
        finally:
            sender.close()
            if sender.sent:
                file.seek(offset + sender.sent)
            proto.restore()

    async def _zc_sendfile_fallback(
        self, transport: asyncio.Transport, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        # asyncio's fallback: read in an executor, write through the transport, respect its
        # flow control, so a slow reader never makes us buffer the file.
        if offset:
            file.seek(offset)
        blocksize = min(count, _FALLBACK_BLOCK) if count else _FALLBACK_BLOCK
        buf = bytearray(blocksize)
        total = 0
        proto = _SendfileProtocol(self, transport, None)
        try:
            while True:
                if count:
                    blocksize = min(count - total, blocksize)
                    if blocksize <= 0:
                        return total
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)  # type: ignore[attr-defined]
                if not read:
                    return total  # EOF
                await proto.drain()
                transport.write(bytes(view[:read]))
                total += read
        finally:
            if total:
                file.seek(offset + total)
            proto.restore()


class _SendfileProtocol(asyncio.Protocol):
    """Stands in for the transport's protocol during a sendfile, as asyncio's fallback does:
    reading is paused, flow-control events are ours, and a lost connection wakes our waits
    (and still reaches the real protocol)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, sender: FdSender | None):
        self._loop = loop
        self._transport = transport
        self._proto = self._transport.get_protocol()
        self._sender = sender
        self._resume_reading = self._transport.is_reading()
        self._transport.pause_reading()
        self._transport.set_protocol(self)
        self._paused = False
        # A resume we got without having seen the pause: the real protocol was paused and waits.
        self._owed_resume = False
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _check(self) -> None:
        if self._lost or self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        if not self._paused:
            self._owed_resume = True
        self._paused = False
        self._wake()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        if self._sender is not None:
            self._sender.wake()
        self._proto.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("Invalid state: reading should be paused")

    async def empty(self) -> None:
        """Wait until the transport's buffer is empty: with both limits at 0 the transport pauses
        us now (unless already paused) and resumes us exactly when it is empty."""
        self._check()
        if not self._transport.get_write_buffer_size():
            return
        low, high = self._transport.get_write_buffer_limits()
        self._transport.set_write_buffer_limits(high=0, low=0)
        try:
            while self._transport.get_write_buffer_size():
                self._check()
                await self._wait()
        finally:
            if not self._transport.is_closing():
                self._transport.set_write_buffer_limits(high=high, low=low)

    async def drain(self) -> None:
        """Wait while the transport is above its high-water mark. Whether it had paused the real
        protocol before we stood in is not visible; above the mark it had (transports pause on
        the write that crosses it), and its resume then comes to us."""
        self._check()
        high = self._transport.get_write_buffer_limits()[1]
        while self._paused or self._transport.get_write_buffer_size() > high:
            await self._wait()
            self._check()

    def restore(self) -> None:
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._proto)
        if self._lost or self._transport.is_closing():
            return
        if self._resume_reading:
            self._transport.resume_reading()
        if self._owed_resume and not self._paused:
            self._proto.resume_writing()
        elif self._paused and not self._owed_resume:
            self._proto.pause_writing()


def new_event_loop() -> Loop:
    """A new ``Loop``."""
    return Loop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An event-loop policy whose loops are ``Loop``."""

    def new_event_loop(self) -> Loop:
        return Loop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """``asyncio.run(main)`` on a ``Loop``."""
    with asyncio.Runner(loop_factory=new_event_loop, debug=debug) as runner:
        return runner.run(main)

