"""What the plugin keeps on ``config.stash``: the session's settings and its finished runs."""

from __future__ import annotations

import pytest

from pytest_eng5.settings import Eng5Settings

SETTINGS_KEY = pytest.StashKey[Eng5Settings]()
RUNS_KEY = pytest.StashKey[list[dict[str, str]]]()


def get_settings(config: pytest.Config) -> Eng5Settings:
    """The session's resolved settings."""
    return config.stash[SETTINGS_KEY]
