"""Settings: one resolution function, CLI > env > ini > default, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pytest_eng5.errors import ConfigurationError
from pytest_eng5.runner.config import RunConfig
from pytest_eng5.sample_data import SAMPLE_ASSETS
from pytest_eng5.settings import OPTIONS, OptionSpec, SettingsError
from pytest_eng5.settings_sources import _convert, credentials_env, resolve_settings


def test_defaults() -> None:
    settings = resolve_settings({}, {}, {})
    assert settings.stack == "embedded"
    assert settings.assets == SAMPLE_ASSETS
    config = RunConfig.from_values(settings.run_values())
    assert config.await_completion
    assert config.upload_cache_path == Path("eng5-evidence/content_upload_cache.json")
    assert not hasattr(settings, "upload_cache_path"), "the runner's RunConfig derives it, once"


def test_precedence_cli_env_ini_default() -> None:
    env = {"CJ_SERVICE_URL": "http://env:1"}
    ext = {"stack": "external"}
    assert resolve_settings(ext, {}, {}).cj_url is None
    assert resolve_settings(ext, {"cj_url": "http://ini:1"}, {}).cj_url == "http://ini:1"
    assert resolve_settings(ext, {"cj_url": "http://ini:1"}, env).cj_url == "http://env:1"
    cli = {**ext, "cj_url": "http://cli:1"}
    assert resolve_settings(cli, {"cj_url": "http://ini:1"}, env).cj_url == "http://cli:1"


def test_blank_values_count_as_not_given() -> None:
    assert resolve_settings({"batch_label": ""}, {"batch_label": "  "}, {}).batch_label == (
        "eng5-np-local-batch"
    )


def test_bad_choice_lists_valid_values() -> None:
    with pytest.raises(SettingsError) as info:
        resolve_settings({"stack": "docker"}, {}, {})
    assert "embedded, testcontainers, external" in str(info.value)
    assert "--eng5-stack" in str(info.value)


def test_a_numeric_choice_given_as_text_is_the_number() -> None:
    assert resolve_settings({"kafka_brokers": "1"}, {}, {}).kafka_brokers == 1
    assert resolve_settings({}, {"kafka_brokers": "3"}, {}).kafka_brokers == 3
    with pytest.raises(SettingsError, match="1, 3"):
        resolve_settings({"kafka_brokers": "2"}, {}, {})


def test_bad_number_names_the_option() -> None:
    with pytest.raises(SettingsError, match="--eng5-max-comparisons"):
        resolve_settings({}, {"max_comparisons": "many"}, {})


def test_range_violation_names_the_option() -> None:
    with pytest.raises(SettingsError, match="--eng5-llm-temperature"):
        resolve_settings({"llm_temperature": "3.5"}, {}, {})


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"auto_extract_db": True, "no_await": True}, "requires awaiting"),
        ({"auto_extract_db": True, "no_kafka": True}, "not allowed with no_kafka"),
    ],
)
def test_r5_flag_combinations_are_usage_errors(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        resolve_settings(values, {}, {})


def test_every_option_has_cli_and_ini_names() -> None:
    names = [spec.name for spec in OPTIONS]
    assert len(names) == len(set(names))
    for spec in OPTIONS:
        assert spec.cli_flag.startswith("--eng5-")
        assert spec.ini_key.startswith("eng5_")
        if spec.type == "choice":
            assert spec.choices


def test_merged_revalidates() -> None:
    settings = resolve_settings({}, {}, {})
    assert settings.merged(max_comparisons=40).max_comparisons == 40
    with pytest.raises(SettingsError, match="batch_label"):
        settings.merged(batch_label="   ")


def test_every_runner_field_is_fed_by_exactly_one_declared_setting() -> None:
    targets = [spec.run for spec in OPTIONS if spec.run is not None]
    assert len(targets) == len(set(targets)), "two settings feed one RunConfig field"
    assert set(targets) == set(RunConfig.field_paths())


def test_run_config_comes_from_the_declared_targets(tmp_path: Path) -> None:
    settings = resolve_settings(
        {"llm_model": "gpt-x", "min_ssr": "0.7", "llm_batching_mode": "serial_bundle"}, {}, {}
    )
    config = RunConfig.from_values(settings.run_values())
    assert config.llm.model == "gpt-x"
    assert config.llm.batching_mode == "serial_bundle"
    assert config.gates.min_ssr == 0.7
    assert config.assets == SAMPLE_ASSETS


def test_an_unknown_run_config_key_is_an_error_naming_it_and_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        RunConfig.from_values({"assets": SAMPLE_ASSETS, "max_comparison": 10, "llm_model": "x"})
    message = str(info.value)
    assert "'llm_model', 'max_comparison'" in message
    assert "max_comparisons" in message
    assert "llm.model" in message


CREDENTIALS = {
    "KAFKA_SASL_PASSWORD": "kafka_sasl_password",
    "HULEEDU_SERVICE_ACCOUNT_TOKEN": "service_account_token",
    "HULEEDU_ADMIN_TOKEN": "admin_token",
    "JWT_SECRET_KEY": "jwt_secret",
}


@pytest.mark.parametrize(("variable", "name"), CREDENTIALS.items())
def test_credentials_are_typed_secrets_read_only_from_the_environment(
    variable: str, name: str
) -> None:
    spec = next(spec for spec in OPTIONS if spec.name == name)
    assert spec.secret
    assert spec.env_only
    assert spec.env == (variable,)
    external = {"stack": "external"}
    ignored = resolve_settings({**external, name: "from-argv-1"}, {name: "from-ini-1"}, {})
    assert getattr(ignored, name) is None, "a credential is never taken from argv or an ini file"
    settings = resolve_settings(external, {}, {variable: "from-env-secret-1"})
    value = getattr(settings, name)
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == "from-env-secret-1"
    assert "from-env-secret-1" not in repr(settings) + str(settings.model_dump())
    assert getattr(resolve_settings({}, {}, {variable: "x-1234"}), name) is None, "external only"


def test_tokens_reach_the_runner_as_secrets() -> None:
    env = {"HULEEDU_ADMIN_TOKEN": "admin-token-value-1", "JWT_SECRET_KEY": "jwt-secret-value-1"}
    settings = resolve_settings({"stack": "external"}, {}, env)
    config = RunConfig.from_values(settings.run_values())
    assert isinstance(config.admin_token, SecretStr)
    assert "admin-token-value-1" not in repr(config) + config.model_dump_json()
    assert config.credentials_env() == env


def test_a_bad_value_of_an_env_only_setting_names_its_variable_not_a_flag() -> None:
    spec = OptionSpec(
        "token_ttl", "int", None, "token lifetime", ("ENG5_TOKEN_TTL",), env_only=True
    )
    with pytest.raises(SettingsError) as info:
        _convert(spec, "soon", "env ENG5_TOKEN_TTL")
    assert "ENG5_TOKEN_TTL" in info.value.next_step
    assert "--eng5" not in str(info.value)


def test_the_reference_services_jwt_secret_is_a_declared_env_only_secret() -> None:
    spec = next(spec for spec in OPTIONS if spec.env == ("ENG5_REFERENCE_JWT_SECRET",))
    assert spec.secret
    assert spec.env_only
    assert not spec.per_run
    assert spec.stacks == ("embedded", "testcontainers")
    env = {"ENG5_REFERENCE_JWT_SECRET": "reference-secret-1"}
    value = getattr(resolve_settings({spec.name: "from-argv-1"}, {}, env), spec.name)
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == "reference-secret-1"
    from pytest_eng5.stack_requests import session_request

    request = session_request(resolve_settings({}, {}, env), Path("work"), Path("logs"))
    assert request.services is not None
    assert request.services.jwt_secret == value, "the reference services get it"


def test_the_stack_cli_takes_only_the_credentials_from_the_environment() -> None:
    env = {"ENG5_REFERENCE_JWT_SECRET": "s-1", "ENG5_STACK": "external", "KAFKA_SASL_USERNAME": "u"}
    assert credentials_env(env) == {"ENG5_REFERENCE_JWT_SECRET": "s-1", "KAFKA_SASL_USERNAME": "u"}
