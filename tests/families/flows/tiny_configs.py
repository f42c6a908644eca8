"""Smallest flows for the registry walk (tests/test_registry.py)."""

TINY = {
    "realnvp": {"steps_per_level": 1, "hidden_channels": 8},
    "glow": {"steps_per_level": 2, "hidden_channels": 8},
}
