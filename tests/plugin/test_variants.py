"""The eng5_variants marker: one test per variant and repeat, each with its settings and its own
evidence folder; bad markers are usage errors that say what to write (pytester, no stack)."""

from __future__ import annotations

import pytest

SHOW_VARIANT = """
    import pytest

    pytestmark = pytest.mark.eng5_variants(
        {"baseline": {}, "warm": {"llm_temperature": 1.0, "max_comparisons": 30}},
        baseline="baseline",
    )

    def test_alignment(eng5_variant, eng5_settings):
        settings = eng5_variant.settings_overrides()
        print(
            "VARIANT", eng5_variant.experiment, eng5_variant.variant, eng5_variant.repeat,
            eng5_variant.baseline, settings.get("llm_temperature"),
            eng5_variant.evidence_folder(eng5_settings).relative_to(
                eng5_settings.evidence_dir).as_posix(),
            "evidence_dir" not in settings and "cache_file" not in settings,
        )
"""


def test_each_variant_and_repeat_is_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_prompts=SHOW_VARIANT)
    result = pytester.runpytest("--collect-only", "-q", "--eng5-repeat", "2")
    result.stdout.fnmatch_lines(
        [
            "test_prompts.py::test_alignment[baseline-r1]",
            "test_prompts.py::test_alignment[baseline-r2]",
            "test_prompts.py::test_alignment[warm-r1]",
            "test_prompts.py::test_alignment[warm-r2]",
        ]
    )
    result = pytester.runpytest("-s", "-q")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*VARIANT prompts.alignment baseline 1 baseline None "
            "experiments/prompts.alignment/baseline/r1 True",
            "*VARIANT prompts.alignment warm 1 baseline 1.0 "
            "experiments/prompts.alignment/warm/r1 True",
        ]
    )


def test_variant_settings_reach_the_runner_factory(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def eng5_stack():  # a stand-in: the test only reads the runner's settings
            class Stack:
                def endpoints(self):
                    from pytest_eng5.runner.orchestrator import Endpoints
                    return Endpoints(None, None, {}, {})
            return Stack()
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eng5_run(max_comparisons=20, llm_temperature=0.5)
        @pytest.mark.eng5_variants({"cold": {"llm_temperature": 0.0}, "hot": {}},
                                   experiment="temps")
        def test_settings(eng5_runner):
            s = eng5_runner.settings
            print("SETTINGS", s.variant, s.variant_repeat, s.experiment, s.baseline,
                  s.llm_temperature, s.max_comparisons, s.evidence_dir.as_posix())
        """
    )
    result = pytester.runpytest("-s", "-q", "--eng5-evidence-dir", "ev")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*SETTINGS cold 1 temps cold 0.0 20 ev/experiments/temps/cold/r1",
            "*SETTINGS hot 1 temps cold 0.5 20 ev/experiments/temps/hot/r1",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('{"a": {"llm_temprature": 1.0}, "b": {}}', "unknown setting(s) llm_temprature"),
        ('{"a": {"judge": "coin_flip"}, "b": {}}', "sets judge (--eng5-judge / ini eng5_judge"),
        ('{"a": {"admin_token": "x"}, "b": {}}', "admin_token (environment only: set HULEEDU_ADM"),
        ('{"a": {"evidence_dir": "x"}, "b": {}}', "evidence_dir, which eng5_variants sets itself"),
        ('{"only": {}}', "at least two variants"),
        ('{"a b": {}, "c": {}}', "'a b' is not a readable id"),
        ('{"a": {}, "b": {}}, baseline="c"', "baseline 'c' is not one of the variants"),
        ('{"a": 1.0, "b": {}}', "needs a mapping of eng5 settings"),
        ('"a", "b"', "takes one mapping of variant id -> settings"),
    ],
)
def test_bad_markers_are_usage_errors(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.eng5_variants({marker})
        def test_x(eng5_variant):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_a_marked_test_without_the_runner_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eng5_variants({"a": {}, "b": {}})
        def test_x():
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eng5_variants needs the eng5_runner or eng5_runner_factory*"])


def test_repeat_and_variant_ids_are_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--eng5-repeat", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--eng5-repeat*"])
    result = pytester.runpytest("--eng5-variant", "no spaces")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--eng5-variant*"])
