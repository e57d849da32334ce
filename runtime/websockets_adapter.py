"""The one place the runtime reaches into websockets' undocumented internals, for two things
the public API cannot do: write many frames in one socket write, and answer a request of
another method than GET before websockets' parser drops it unanswered.

**Batched writes.** websockets' public ``send`` writes each message with a syscall of its
own. Writing a busy connection's queued frames in one ``writelines`` instead takes a good
part of the CPU both ends spend per frame (see ``runtime.connections``), and that needs
three attributes of an ``asyncio.connection.Connection`` that the library does not
document:

- ``protocol``: its Sans-I/O protocol (``send_text`` frames a message, ``data_to_send``
  hands out the bytes),
- ``transport``: the asyncio transport (``writelines``, ``is_closing``, ``abort``),
- ``paused``: whether the transport asked it to stop writing (its write buffer is full).

If a websockets release renames or drops any of them, ``batch_writer`` returns None and the
runtime falls back to the public ``send`` (slower, still correct), with one warning in the
log.

**The method check.** ``MethodCheckingConnection`` replaces the Sans-I/O protocol's request
parser (``ServerProtocol.parser``, ``.parse``, ``.reader``, ``.send_response``) with one that
reads the request line's method first (see ``runtime.http_answers``). Without those, the
check is skipped with one warning, and body-less requests still get 405.

``tests/runtime/test_websockets_adapter.py`` fails loudly in CI when any of these is gone.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Generator, Sequence
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State
from websockets.server import ServerProtocol

from .http_answers import SERVER_HEADER, method_not_allowed

log = logging.getLogger(__name__)

#: the internals ``BatchWriter`` uses, by attribute of the connection
BATCH_INTERNALS = {
    "protocol": ("state", "send_text", "data_to_send"),
    "transport": ("writelines", "is_closing", "abort"),
    "paused": (),
}


#: what ``MethodCheckingConnection`` uses of websockets' ``ServerProtocol``, by attribute
METHOD_CHECK_INTERNALS: dict[str, tuple[str, ...]] = {
    "reader": ("buffer", "eof"),
    "parser": (),
    "parse": (),
    "send_response": (),
}
#: the longest method worth reading (RFC 9110 methods are short): past this many bytes
#: without a space, the request is left to websockets' parser, which refuses it
MAX_METHOD_BYTES = 32
#: an HTTP method is a token (RFC 9110, section 5.6.2)
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def missing_internals(
    obj: Any, internals: dict[str, tuple[str, ...]] = BATCH_INTERNALS
) -> list[str]:
    """The ``internals`` that ``obj`` lacks, as ``attribute`` or ``attribute.member``."""
    missing = []
    for name, members in internals.items():
        if not hasattr(obj, name):
            missing.append(name)
            continue
        inner = getattr(obj, name)
        missing += [f"{name}.{m}" for m in members if not hasattr(inner, m)]
    return missing


class BatchWriter:
    """Writes several text frames to one open websockets connection in one socket write."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def writable(self) -> bool:
        """Open, and its write buffer below websockets' limit (else ``send`` would wait)."""
        connection = self._connection
        return (
            connection.protocol.state is State.OPEN
            and not connection.paused
            and not connection.transport.is_closing()
        )

    def write(self, frames: Sequence[bytes]) -> None:
        """Frame every payload as a text message and hand them all to the socket at once."""
        protocol = self._connection.protocol
        for frame in frames:
            protocol.send_text(frame)
        self._connection.transport.writelines(protocol.data_to_send())

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        self._connection.transport.abort()


def batch_writer(connection: object) -> BatchWriter | None:
    """A ``BatchWriter`` for ``connection``, or None when it is not a websockets
    connection with the internals it needs (the caller then uses ``send``)."""
    if not isinstance(connection, Connection):
        return None
    missing = missing_internals(connection)
    if missing:
        _warn_no_batch(tuple(missing))
        return None
    return BatchWriter(connection)


@functools.cache
def _warn_no_batch(missing: tuple[str, ...]) -> None:
    """Say it once per process, not once per connection."""
    log.warning(
        "this websockets release lacks %s: frames are written with one send() each, "
        "which costs more CPU per frame",
        ", ".join(missing),
    )


# --- answering other methods than GET before websockets' parser -------------------------


class MethodCheckingConnection(ServerConnection):
    """A server connection that answers a request of any method but GET with 405 itself,
    before websockets' parser, which would drop a request with a body unanswered."""

    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, *args, **kwargs)
        missing = missing_internals(protocol, METHOD_CHECK_INTERNALS)
        if missing:
            _warn_no_method_check(tuple(missing))
            return
        # Nothing was received yet, so the parser websockets started has read nothing:
        # it is replaced by one that checks the method, then hands over to it.
        protocol.parser = _check_method_then_parse(protocol)
        next(protocol.parser)


def _check_method_then_parse(protocol: ServerProtocol) -> Generator[None, None, None]:
    """The protocol's parser: the request line's method first, then websockets' own."""
    method = yield from _peek_method(protocol)
    if method is not None and method != "GET":
        response = method_not_allowed(method)
        response.headers["Server"] = SERVER_HEADER
        # Like websockets' own early answers: send_response half-closes the connection
        # and installs a parser that discards the rest, so this one is never resumed.
        protocol.send_response(response)
        yield
        return
    yield from protocol.parse()


def _peek_method(protocol: ServerProtocol) -> Generator[None, None, str | None]:
    """The request's method, left in the buffer for websockets' parser; None if the first
    bytes are not a method (websockets' parser then refuses the request as it always did)."""
    reader = protocol.reader
    while (end := reader.buffer.find(b" ", 0, MAX_METHOD_BYTES)) < 0:
        if reader.eof or len(reader.buffer) >= MAX_METHOD_BYTES or b"\n" in reader.buffer:
            return None
        yield  # wait for more bytes
    method = bytes(reader.buffer[:end])
    return method.decode("ascii") if _TOKEN.fullmatch(method) else None


@functools.cache
def _warn_no_method_check(missing: tuple[str, ...]) -> None:
    """Say it once per process, not once per connection."""
    log.warning(
        "this websockets release lacks ServerProtocol.%s: a request of another method "
        "than GET that has a body is dropped without an answer instead of getting 405",
        ", ServerProtocol.".join(missing),
    )
