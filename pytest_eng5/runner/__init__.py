"""runner layer of pytest-eng5."""
