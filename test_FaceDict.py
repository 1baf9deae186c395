"""Restore every face of whole images with DFDNet (the released command line).

    python test_FaceDict.py --test_path ./TestData/TestWhole --results_dir ./Results/TestWholeResults \
        --upscale_factor 4 --gpu_ids 0
"""
import sys

from dfdnet.cli.restore import main

if __name__ == '__main__':
    sys.exit(main())
