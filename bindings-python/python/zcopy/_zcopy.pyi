"""The private native module of zcopy (PyO3). Use the public names in ``zcopy``."""

from collections.abc import Iterable
from typing import Protocol, final

from _typeshed import ReadableBuffer

__all__ = [
    "PanicError",
    "Report",
    "UnsupportedError",
    "ZeroCopySender",
    "__version__",
    "_panic",
    "capabilities",
    "relay",
    "send_parts",
    "transfer",
]

__version__: str

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

_Fd = int | _HasFileno

class UnsupportedError(OSError):
    """The method cannot work for this pair of descriptors or on this kernel (errno EOPNOTSUPP)."""

class PanicError(RuntimeError):
    """A bug: the native engine panicked. The call was abandoned; please report it."""

@final
class Report:
    """What a transfer did."""

    @property
    def bytes(self) -> int: ...
    @property
    def method(self) -> str: ...
    @property
    def syscalls(self) -> int: ...
    @property
    def fallbacks(self) -> int: ...
    @property
    def fallback_details(self) -> list[tuple[str, str, str]]: ...
    @property
    def zc_sends(self) -> int: ...
    @property
    def zc_copied(self) -> int: ...

@final
class ZeroCopySender:
    """Streams buffers to a TCP socket with MSG_ZEROCOPY, keeping each alive until the
    kernel's completion for it arrives."""

    def __new__(cls, sock: _Fd) -> ZeroCopySender: ...
    def send(self, buf: ReadableBuffer) -> int: ...
    def poll(self, timeout: float | None = 0.0) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def completions(self) -> int: ...
    @property
    def copied(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def close(self, timeout: float | None = None) -> None: ...
    def __enter__(self) -> ZeroCopySender: ...
    def __exit__(self, *_args: object) -> bool: ...

def transfer(
    src: _Fd,
    dst: _Fd,
    *,
    offset: int | None = None,
    count: int | None = None,
    method: str | None = None,
    timeout: float | None = None,
    fallback: bool = False,
    cache: str | None = None,
) -> Report: ...
def relay(a: _Fd, b: _Fd, timeout: float | None = None) -> tuple[int, int, bool]: ...
def send_parts(
    sock: _Fd,
    parts: Iterable[ReadableBuffer | tuple[_Fd, int, int]],
    *,
    timeout: float | None = None,
    skip: int | None = None,
    cache: str | None = None,
) -> Report: ...
def capabilities() -> dict[str, bool]: ...
def _panic(message: str) -> None: ...
