"""Project-level pytest configuration (the plugin itself is loaded through its entry point)."""

collect_ignore = ["bench", "tools"]

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a runtime-only install (no dev extras) can still run the main job
    pass
else:
    # Hypothesis runs on 2-core CI machines next to a live stack: no wall-clock deadlines.
    settings.register_profile(
        "eng5", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
    )
    settings.load_profile("eng5")
