"""The plugin as users meet it: options, ini keys, precedence, markers, hooks (pytester)."""

from __future__ import annotations

import pytest

SHOW_SETTINGS = """
    def test_show(eng5_settings):
        print("STACK=" + eng5_settings.stack)
        print("LABEL=" + eng5_settings.batch_label)
        print("MAXC=" + str(eng5_settings.max_comparisons))
"""


def test_help_lists_the_eng5_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*ENG5 comparative-judgement runs*", "*--eng5-stack=CHOICE*"])
    result.stdout.fnmatch_lines(["*--eng5-force-reupload*", "*--eng5-auto-extract-db*"])


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.eng5_execute:*", "@pytest.mark.eng5_run(*"])


def test_strict_markers_accepts_eng5_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eng5_scenario("R1")
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_option_from_cli(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s", "--eng5-batch-label=from-cli", "--eng5-max-comparisons=7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LABEL=from-cli*", "*MAXC=7*"])


def test_option_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\neng5_batch_label = from-ini\neng5_max_comparisons = 9\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*LABEL=from-ini*", "*MAXC=9*"])


def test_cli_beats_env_beats_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\neng5_stack = testcontainers\n")
    pytester.makepyfile(SHOW_SETTINGS)
    monkeypatch.setenv("ENG5_STACK", "external")
    result = pytester.runpytest_subprocess("-s")
    result.stdout.fnmatch_lines(["*STACK=external*"])
    result = pytester.runpytest_subprocess("-s", "--eng5-stack=embedded")
    result.stdout.fnmatch_lines(["*STACK=embedded*"])


def test_bad_value_is_a_usage_error_listing_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("--eng5-stack=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*embedded, testcontainers, external*"])


def test_bad_combination_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("--eng5-auto-extract-db", "--eng5-no-kafka")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*auto_extract_db is not allowed with no_kafka*"])


OFFLINE_STACK = """
    import pytest
    from pytest_eng5.runner import Endpoints

    class NoServices:
        is_reference = False

        def endpoints(self):
            return Endpoints(cj_url=None, content_url=None, producer_kwargs={},
                             consumer_kwargs={})

    @pytest.fixture(scope="session")
    def eng5_stack():
        # plan without an assignment touches no service: no stack needed
        return NoServices()

    def pytest_eng5_adjust_settings(settings, node):
        if node.get_closest_marker("relabel"):
            return {"batch_label": "relabelled-by-hook"}
        return None

    def pytest_eng5_run_finished(result):
        print(f"FINISHED {result.mode} {result.outcome} {result.identity.batch_label} "
              f"students={result.students}")
"""


def test_hooks_and_markers_configure_a_plan_run(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    relabel: test marker\n")
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.relabel
        def test_hook_label(eng5_runner):
            result = eng5_runner.plan()
            assert result.identity.batch_label == "relabelled-by-hook"

        @pytest.mark.eng5_run(batch_label="from-marker", max_comparisons=40)
        def test_marker_label(eng5_runner):
            result = eng5_runner.plan()
            assert result.identity.batch_label == "from-marker"
            assert result.capacity.max_comparisons == 40
        """
    )
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*FINISHED plan planned relabelled-by-hook students=24*",
            "*FINISHED plan planned from-marker students=24*",
        ]
    )


def test_unknown_marker_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eng5_run(max_comparison=10)
        def test_typo(eng5_runner):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_typo*unknown setting(s) 'max_comparison'*"])


def test_capacity_failure_before_any_network_call(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest
        from pytest_eng5.errors import CapacityError

        @pytest.mark.eng5_run(max_comparisons=10)
        def test_r1(eng5_runner):
            with pytest.raises(CapacityError) as info:
                eng5_runner.plan()
            assert "cannot connect 36 essays" in str(info.value)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_run_properties_reach_junit(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        def test_plan(eng5_runner):
            eng5_runner.plan()
        """
    )
    xml = pytester.path / "junit.xml"
    pytester.runpytest(f"--junitxml={xml}").assert_outcomes(passed=1)
    text = xml.read_text()
    assert 'name="eng5_batch_uuid"' in text
    assert 'name="eng5_outcome" value="planned"' in text


def test_expect_marker_turns_an_expected_error_into_a_result(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest
        from pytest_eng5.errors import CapacityError, InventoryError

        @pytest.mark.eng5_expect(error=CapacityError)
        @pytest.mark.eng5_run(max_comparisons=10)
        def test_expected_error(eng5_runner):
            result = eng5_runner.plan()
            assert result.outcome == "rejected"

        @pytest.mark.eng5_expect(error=InventoryError)
        @pytest.mark.eng5_run(max_comparisons=10)
        def test_other_error_fails(eng5_runner):
            eng5_runner.plan()

        @pytest.mark.eng5_expect(outcome="planned")
        def test_expected_outcome(eng5_runner):
            eng5_runner.plan()

        @pytest.mark.eng5_expect(outcome="completed")
        def test_wrong_outcome_fails(eng5_runner):
            eng5_runner.plan()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*expected InventoryError from a started run, got CapacityError*",
            "*expected outcome 'completed', got 'planned'*",
        ]
    )


def test_the_async_face_records_runs_hooks_and_expectations(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_aio_plan(eng5_runner):
            result = await eng5_runner.aio.plan()
            assert result.outcome == "planned"

        @pytest.mark.asyncio
        @pytest.mark.eng5_expect(outcome="completed")
        async def test_aio_wrong_outcome_fails(eng5_runner):
            await eng5_runner.aio.plan()
        """
    )
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest("-s", f"--junitxml={xml}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FINISHED plan planned eng5-np-local-batch students=24*",
            "*expected outcome 'completed', got 'planned'*",
        ]
    )
    assert xml.read_text().count('name="eng5_outcome" value="planned"') == 2


def test_an_eng5_error_fails_a_test_in_a_few_lines(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OFFLINE_STACK)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eng5_run(assignment_id="an-assignment")
        def test_r1(eng5_runner):
            eng5_runner.plan()  # the CJ preflight needs a CJ URL this stack does not have
        """
    )
    short = pytester.runpytest()
    short.assert_outcomes(failed=1)
    text = short.stdout.str()
    failure = text[text.index("_ test_r1 _") : text.index("Captured stdout call")]
    assert "ConfigurationError [configuration]: no CJ service URL" in failure
    assert "next step: set --eng5-cj-url" in failure
    assert "--tb=long prints it here" in failure
    assert "steps.py" not in failure, "no traceback by default"
    assert len(failure.strip().splitlines()) <= 8

    long = pytester.runpytest("--tb=long")
    long.assert_outcomes(failed=1)
    assert "steps.py" in long.stdout.str(), "--tb=long shows the whole traceback"


def test_the_reattach_command_does_not_show_a_dsn_given_on_the_command_line(
    pytester: pytest.Pytester,
) -> None:
    """The terminal summary repeats the session's arguments to re-attach an interrupted batch;
    a DSN is a secret there too."""
    from pytest_eng5.summary import reattach_command

    dsn = "postgresql://cj:reattach-pw-7@db.example/cj?sslmode=require"
    config = pytester.parseconfigure("--eng5-stack=external", f"--eng5-postgres-dsn={dsn}")
    command = reattach_command(config, "test_x.py::test_run", "a-batch")
    assert "reattach-pw-7" not in command
    assert command.startswith("pytest --eng5-stack=external '--eng5-postgres-dsn=***REDACTED***'")
    assert command.endswith("test_x.py::test_run --eng5-batch-uuid=a-batch")
