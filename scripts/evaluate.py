#!/usr/bin/env python
"""Evaluate restored faces (see docs/evaluation.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.cli.evaluate import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
