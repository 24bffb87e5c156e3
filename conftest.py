"""Project-level pytest configuration (the plugin itself is loaded through its entry point)."""

from pathlib import Path

import pytest

# The runner's maths (numpy, scipy) load here, once: pytester's in-process runs drop the modules
# first imported inside them, and numpy cannot be imported a second time in one process. The
# stack no longer pulls the runner in, so nothing else loads them before the first such run.
import pytest_eng5.runner.orchestrator  # noqa: F401

collect_ignore = ["bench", "tools"]
TESTS_DIR = Path(__file__).parent / "tests"
SHIPPED_SCENARIOS = Path(__file__).parent / "pytest_eng5" / "scenarios"

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a runtime-only install (no dev extras) can still run the main job
    pass
else:
    # Hypothesis runs on 2-core CI machines next to a live stack: no wall-clock deadlines.
    settings.register_profile(
        "eng5", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
    )
    settings.load_profile("eng5")


def pytest_ignore_collect(collection_path, config):  # type: ignore[no-untyped-def]
    """The main job (``-m eng5_execute``) has all its tests in scenarios/, so it skips importing
    the package's own tests and the shipped R1-R7 scenarios (tests/unit/test_markers.py keeps
    that true)."""
    # both are initial paths (testpaths), so their children are what can be skipped
    if config.getoption("markexpr") != "eng5_execute":
        return None
    if any(folder in collection_path.parents for folder in (TESTS_DIR, SHIPPED_SCENARIOS)):
        return True
    return None


@pytest.fixture(scope="session", autouse=True)
def _suite_evidence_under_tmp(pytestconfig, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The suite's own runs keep their evidence under pytest's temporary directory, so that
    ``./eng5-evidence`` holds only runs the user made: the main job (``-m eng5_execute``) and
    any session given ``--eng5-evidence-dir`` / ``eng5_evidence_dir`` write where they say."""
    from pytest_eng5.stash import SETTINGS_KEY

    given = pytestconfig.getoption("eng5_evidence_dir") or pytestconfig.getini("eng5_evidence_dir")
    if pytestconfig.getoption("markexpr") == "eng5_execute" or given:
        return
    settings = pytestconfig.stash[SETTINGS_KEY]
    evidence = tmp_path_factory.mktemp("eng5-evidence")
    pytestconfig.stash[SETTINGS_KEY] = settings.merged(evidence_dir=evidence)
