#!/usr/bin/env python
"""Export a trained generator and its dictionaries as a compact model folder (see docs/default_model.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.cli.export_model import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
