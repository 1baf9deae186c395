"""``python -m dfdnet.app``: the same as ``dfdnet-app``."""
import sys

from dfdnet.app.cli import main

sys.exit(main())
