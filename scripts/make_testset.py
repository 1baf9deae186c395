#!/usr/bin/env python
"""Make a paired synthetic test set (see docs/evaluation.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.cli.make_testset import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
