"""Redis URLs: a Sentinel URL becomes a client that asks the Sentinels for the primary."""

import pytest
import redis

from domain.errors import ConfigError
from tests.unit.conftest import BASE_URL, TOKEN_SECRET
from workers.redisconn import connect
from workers.settings import load_settings


def test_a_sentinel_url_names_every_sentinel_the_service_the_db_and_the_password():
    client = connect("redis+sentinel://:s3cret@10.0.0.1:26380,10.0.0.2/mymaster/2")
    pool = client.connection_pool
    assert pool.service_name == "mymaster"
    hosts = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(h["host"], h["port"]) for h in hosts] == [("10.0.0.1", 26380), ("10.0.0.2", 26379)]
    assert all(h["password"] == "s3cret" for h in hosts)
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (2, "s3cret")


def test_a_plain_url_is_a_plain_client():
    client = connect("redis://127.0.0.1:6390/3")
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_kwargs["db"] == 3


def test_a_sentinel_url_without_a_service_is_refused():
    with pytest.raises(ValueError, match="names its hosts and service"):
        connect("redis+sentinel://10.0.0.1:26379")


def test_settings_accept_a_sentinel_url_and_refuse_other_schemes():
    production = {
        "MAILROOM_TOKEN_SECRET": TOKEN_SECRET,
        "MAILROOM_PUBLIC_BASE_URL": BASE_URL,
        "MAILROOM_MAIL_FROM": "no-reply@notes.example.com",
    }
    url = "redis+sentinel://10.0.0.1:26379/mymaster"
    assert load_settings({**production, "REDIS_URL": url}).redis_url == url
    with pytest.raises(ConfigError, match="redis\\+sentinel://"):
        load_settings({**production, "REDIS_URL": "http://10.0.0.1"})
