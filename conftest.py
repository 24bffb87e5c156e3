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


#: the ``workerinput`` key naming the suite's evidence folder, the same for every xdist worker
SUITE_EVIDENCE_INPUT = "eng5_suite_evidence_dir"
_SHARED_EVIDENCE = pytest.StashKey[Path]()


def _keeps_evidence_where_given(config):  # type: ignore[no-untyped-def]
    given = config.getoption("eng5_evidence_dir") or config.getini("eng5_evidence_dir")
    return config.getoption("markexpr") == "eng5_execute" or bool(given)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # type: ignore[no-untyped-def]
    """Under xdist the controlling process writes the comparison report of variant runs, and
    it runs no session fixture: it makes the suite's evidence folder under its own temporary
    directory, reads it from then on, and has every worker write there."""
    from pytest_eng5.stash import SETTINGS_KEY

    config = node.config
    if _keeps_evidence_where_given(config):
        return
    if _SHARED_EVIDENCE not in config.stash:  # the first worker
        # pytest's own TempPathFactory, from which xdist names the workers' base temps too
        evidence = config._tmp_path_factory.mktemp("eng5-evidence")
        config.stash[_SHARED_EVIDENCE] = evidence
        config.stash[SETTINGS_KEY] = config.stash[SETTINGS_KEY].merged(evidence_dir=evidence)
    node.workerinput[SUITE_EVIDENCE_INPUT] = str(config.stash[_SHARED_EVIDENCE])


@pytest.fixture(scope="session", autouse=True)
def _suite_evidence_under_tmp(pytestconfig, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The suite's own runs keep their evidence under pytest's temporary directory, so that
    ``./eng5-evidence`` holds only runs the user made: the main job (``-m eng5_execute``) and
    any session given ``--eng5-evidence-dir`` / ``eng5_evidence_dir`` write where they say.

    An xdist worker writes in the folder its controlling process named (the comparison report
    looks there), with its own upload cache: the cache is bound to one Content Service, and
    every worker has its own stack."""
    from pytest_eng5.stash import SETTINGS_KEY

    if _keeps_evidence_where_given(pytestconfig):
        return
    settings = pytestconfig.stash[SETTINGS_KEY]
    workerinput = getattr(pytestconfig, "workerinput", {})
    shared = workerinput.get(SUITE_EVIDENCE_INPUT)
    if shared is None:
        evidence = tmp_path_factory.mktemp("eng5-evidence")
        pytestconfig.stash[SETTINGS_KEY] = settings.merged(evidence_dir=evidence)
        return
    evidence = Path(shared)
    cache = settings.cache_file or evidence / f"content_upload_cache.{workerinput['workerid']}.json"
    pytestconfig.stash[SETTINGS_KEY] = settings.merged(evidence_dir=evidence, cache_file=cache)
