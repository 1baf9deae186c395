"""Train DFDNet: ``python train.py -opt options/train.yml`` (see docs/training.md)."""
import sys

from dfdnet.cli.train import main

if __name__ == '__main__':
    sys.exit(main())
