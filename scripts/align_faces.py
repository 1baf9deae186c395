#!/usr/bin/env python
"""Cut aligned faces out of in-the-wild photos (see docs/default_model.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.cli.align_faces import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
