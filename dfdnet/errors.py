"""Errors raised for bad weight and dictionary files (always naming the path)."""


class CheckpointError(RuntimeError):
    """A generator checkpoint is missing, unreadable or does not match the network."""


class DictionaryError(RuntimeError):
    """A component dictionary is missing, unreadable or has the wrong shape."""
