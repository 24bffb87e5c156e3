"""``python -m pytest_eng5.stack``: see :mod:`pytest_eng5.stack_cli` (the one upward import)."""

from pytest_eng5.stack_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
