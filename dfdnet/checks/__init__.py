"""The one-command device check (``scripts/gpu_check.sh``, ``python -m dfdnet.cli.gpu_check``):
parity, speed, training, DDP, dictionary building and the environment, each a section with
pass/fail checks, written as JSON and Markdown (docs/benchmarks.md, "GPU check")."""
