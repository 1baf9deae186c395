"""Building DFDNet's multi-scale component dictionaries: features of the frozen encoder + K-means."""
