#!/usr/bin/env python
"""A grid of input / restored face pairs from restore runs (see docs/default_model.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.cli.make_figure import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
