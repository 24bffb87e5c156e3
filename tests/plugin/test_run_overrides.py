"""Per-run overrides (markers, variants, hooks, factory keywords) are validated as soon as
they are given: at collection, before any stack, or when the factory is called."""

from __future__ import annotations

import pytest

# A session stack that fails the test if it is ever reached.
NO_STACK = """
import pytest

@pytest.fixture(scope="session")
def eng5_stack():
    raise AssertionError("the stack must not be reached")
"""

# A stack for plan runs without an assignment: they touch no service.
OFFLINE_STACK = """
import pytest
from pytest_eng5.runner import Endpoints

class NoServices:
    is_reference = False

    def endpoints(self):
        return Endpoints(cj_url=None, content_url=None, producer_kwargs={}, consumer_kwargs={})

@pytest.fixture(scope="session")
def eng5_stack():
    return NoServices()
"""


def usage_error(pytester: pytest.Pytester, conftest: str, test_module: str) -> str:
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_module)
    result = pytester.runpytest("-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    return out


@pytest.mark.parametrize(
    ("returned", "fragments"),
    [
        ("{'judge': 'nonsense'}", ["judge='nonsense' (--eng5-judge / ini", "whole session"]),
        ("{'llm_temperature': 9}", ["llm_temperature=9", "less than or equal to 2"]),
        ("{'llm_provider': 'acme'}", ["llm_provider='acme'", "'anthropic'", "'mock'"]),
        ("{'max_comparison': 10}", ["unknown setting(s) 'max_comparison'", "max_comparisons"]),
        ("['max_comparisons', 10]", ["not a mapping of eng5 setting names to values"]),
    ],
)
def test_a_bad_hook_override_is_a_usage_error_before_the_stack(
    pytester: pytest.Pytester, returned: str, fragments: list[str]
) -> None:
    conftest = (
        NO_STACK + f"\ndef pytest_eng5_adjust_settings(settings, node):\n    return {returned}\n"
    )
    out = usage_error(pytester, conftest, "def test_run(eng5_runner):\n    pass\n")
    assert "test_run: a pytest_eng5_adjust_settings hook" in out
    for fragment in fragments:
        assert fragment in out


def test_a_session_setting_in_a_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    out = usage_error(
        pytester,
        NO_STACK,
        """
        import pytest

        @pytest.mark.eng5_run(judge="coin_flip", kafka="apache")
        def test_marked(eng5_runner):
            pass
        """,
    )
    assert "test_marked: eng5_run marker: judge='coin_flip' (--eng5-judge / ini eng5_judge" in out
    assert "kafka='apache' (--eng5-kafka / ini eng5_kafka / env ENG5_KAFKA)" in out


#: every credential: read from the environment only, never overridden by one run
CREDENTIALS = {
    "kafka_sasl_username": "KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "KAFKA_SASL_PASSWORD",
    "service_account_token": "HULEEDU_SERVICE_ACCOUNT_TOKEN",
    "admin_token": "HULEEDU_ADMIN_TOKEN",
    "jwt_secret": "JWT_SECRET_KEY",
}


@pytest.mark.parametrize(("name", "variable"), CREDENTIALS.items())
def test_a_credential_in_a_marker_is_refused_without_its_value(
    pytester: pytest.Pytester, name: str, variable: str
) -> None:
    out = usage_error(
        pytester,
        NO_STACK,
        f"""
        import pytest

        @pytest.mark.eng5_run({name}="hunter2-secret")
        def test_marked(eng5_runner):
            pass
        """,
    )
    assert f"test_marked: eng5_run marker: {name} (environment only: set {variable})" in out
    assert "hunter2" not in out
    assert "--eng5-" + name.replace("_", "-") not in out, "there is no such flag"


def test_a_bad_variant_value_is_a_usage_error_before_the_stack(pytester: pytest.Pytester) -> None:
    out = usage_error(
        pytester,
        NO_STACK,
        """
        import pytest

        @pytest.mark.eng5_variants({"hot": {"llm_temperature": 7.5}, "cold": {}})
        def test_variants(eng5_runner):
            pass
        """,
    )
    assert "eng5_variants variant 'hot': llm_temperature=7.5" in out


def test_every_bad_test_is_named_in_one_usage_error(pytester: pytest.Pytester) -> None:
    out = usage_error(
        pytester,
        NO_STACK,
        """
        import pytest

        @pytest.mark.eng5_run(max_comparisons=1)
        def test_one(eng5_runner):
            pass

        @pytest.mark.eng5_run(batch_uuid="not-a-uuid")
        def test_two(eng5_runner_factory):
            pass
        """,
    )
    assert "test_one: eng5_run marker: max_comparisons=1: 1 is below 2" in out
    assert "test_two: eng5_run marker: batch_uuid='not-a-uuid'" in out


def test_factory_keywords_are_validated_when_given(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest
        from pytest_eng5.settings import SettingsError

        @pytest.mark.parametrize(
            ("overrides", "fragment"),
            [
                ({"judge": "nonsense"}, "judge='nonsense' (--eng5-judge / ini"),
                ({"judge": "coin_flip"}, "ENG5_JUDGE): a setting of the whole"),
                ({"llm_temperature": 3.5}, "llm_temperature=3.5: Input should be less than"),
                ({"language": "fi"}, "language='fi': Input should be 'en' or 'sv'"),
                ({"max_comparison": 40}, "unknown setting(s) 'max_comparison'; the settings"),
                ({"admin_token": "hunter2-x"}, "admin_token (environment only: set HULEEDU_ADMIN"),
                ({"postgres_dsn": "postgresql://hunter2-x@h/db"}, "postgres_dsn (--eng5-postgr"),
            ],
        )
        def test_bad(eng5_runner_factory, overrides, fragment):
            with pytest.raises(SettingsError) as info:
                eng5_runner_factory(**overrides)
            assert str(info.value).startswith("eng5_runner_factory: ")
            assert fragment in str(info.value)
            assert "hunter2" not in str(info.value)

        def test_good(eng5_runner_factory):
            runner = eng5_runner_factory(max_comparisons=40, language="SV")
            assert runner.config.max_comparisons == 40
            assert runner.config.language == "sv"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=8)


def test_hook_overrides_reach_the_run_once_per_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        OFFLINE_STACK
        + """
CALLS = []

def pytest_eng5_adjust_settings(settings, node):
    CALLS.append(node.name)
    return {"max_comparisons": 44}
"""
    )
    pytester.makepyfile(
        """
        from conftest import CALLS

        def test_hooked(eng5_runner_factory):
            first, second = eng5_runner_factory(), eng5_runner_factory(batch_label="b")
            assert first.config.max_comparisons == second.config.max_comparisons == 44
            assert CALLS == ["test_hooked"]
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
