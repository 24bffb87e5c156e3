"""The fixtures of the shipped scenarios (defined in :mod:`pytest_eng5.scenarios.support`)."""

from pytest_eng5.scenarios.support import *  # noqa: F403
