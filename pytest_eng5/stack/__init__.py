"""stack layer of pytest-eng5."""
