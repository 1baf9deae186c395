"""Command-line entry points (the top-level scripts call these)."""
