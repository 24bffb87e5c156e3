"""The suite's own runs keep their evidence under pytest's temporary directory (the project's
conftest.py), so ``./eng5-evidence`` holds only the runs a user made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT_CONFTEST = Path(__file__).resolve().parents[2] / "conftest.py"
SHOW = """
from pytest_eng5.runner import RunConfig

def test_show(eng5_settings, tmp_path_factory):
    print("EVIDENCE=" + str(eng5_settings.evidence_dir))
    print("UNDER_TMP=" + str(eng5_settings.evidence_dir.is_relative_to(
        tmp_path_factory.getbasetemp())))
    cache = RunConfig.from_values(eng5_settings.run_values()).upload_cache_path
    print("CACHE_UNDER=" + str(cache.is_relative_to(eng5_settings.evidence_dir)))
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copy(PROJECT_CONFTEST, pytester.path / "conftest.py")
    (pytester.path / "tests").mkdir()
    pytester.makepyfile(test_show=SHOW)
    return pytester


def test_the_suite_writes_evidence_under_the_temporary_directory(project) -> None:
    result = project.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*UNDER_TMP=True*", "*CACHE_UNDER=True*"])
    assert not (project.path / "eng5-evidence").exists()


def test_the_main_job_writes_to_the_users_evidence_folder(project) -> None:
    project.makepyfile(test_show="import pytest\npytestmark = pytest.mark.eng5_execute\n" + SHOW)
    result = project.runpytest("-s", "-p", "no:cacheprovider", "-m", "eng5_execute")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*EVIDENCE=eng5-evidence*", "*UNDER_TMP=False*"])


def test_an_explicit_evidence_folder_is_kept(project) -> None:
    result = project.runpytest("-s", "-p", "no:cacheprovider", "--eng5-evidence-dir=mine")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*EVIDENCE=mine*", "*UNDER_TMP=False*"])


def test_runs_of_a_marked_test_write_under_the_temporary_directory_too(project) -> None:
    """Overrides are checked at collection, before the session fixture moves the evidence:
    they must not bring back the default ``./eng5-evidence``."""
    project.makepyfile(
        test_show="""
import pytest

@pytest.mark.eng5_run(max_comparisons=40)
def test_show(eng5_runner_factory, tmp_path_factory):
    settings = eng5_runner_factory(completion_timeout=30).settings
    print("MAX=" + str(settings.max_comparisons))
    print("UNDER_TMP=" + str(settings.evidence_dir.is_relative_to(tmp_path_factory.getbasetemp())))
"""
    )
    result = project.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*MAX=40*", "*UNDER_TMP=True*"])


VARIANT_RUNS = """
import pytest
from pytest_eng5.runner import Endpoints

class NoServices:
    def endpoints(self):
        return Endpoints(cj_url=None, content_url=None, producer_kwargs={}, consumer_kwargs={})

@pytest.mark.eng5_variants({"a": {}, "b": {"max_comparisons": 30}}, experiment="ex")
def test_show(eng5_stack_runner_factory, tmp_path_factory, request):
    config = eng5_stack_runner_factory(NoServices()).config
    base = tmp_path_factory.getbasetemp()
    print("EVIDENCE_UNDER_TMP=" + str(config.evidence_dir.is_relative_to(base)))
    print("CACHE_UNDER_TMP=" + str(config.upload_cache_path.is_relative_to(base)))
    # where a run would leave its evidence, recorded as the runner records a run
    config.evidence_dir.mkdir(parents=True)
    request.node.user_properties.extend(
        [("eng5_mode", "plan"), ("eng5_evidence", str(config.evidence_dir))]
    )
    request.node.user_properties.append(("cache", str(config.upload_cache_path)))
"""


def test_variant_runs_write_under_the_temporary_directory_too(project) -> None:
    """A variant's evidence folder and the shared upload cache come from the settings the run
    starts with, not from those of collection time (before the evidence moved); the session's
    comparison report looks for the variant runs where they went."""
    project.makepyfile(test_show=VARIANT_RUNS)
    result = project.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert out.count("EVIDENCE_UNDER_TMP=True") == 2
    assert out.count("CACHE_UNDER_TMP=True") == 2
    # the empty folders are found (and are no comparison): the report read the moved root
    result.stdout.fnmatch_lines(["*no comparison report: no variant runs in*ex*a*r1*"])
    assert not (project.path / "eng5-evidence").exists()


def test_under_xdist_the_comparison_report_reads_where_the_workers_wrote(project) -> None:
    """The controlling process runs no session fixture: it names one evidence folder under
    its temporary directory for itself and every worker, so its comparison report finds the
    variant runs; each worker keeps its own upload cache (its own stack)."""
    project.makepyfile(test_show=VARIANT_RUNS)
    result = project.runpytest("-p", "no:cacheprovider", "-n", "1", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    # the folder from the inner session's tmp_path_factory (the default has no number)
    result.stdout.fnmatch_lines(
        ["*no comparison report: no variant runs in /*/eng5-evidence0/experiments/ex/a/r1*"]
    )
    assert not (project.path / "eng5-evidence").exists()
    junit = (project.path / "junit.xml").read_text()
    assert "eng5-evidence0/content_upload_cache.gw0.json" in junit
