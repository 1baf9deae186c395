"""``python -m dfdnet.cli.export_model`` / ``dfdnet-export-model``: write a trained generator and its
dictionaries as a model folder (``dfdnet.models.export``), or with ``--format onnx|openvino`` as one
graph with the dictionaries inside (``dfdnet.archs.onnx_export``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Write a trained generator and its dictionaries as a model folder.')
    parser.add_argument('--checkpoint', required=True, type=Path, help='trained generator (e.g. net_g_ema_<iter>.pth)')
    parser.add_argument('--dict_dir', required=True, type=Path, help='its dictionary folder (*_center.npy)')
    parser.add_argument('--output', type=Path, default=None,
                        help='model folder to write (default dfdnet/pretrained/default; required with --format onnx/openvino)')
    parser.add_argument('--format', choices=('folder', 'onnx', 'openvino'), default='folder',
                        help="folder (default): this project's model folder; onnx: OUTPUT/model.onnx, inputs images "
                             "(B, 3, 512, 512) and boxes (B, 4, 4), dictionaries inside; openvino: also "
                             "OUTPUT/model.xml + model.bin. Released, BasicSR and own checkpoints")
    parser.add_argument('--no_check', action='store_true',
                        help='with --format onnx/openvino: skip running the written model beside the torch forward')
    parser.add_argument('--description', default='', help='one line saying what the model is')
    parser.add_argument('--experiments', nargs='*', type=Path, default=[],
                        help='training run folders (experiments/<name>) whose command lines, options and '
                             'validation results are recorded in model.json')
    parser.add_argument('--weights', choices=('float16', 'int8'), default='float16',
                        help='how net_g.pth stores the weights: float16, or int8 with one float32 scale per '
                             'output channel (a quarter of float32; model.json records the output difference)')
    parser.add_argument('--sharp_checkpoint', type=Path, default=None,
                        help='an adversarial fine-tune of --checkpoint: the modules it changed go to net_g_sharp.pth, '
                             'for --fidelity (network interpolation)')
    parser.add_argument('--default_fidelity', default='1',
                        help="the fidelity restoring uses when none is given (with --sharp_checkpoint): a number in "
                             "[0, 1], or auto (each face its own; an ONNX/OpenVINO graph needs a number)")
    parser.add_argument('--auto_fidelity_lowest', type=float, default=0.0,
                        help='with --default_fidelity auto: the fidelity of the most degraded faces')
    parser.add_argument('--inherit_provenance', type=Path, default=None, metavar='MODEL_JSON',
                        help="the model.json of the model this one was fine-tuned from: its runs are recorded first")
    args = parser.parse_args(argv)
    if args.default_fidelity != 'auto':
        try:
            args.default_fidelity = float(args.default_fidelity)
        except ValueError:
            parser.error(f'--default_fidelity: expected a number in [0, 1] or auto, got {args.default_fidelity!r}')
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if args.format != 'folder':
        if args.output is None:
            parser.error(f'--format {args.format} needs --output DIR')
        return _export_runtime(args)
    args.output = args.output or Path('dfdnet/pretrained/default')
    from dfdnet.archs.fidelity import AutoFidelity  # torch: after the arguments
    from dfdnet.models.export import experiment_record, export_model
    provenance = {}
    if args.inherit_provenance:
        provenance = dict(json.loads(args.inherit_provenance.read_text()).get('provenance', {}))
    provenance.update({folder.name: experiment_record(folder) for folder in args.experiments})
    export_model(args.checkpoint, args.dict_dir, args.output, args.description, provenance, weights=args.weights,
                 sharp_checkpoint=args.sharp_checkpoint, default_fidelity=args.default_fidelity,
                 auto_fidelity=AutoFidelity(lowest=args.auto_fidelity_lowest))
    return 0


def _export_runtime(args) -> int:
    from dfdnet.archs.onnx_export import export_runtime  # torch: after the arguments

    if args.sharp_checkpoint and args.default_fidelity == 'auto':
        print('error: an exported graph runs one fidelity: give --default_fidelity a number in [0, 1]', file=sys.stderr)
        return 2
    fidelity = dict(sharp_checkpoint=args.sharp_checkpoint, fidelity=args.default_fidelity) if args.sharp_checkpoint else {}
    try:
        report = export_runtime(args.checkpoint, args.dict_dir, args.output, args.format, check=not args.no_check, **fidelity)
    except ImportError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    for runtime in ('onnxruntime', 'openvino'):
        if runtime in report:
            print(f"{runtime} against torch (fp32, 3 faces, different boxes): max {report[runtime]['max_255']:.2g}/255, "
                  f"mean {report[runtime]['mean_255']:.2g}/255")
    print('wrote', ', '.join(report['files'].values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
