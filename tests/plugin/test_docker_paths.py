"""Without a Docker engine: an explicit testcontainers stack is a usage error, and tests marked
``eng5_needs_docker`` are skipped with the reason."""

from __future__ import annotations

import pytest

from pytest_eng5.stack.docker_engine import docker_engine_available

HAS_DOCKER, REASON = docker_engine_available()
needs_no_docker = pytest.mark.skipif(HAS_DOCKER, reason="a Docker engine answers here")


@needs_no_docker
def test_testcontainers_stack_without_docker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--eng5-stack=testcontainers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--eng5-stack=testcontainers needs a Docker engine*"])


@needs_no_docker
def test_needs_docker_marker_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eng5_needs_docker
        def test_container_only():
            raise AssertionError("must not run without Docker")
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Docker engine*"])
