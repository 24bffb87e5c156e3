"""Settings, secrets and ports: validated up front, with the next step in every error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import SecretStr

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.redact import MASK, redact
from pytest_eng5.settings import Eng5Settings
from pytest_eng5.settings_sources import resolve_settings
from pytest_eng5.stack.config import DEFAULT_TOPICS, KafkaSecurity, StackConfig
from pytest_eng5.stack.kafka import KafkaEndpoint
from pytest_eng5.stack.ports import free_port, port_is_free, require_free_port
from pytest_eng5.stack.session import running_stack
from pytest_eng5.stack_requests import session_request, stack_config


def test_default_topics_are_the_six_contract_topics() -> None:
    assert len(set(DEFAULT_TOPICS)) == 6
    assert "huleedu.llm_provider.comparison_result.v1" in DEFAULT_TOPICS
    assert all(topic.startswith("huleedu.") and topic.endswith(".v1") for topic in DEFAULT_TOPICS)


def test_sasl_password_is_registered_and_kept_out_of_repr() -> None:
    security = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "eng5-user", SecretStr("s3cret-pass-42"))
    assert "s3cret-pass-42" not in repr(security)
    assert redact("login with s3cret-pass-42 failed") == f"login with {MASK} failed"


def test_external_dsn_password_is_registered(tmp_path: Path) -> None:
    config = StackConfig(
        "external",
        tmp_path,
        tmp_path,
        kafka_bootstrap="kafka.example:9092",
        postgres_dsn=SecretStr("postgresql://cj:dsn-pass-9876@db.example:5432/cj"),
    )
    assert "dsn-pass-9876" not in repr(config)
    assert config.postgres_dsn is not None
    dsn = config.postgres_dsn.get_secret_value()
    assert "dsn-pass-9876" not in redact(f"could not connect to {dsn}")


def test_sasl_credentials_come_typed_from_the_settings(tmp_path: Path) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "eng5-user",
        "KAFKA_SASL_PASSWORD": "sasl-pass-from-env-7",
    }
    settings = resolve_settings({"stack": "external", "kafka_bootstrap": "k:9092"}, {}, env)
    config = stack_config(settings, tmp_path, tmp_path)
    assert isinstance(config.kafka_security.sasl_password, SecretStr)
    assert "sasl-pass-from-env-7" not in repr(config) + repr(settings)
    producer = KafkaEndpoint("k:9092", config.kafka_security, idempotence=True).producer_kwargs()
    assert producer["sasl_plain_password"] == "sasl-pass-from-env-7"
    assert redact("auth failed for sasl-pass-from-env-7") == f"auth failed for {MASK}"


def test_sasl_settings_reach_the_aiokafka_kwargs() -> None:
    security = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "eng5-user", SecretStr("another-secret"))
    endpoint = KafkaEndpoint("kafka.example:9092", security, idempotence=True)
    producer = endpoint.producer_kwargs()
    assert producer["enable_idempotence"] is True
    assert producer["acks"] == "all"
    assert producer["sasl_mechanism"] == "PLAIN"
    assert producer["sasl_plain_username"] == "eng5-user"
    assert producer["sasl_plain_password"] == "another-secret"
    assert "enable_idempotence" not in endpoint.consumer_kwargs()
    assert endpoint.admin_kwargs()["security_protocol"] == "SASL_PLAINTEXT"


def test_plaintext_kwargs_carry_no_sasl_and_respect_idempotence_off() -> None:
    endpoint = KafkaEndpoint("127.0.0.1:9092", KafkaSecurity(), idempotence=False)
    producer = endpoint.producer_kwargs()
    assert producer["enable_idempotence"] is False
    assert producer["security_protocol"] == "PLAINTEXT"
    assert not any(key.startswith("sasl_") for key in producer)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"security_protocol": "TLS"}, "unknown Kafka security protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "needs a SASL mechanism"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "needs a SASL username and password",
        ),
        ({"security_protocol": "SSL", "ssl_cafile": "no/such/ca.pem"}, "does not exist"),
    ],
)
def test_bad_kafka_security_is_a_configuration_error(kwargs: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        KafkaSecurity(**kwargs)  # type: ignore[arg-type]
    assert info.value.next_step


def _start_external(settings: Eng5Settings, tmp_path: Path) -> None:
    """Start the session's external stack as the plugin does (it is checked at once)."""
    with running_stack(session_request(settings, tmp_path, tmp_path, environ={})):
        raise AssertionError("the external stack must not pass its check")


def test_external_stack_names_every_missing_setting_and_needs_no_database(
    tmp_path: Path,
) -> None:
    settings = resolve_settings({"stack": "external"}, {}, {})
    with pytest.raises(ConfigurationError) as info:
        _start_external(settings, tmp_path)
    message = info.value.message
    for flag in ("KAFKA_BOOTSTRAP_SERVERS", "CJ_SERVICE_URL", "CONTENT_SERVICE_URL"):
        assert f"{flag} is not set" in message
    assert "database" not in message.lower(), "the CJ database is optional"


def test_kafka_security_problems_are_reported_with_every_other_problem(tmp_path: Path) -> None:
    cafile = tmp_path / "no-such-ca.pem"
    cli = {"stack": "external", "kafka_ssl_cafile": str(cafile)}
    settings = resolve_settings(cli, {}, {"KAFKA_SECURITY_PROTOCOL": "sasl_ssl"})
    with pytest.raises(ConfigurationError) as info:
        _start_external(settings, tmp_path)
    message = info.value.message
    for problem in (
        "SASL_SSL needs a SASL mechanism, got None",
        "SASL_SSL needs a SASL username and password",
        f"Kafka SSL CA file {cafile} does not exist",
        "KAFKA_BOOTSTRAP_SERVERS is not set",
        "CJ_SERVICE_URL is not set",
        "CONTENT_SERVICE_URL is not set",
    ):
        assert problem in message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "docker"}, "unknown stack kind"),
        ({"start_timeout": 0}, "timeout must be positive"),
        ({"kafka_port": 70000}, "not a TCP port"),
        ({"topic_partitions": 0}, "at least 1"),
    ],
)
def test_bad_stack_settings_are_configuration_errors(
    tmp_path: Path, kwargs: dict[str, object], fragment: str
) -> None:
    settings: dict[str, object] = {"kind": "embedded", "workdir": tmp_path, "log_dir": tmp_path}
    settings.update(kwargs)
    with pytest.raises(ConfigurationError, match=fragment):
        StackConfig(**settings)  # type: ignore[arg-type]


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_listening_port_is_not_free_and_the_error_names_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(ConfigurationError, match=f"port {port} .* already in use") as info:
            require_free_port(port, "the embedded Kafka broker")
        assert "embedded Kafka broker" in info.value.message
        assert info.value.next_step
