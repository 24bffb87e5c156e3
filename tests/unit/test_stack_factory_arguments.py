"""eng5_stack_factory arguments are validated through the settings declaration (no stack)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.settings import Eng5Settings, SettingsError
from pytest_eng5.stack.request import StackRequest
from pytest_eng5.stack_requests import STACK_SETTINGS
from pytest_eng5.stack_requests import stack_request as request_for

BASE = Eng5Settings()
ROOT = Path("eng5-stacks")


def stack_request(base: Eng5Settings, **arguments: Any) -> StackRequest:
    return request_for(base, ROOT, **arguments)


def test_every_stack_setting_is_a_declared_setting() -> None:
    assert set(STACK_SETTINGS) <= set(Eng5Settings.model_fields)


def test_keywords_become_the_settings_they_name() -> None:
    request = stack_request(
        BASE, partitions=2, judge="COIN_FLIP", faults={"cj-worker": {"judge_delay_ms": 5}}
    )
    assert request.services is not None
    assert request.services.judge == "coin_flip", "choices are case-insensitive, as on the CLI"
    assert request.config.topic_partitions == 2
    assert request.faults == {"cj-worker": {"judge_delay_ms": 5}}
    cluster = stack_request(BASE, kafka="apache", brokers=1)
    assert (cluster.config.kafka_provider, cluster.config.kafka_brokers) == ("apache", 1)
    assert stack_request(BASE, services=False).services is None


def test_an_unknown_setting_is_named() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting.*judje") as info:
        stack_request(BASE, judje="coin_flip")
    assert "judge" in info.value.next_step


def test_a_bad_value_is_named_with_the_valid_choices() -> None:
    with pytest.raises(SettingsError, match=r"eng5_stack_factory\(judge=...\): .*judge") as info:
        stack_request(BASE, judge="nonsense")
    assert "coin_flip" in info.value.message
    with pytest.raises(SettingsError, match="kafka-brokers"):
        stack_request(BASE, kafka="apache", brokers=2)


def test_a_run_setting_is_sent_to_the_runner() -> None:
    with pytest.raises(SettingsError, match="max_comparisons is a run setting") as info:
        stack_request(BASE, max_comparisons=40)
    assert "eng5_stack_runner_factory" in info.value.next_step


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"jwt_secret": "hunter2-x"}, "jwt_secret (environment only: set JWT_SECRET_KEY)"),
        ({"kafka_sasl_password": "hunter2-x"}, "environment only: set KAFKA_SASL_PASSWORD"),
        ({"repeat": 2}, "repeat (--eng5-repeat / ini eng5_repeat) is a setting of the whole"),
    ],
)
def test_a_credential_or_session_setting_is_named_without_its_value(
    arguments: dict, message: str
) -> None:
    with pytest.raises(SettingsError) as info:
        stack_request(BASE, **arguments)
    assert message in info.value.message
    assert "hunter2" not in str(info.value)
    assert "run setting" not in str(info.value)
    assert "runner" not in info.value.next_step


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"stack": "external", "judge": "coin_flip"}, "judge= applies to stack='embedded' or 'tes"),
        ({"stack": "external", "kafka": "apache"}, "kafka= applies to stack='embedded' only, not"),
        ({"stack": "testcontainers", "kafka": "apache"}, "kafka= applies to stack='embedded'"),
        ({"stack": "external", "judge_seed": 3}, "judge_seed= applies to stack='embedded' or"),
        ({"cj_url": "http://cj"}, "cj_url= applies to stack='external' only, not to the embedded"),
    ],
)
def test_a_setting_of_another_stack_is_refused_as_on_the_command_line(
    arguments: dict, message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as info:
        stack_request(BASE, **arguments)
    assert "drop" in info.value.next_step


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"brokers": 3}, "brokers=3 needs the Apache Kafka cluster"),
        ({"partitions": 0}, "partitions=0 is not a number"),
        ({"partitions": 2, "kafka": "apache"}, "partitions=2 applies only"),
        ({"faults": {"cj_worker": {"judge_delay_ms": 1}}}, "unknown service.*cj_worker"),
        ({"faults": {"content": {"http_5xx_count": 1}}, "services": False}, "reference services"),
        ({"brokers": 1, "kafka_brokers": 3, "kafka": "apache"}, "set the same setting"),
    ],
)
def test_combinations_that_cannot_work_are_named(arguments: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        stack_request(BASE, **arguments)
    assert info.value.next_step


def test_equal_requests_share_a_key_and_any_difference_parts_them() -> None:
    key = stack_request(BASE, judge="coin_flip").key()
    assert stack_request(BASE, judge="coin_flip").key() == key
    assert stack_request(BASE).key() != key
    assert stack_request(BASE, judge="coin_flip", partitions=2).key() != key
    assert stack_request(BASE, judge="coin_flip", services=False).key() != key
    faulty = stack_request(BASE, judge="coin_flip", faults={"content": {"http_5xx_count": 1}})
    assert faulty.key() != key


def test_run_settings_of_the_session_do_not_part_stacks() -> None:
    session = BASE.merged(max_comparisons=40, batch_label="other")
    assert stack_request(session).key() == stack_request(BASE).key()


def test_the_key_holds_no_secret_but_tells_dsns_apart() -> None:
    one = BASE.merged(stack="external", postgres_dsn=SecretStr("postgresql://u:s3cret-1@h/db"))
    two = BASE.merged(stack="external", postgres_dsn=SecretStr("postgresql://u:s3cret-2@h/db"))
    assert "s3cret" not in stack_request(one).key()
    assert stack_request(one).key() != stack_request(two).key()
