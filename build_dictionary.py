"""Build DFDNet component dictionaries: ``python build_dictionary.py -opt options/build_dictionary.yml``."""
import sys

from dfdnet.cli.build_dictionary import main

if __name__ == '__main__':
    sys.exit(main())
