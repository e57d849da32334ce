"""The Origin rule: normalised matching, ``null`` only when allowed, no header allowed."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from runtime.config import ALLOWED_ORIGINS_ENV
from runtime.origins import OriginPolicy, normalize_origin
from tests.conftest import ROOT, RuntimeFactory, seconds

# --- the pure rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("http://example.com", "http://example.com"),
        ("HTTP://Example.COM:80", "http://example.com"),
        ("https://a.b:443/", "https://a.b"),
        ("https://a.b/", "https://a.b"),
        ("  https://a.b  ", "https://a.b"),
        ("http://a.b:8080", "http://a.b:8080"),
        ("http://a.b:443", "http://a.b:443"),  # 443 is https's default, not http's
        ("https://a.b:80", "https://a.b:80"),
        ("ws://a.b:80", "ws://a.b"),
        ("wss://a.b:443", "wss://a.b"),
        ("http://[::1]:80", "http://[::1]"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("null", "null"),
        ("NULL", "null"),
    ],
)
def test_normalize_origin(given: str, normalised: str) -> None:
    assert normalize_origin(given) == normalised


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("HTTP://Example.COM:80", "http://example.com", True),
        ("https://a.b:443/", "https://a.b", True),
        ("http://a.b:8080", "http://a.b", False),
        ("http://a.b", "https://a.b", False),
        ("http://a.b", "http://b.a", False),
        ("null", "http://null", False),
    ],
)
def test_two_spellings_are_one_origin_or_not(a: str, b: str, same: bool) -> None:
    assert (normalize_origin(a) == normalize_origin(b)) is same


@pytest.mark.parametrize(
    "not_an_origin",
    ["", "example.com", "https://a.b/app", "https://a.b?x=1", "https://u@a.b", "http://a.b:x"],
)
def test_what_is_not_an_origin_is_refused(not_an_origin: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        normalize_origin(not_an_origin)


def test_the_policy() -> None:
    anyone = OriginPolicy()
    assert anyone.allows("https://evil.example") and anyone.allows("null")
    policy = OriginPolicy(["HTTPS://App.Example:443/"])
    assert policy.allows("https://app.example")
    assert policy.allows(None), "no Origin header: a non-browser client"
    assert not policy.allows("https://app.example:8443")
    assert not policy.allows("null"), "null matches only if null is allowed"
    assert not policy.allows("garbage")
    assert OriginPolicy(["https://app.example", "null"]).allows("null")
    with pytest.raises(ValueError):
        OriginPolicy(["https://app.example/index.html"])


# --- real handshakes ------------------------------------------------------------------------


async def handshake(url: str, origin: str | None) -> int:
    """The status a handshake from ``origin`` gets (101 when it opens and is acked)."""
    try:
        async with asyncio.timeout(seconds(5)):
            async with ws_connect(
                url, origin=None if origin is None else Origin(origin), open_timeout=seconds(5)
            ) as ws:
                assert orjson.loads(await ws.recv())["type"] == "connection_ack"
                return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_handshakes_from_allowed_refused_and_null_origins(
    make_runtime: RuntimeFactory,
) -> None:
    server = await make_runtime(allowed_origins=("https://app.example",))
    url = server.url + "/ws?token=" + server.issue_token("alice")
    assert await handshake(url, "HTTPS://App.Example:443") == 101, "one origin, two spellings"
    assert await handshake(url, None) == 101, "no Origin header (not a browser): allowed"
    assert await handshake(url, "null") == 403, "null allowed though not configured"
    assert await handshake(url, "https://app.example:8443") == 403, "another port allowed"

    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, origin=Origin("https://evil.example")):
            pass
    said = (refused.value.response.body or b"").decode()
    assert "'https://evil.example'" in said, said
    assert "--allowed-origin https://evil.example" in said, said
    assert ALLOWED_ORIGINS_ENV in said, said

    allows_null = await make_runtime(allowed_origins=("https://app.example", "null"))
    token = allows_null.issue_token("alice")
    assert await handshake(allows_null.url + "/ws?token=" + token, "null") == 101, "null refused"


# --- the CLI --------------------------------------------------------------------------------


def serve_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "serve", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds(30),
        check=False,
    )


def test_serve_help_documents_the_origin_rule() -> None:
    result = serve_cli("--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines anywhere
    for words in (
        "--allowed-origin ORIGIN",
        ALLOWED_ORIGINS_ENV,
        "80 for http/ws, 443 for https/wss",
        "trailing slash",
        "'null'",
        "without an Origin header",
    ):
        assert words in text, f"{words!r} missing from serve --help:\n{result.stdout}"


def test_serve_refuses_a_configured_origin_that_is_no_origin() -> None:
    result = serve_cli("--port", "0", "--allowed-origin", "https://app.example/index.html")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "not an origin" in result.stderr
