"""The R1-R7 acceptance scenarios, shipped with the plugin.

Run them against the embedded stack (or any stack the eng5 options point at) from an installed
wheel: ``pytest --pyargs pytest_eng5.scenarios``. Their shared fixtures are in :mod:`.support`.
"""
