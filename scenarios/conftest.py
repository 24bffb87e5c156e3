"""The project's other scenarios share the fixtures of the shipped R1-R7 scenarios."""

from pytest_eng5.scenarios.support import *  # noqa: F403
