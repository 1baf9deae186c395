#!/usr/bin/env python
"""PSNR / SSIM of checkpoints on a training validation set (see docs/default_model.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfdnet.cli.validate import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
