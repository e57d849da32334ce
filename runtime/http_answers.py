"""Plain HTTP answers on the WebSocket port: every one ends its connection and says so.

websockets sends an answer that is not ``101 Switching Protocols`` and then closes the
connection, so each answer carries ``Connection: close`` (a keep-alive client would
otherwise send its next request into a closed connection) and a ``Date`` (RFC 9110 wants
one from a server with a clock).

The port speaks GET only. websockets hands any method to ``process_request``, except that
its request parser drops a request with a body (``Content-Length`` other than 0, or
``Transfer-Encoding``) by closing the TCP connection without a word, before any hook runs:
a ``POST`` with a body got no answer at all. ``MethodCheckingConnection`` (in
``runtime.websockets_adapter``: it takes undocumented members of websockets' Sans-I/O
protocol) reads the method first, so every other method gets ``405 Method Not Allowed``
with ``Allow: GET``; without those members the check is skipped, with one warning in the
log, and ``process_request`` still answers body-less requests with 405
(``method_not_allowed``).
"""

from __future__ import annotations

import email.utils
import logging
from http import HTTPStatus

from websockets.datastructures import Headers
from websockets.http11 import Response

from . import __version__

log = logging.getLogger(__name__)

SERVER_HEADER = f"agent-runtime/{__version__}"


def http_response(
    status: HTTPStatus,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head: bool = False,
) -> Response:
    """A complete answer; ``head``: the answer to a HEAD request, headers only."""
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
        ]
    )
    return Response(status.value, status.phrase, headers, b"" if head else body)


def method_not_allowed(method: str) -> Response:
    """``405`` for any method but GET, with the ``Allow`` header RFC 9110 requires."""
    body = f"method {method} not allowed: this port answers GET only\n".encode()
    response = http_response(HTTPStatus.METHOD_NOT_ALLOWED, body, head=method == "HEAD")
    response.headers["Allow"] = "GET"
    return response
