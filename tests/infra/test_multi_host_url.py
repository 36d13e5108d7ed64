"""A database URL may name several nodes (a Patroni cluster): the app reaches the primary, and
says in one line, per node, why none would do."""

from __future__ import annotations

import psycopg
import pytest

from infra.db import connect, describe_target, node_addresses, on_node
from infra.errors import ConfigError
from infra.settings import load_settings
from tests.conftest import free_port

CLUSTER = (
    "postgresql://ldl:Xq7-vT2p9w@10.0.0.1:5432,10.0.0.2:5433/ldl?target_session_attrs=read-write"
)


def test_every_node_of_a_multi_host_url_is_named() -> None:
    assert node_addresses(CLUSTER) == ["10.0.0.1:5432", "10.0.0.2:5433"]
    assert describe_target(CLUSTER) == "10.0.0.1:5432,10.0.0.2:5433/ldl"
    assert node_addresses("postgresql://ldl@db/ldl") == ["db:5432"]
    # As libpq reads it: a port belongs to its own host, the others take the default.
    assert node_addresses("postgresql://ldl@a,b:6432/ldl?target_session_attrs=primary") == [
        "a:5432",
        "b:6432",
    ]


def test_settings_take_a_multi_host_url_only_when_it_asks_for_the_primary() -> None:
    assert load_settings(environment="production", database_url=CLUSTER).database_url == CLUSTER
    without = CLUSTER.split("?")[0]
    with pytest.raises(ConfigError, match=r"LDL_DATABASE_URL.*target_session_attrs=read-write"):
        load_settings(environment="test", database_url=without)
    with pytest.raises(ConfigError, match="bad port: x"):
        load_settings(environment="test", database_url="postgresql://ldl@a:1,b:x/ldl")


def test_no_reachable_node_is_one_line_naming_each_node_and_why() -> None:
    first, second = free_port(), free_port()  # nothing listens on either
    url = f"postgresql://postgres@127.0.0.1:{first},127.0.0.1:{second}/ldl?target_session_attrs=read-write"
    with pytest.raises(ConfigError) as caught:
        connect(url)
    message = caught.value.detail
    assert "\n" not in message
    assert message.startswith(
        f"LDL_DATABASE_URL: no writable node among 127.0.0.1:{first},127.0.0.1:{second}/ldl: "
    ), message
    assert f"127.0.0.1:{first} Connection refused; 127.0.0.1:{second} Connection refused" in message


def test_a_standby_is_named_as_such_when_the_url_wants_a_writable_node(pg_admin_url: str) -> None:
    """The shared cluster is a primary: asking it for a standby shows how a refusal reads."""
    dead = free_port()
    base = pg_admin_url.split("?")[0]
    host = base.split("@")[-1].split("/")[0]
    url = base.replace(host, f"{host},127.0.0.1:{dead}") + "?target_session_attrs=standby"
    with pytest.raises(ConfigError) as caught:
        connect(url, as_app=False)
    assert f"{host} server is not in hot standby mode; 127.0.0.1:{dead} Connection refused" in (
        caught.value.detail
    )


def test_yoyo_gets_the_one_node_that_was_reached(pg_admin_url: str) -> None:
    dead = free_port()
    base = pg_admin_url.split("?")[0]
    host = base.split("@")[-1].split("/")[0]
    url = base.replace(host, f"127.0.0.1:{dead},{host}") + "?target_session_attrs=read-write"
    with psycopg.connect(url) as conn:
        assert on_node(url, conn) == base.replace(host, f"{conn.info.host}:{conn.info.port}") + (
            "?target_session_attrs=read-write"
        )
    assert on_node(base, conn) == base  # one node: as it was
