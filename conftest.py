"""Project-level pytest configuration (the plugin itself is loaded through its entry point)."""

from hypothesis import HealthCheck, settings

collect_ignore = ["bench", "tools"]

# Hypothesis runs on 2-core CI machines next to a live stack: no wall-clock deadlines.
settings.register_profile(
    "eng5", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.load_profile("eng5")
