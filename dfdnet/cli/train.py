"""``python train.py -opt options/train.yml [--auto_resume] [--launcher pytorch] [--set key=value ...]``

Trains DFDNet as configured in one YAML file; outputs go to experiments/<name>/. Multi-GPU:
``torchrun --nproc_per_node=N train.py -opt options/train.yml --launcher pytorch``.
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', '--opt', required=True, help='path to the options YAML file')
    parser.add_argument('--launcher', choices=('none', 'pytorch'), default='none',
                        help="'pytorch' under torchrun (DDP: NCCL on GPUs, gloo on CPU)")
    parser.add_argument('--auto_resume', action='store_true',
                        help='continue from the latest state in experiments/<name>/training_states')
    parser.add_argument('--resume_state', default=None, help='continue from this training state file')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override an option, e.g. --set train.total_iter=10 (value parsed as YAML); repeatable')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from dfdnet.models.options import OptionsError, parse_options  # torch: after the arguments (instant --help)

    try:
        options, resolved = parse_options(args.opt, args.overrides)
    except OptionsError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    from dfdnet.errors import CheckpointError, DictionaryError, UnreadableFileError
    from dfdnet.models.trainer import Trainer  # heavy imports after the options are known to be valid
    from dfdnet.utils.run_lock import FolderLockedError
    from dfdnet.utils.text import printable

    command = [sys.executable, *sys.argv] if argv is None else ['train.py', *argv]
    try:  # paths and options are checked before experiments/<name> is touched
        trainer = Trainer(options, resolved, command, launcher=args.launcher, auto_resume=args.auto_resume,
                          resume_state=args.resume_state)
    except (OptionsError, FolderLockedError, CheckpointError, DictionaryError, UnreadableFileError,
            FileNotFoundError) as exc:
        print(f'error: {printable(exc)}', file=sys.stderr)
        return 2
    try:
        trainer.run()
    finally:
        trainer.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
