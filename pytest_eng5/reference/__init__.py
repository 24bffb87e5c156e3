"""reference layer of pytest-eng5."""
