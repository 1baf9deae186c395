"""Errors raised for bad weight, dictionary and cache files (always naming the path)."""


class CheckpointError(RuntimeError):
    """A generator checkpoint is missing, unreadable or does not match the network."""


class DictionaryError(RuntimeError):
    """A component dictionary is missing, unreadable or has the wrong shape."""


class UnreadableFileError(ValueError):
    """A data or cache file is missing, truncated, corrupt or not what its header or record says."""
