"""``--broker``: every URL that cannot be used fails at start, in one line naming it."""

from __future__ import annotations

import pytest

from runtime.cluster import check_cluster_options, parse_broker_url
from runtime.cluster.url import BrokerUrlError
from runtime.config import RuntimeConfig
from tests.conftest import run_python


def test_a_plain_url_and_its_defaults() -> None:
    url = parse_broker_url("redis://cache.internal")
    assert (url.host, url.port, url.db, url.tls) == ("cache.internal", 6379, 0, False)
    assert parse_broker_url("rediss://h:6380/3").tls
    assert parse_broker_url("redis://[::1]:7000/2").display == "redis://[::1]:7000/2"


def test_a_password_is_never_shown_again() -> None:
    url = parse_broker_url("redis://ops:s3cr%40t@h:6379/1")
    assert url.password == "s3cr@t"
    assert url.display == "redis://ops:***@h:6379/1"
    assert "s3cr" not in url.display


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("http://h:6379/0", "scheme 'http' is not supported"),
        ("h:6379", "is not supported"),
        ("redis://", "has no host"),
        ("redis://h:99999/0", "not a URL"),
        ("redis://h:0/0", "port 0"),
        ("redis://h/abc", "database 'abc' is not a number"),
        ("redis://h/0?ssl_cert_reqs=none", "takes no query"),
        ("redis://h/0#x", "takes no query or fragment"),
        ("redis://h/0\nFLUSHALL", "whitespace or control characters"),
        ("redis://h /0", "whitespace or control characters"),
        ("redis://" + "h" * 3000, "longer than 2048"),
        ("unix:///tmp/redis.sock", "is not supported"),
    ],
)
def test_bad_and_hostile_urls_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(BrokerUrlError, match=says):
        parse_broker_url(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [("node_id", "a b"), ("node_id", "x" * 64), ("node_id", "-a"), ("broker_namespace", "a:b")],
)
def test_node_ids_and_namespaces_must_be_plain_names(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="use 1-63 letters"):
        check_cluster_options(RuntimeConfig(**{field: value}))


def test_serve_refuses_a_bad_broker_in_one_line_before_starting() -> None:
    done = run_python(
        "from runtime.cli import main; main(['serve', '--port', '0', '--broker', 'redis://h/x'])"
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "agent-runtime: error: --broker / AGENT_RUNTIME_BROKER: database 'x' is not a "
        "number: use redis://HOST:PORT/DB"
    )
    assert "Traceback" not in done.stderr


def test_serve_says_in_one_line_when_redis_cannot_be_reached() -> None:
    # a port nothing listens on: bound and closed by the OS a moment ago
    from tests.redis_server import free_port

    port = free_port()
    done = run_python(
        "from runtime.cli import main; import sys; "
        f"sys.exit(main(['serve', '--port', '0', '--broker', 'redis://127.0.0.1:{port}/0']))"
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"agent-runtime: cannot reach Redis at redis://127.0.0.1:{port}/0")
