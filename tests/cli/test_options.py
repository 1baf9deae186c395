"""Each command's options are declared once (an options dataclass; the parser is made from it), the
flags are spelled with underscores, the old spellings still parse, and --device is one rule."""
import argparse
import logging

import pytest

from dfdnet.utils.device import check_device, select_device
from dfdnet.utils.options import flag_fields, options_from_args


def _listed(parser) -> dict:
    """{dest: option strings} of the flags --help lists (hidden aliases left out)."""
    return {a.dest: a.option_strings for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS and a.dest != 'help'}


def _accepted(parser) -> set:
    return {s for a in parser._actions for s in a.option_strings}


def _commands():
    from dfdnet.app.cli import NOT_SERVED
    from dfdnet.app.cli import build_parser as app_parser
    from dfdnet.app.settings import AppSettings
    from dfdnet.cli.build_dictionary import build_parser as dictionary_parser
    from dfdnet.cli.evaluate import build_parser as evaluate_parser
    from dfdnet.cli.make_testset import build_parser as testset_parser
    from dfdnet.cli.restore import build_parser as restore_parser
    from dfdnet.data.testset_options import MakeTestsetOptions
    from dfdnet.dictionary.options import BuildOptions
    from dfdnet.metrics.options import EvaluationOptions
    from dfdnet.pipeline.options import RestoreOptions

    def names(cls, prefix='', exclude=()):
        return {prefix + f.name for f in flag_fields(cls) if f.name not in exclude}

    # (parser, the dests its flags must have: the options' fields plus the command's own flags)
    return {
        'restore': (restore_parser(), names(RestoreOptions)),
        'app': (app_parser(), names(AppSettings) | names(RestoreOptions, exclude=NOT_SERVED)),
        'build_dictionary': (dictionary_parser(), names(BuildOptions) | {'faces.align', 'opt', 'plan', 'verbose'}),
        'evaluate': (evaluate_parser(), names(EvaluationOptions) | {'csv', 'paired', 'from_csv'}),
        'make_testset': (testset_parser(), names(MakeTestsetOptions)),
    }


@pytest.mark.parametrize('command', ['restore', 'app', 'build_dictionary', 'evaluate', 'make_testset'])
def test_each_flag_is_an_options_field_spelled_with_underscores(command):
    parser, expected = _commands()[command]
    listed = _listed(parser)
    assert set(listed) == expected
    for dest, strings in listed.items():
        long_flags = [s for s in strings if s.startswith('--')]
        assert long_flags and all('-' not in s[2:] for s in long_flags), (dest, strings)


def test_old_spellings_still_parse_to_the_same_options():
    commands = _commands()
    evaluate, testset, restore, dictionary = (commands[c][0] for c in ('evaluate', 'make_testset', 'restore',
                                                                       'build_dictionary'))
    from dfdnet.cli.build_dictionary import overrides_from_args
    from dfdnet.cli.evaluate import parse_args as evaluate_args
    from dfdnet.data.testset_options import MakeTestsetOptions
    from dfdnet.metrics.options import EvaluationOptions
    from dfdnet.pipeline.options import RestoreOptions

    old = evaluate_args(['--restored', 'a=x', '--gt', 'g', '--lq', 'l', '--baseline', 'bicubic', '--gt-landmarks', 'm',
                         '--crop-border', '4', '--niqe-params', 'n.npz', '--no-face-metrics', '--resize-restored'])
    new = evaluate_args(['--restored', 'a=x', '--gt_dir', 'g', '--lq_dir', 'l', '--baseline_bicubic',
                         '--gt_landmarks_dir', 'm', '--crop_border', '4', '--niqe_params', 'n.npz', '--no_face_metrics',
                         '--resize_restored'])
    assert options_from_args(EvaluationOptions, old) == options_from_args(EvaluationOptions, new)
    options = options_from_args(EvaluationOptions, new)
    assert (options.restored[0][0], str(options.gt_dir), options.baseline_bicubic, options.crop_border,
            options.face_metrics, options.resize_restored) == ('a', 'g', True, 4, False, True)
    assert evaluate.parse_args(['--from-csv', 'a.csv']).from_csv == evaluate.parse_args(['--from_csv', 'a.csv']).from_csv

    old = testset.parse_args(['--out', 'o', '--max-images', '3', '--motion-kernels', 'k.npz', '--no-landmarks'])
    new = testset.parse_args(['--out_dir', 'o', '--max_images', '3', '--motion_kernels', 'k.npz', '--no_landmarks'])
    assert options_from_args(MakeTestsetOptions, old) == options_from_args(MakeTestsetOptions, new)
    assert options_from_args(MakeTestsetOptions, new).max_images == 3

    assert options_from_args(RestoreOptions, restore.parse_args(['--gpu_ids', '-1'])).device == '-1'
    assert overrides_from_args(dictionary.parse_args(['--gpu_ids', '0', '--align'])) == {'device': '0',
                                                                                        'faces.align': True}
    for parser in (evaluate, testset, restore, dictionary):  # the old spellings are not listed
        help_text = parser.format_help()
        assert '--gt-landmarks' not in help_text and '--max-images' not in help_text and '--out ' not in help_text
    assert '--gpu_ids' in _accepted(restore) and '--gpu_ids' not in {s for v in _listed(restore).values() for s in v}


def test_device_option_parsing_and_the_released_gpu_ids():
    assert [check_device(s) for s in ('cpu', 'cuda:1', 'auto', 'CUDA', '-1', '0', [0])] == [
        'cpu', 'cuda:1', 'auto', 'cuda', '-1', '0', '0']
    for bad in ('gpu', 'cuda:x', '1.5', ''):
        with pytest.raises(ValueError, match='--device must be auto, cpu, cuda, cuda:N'):
            check_device(bad)
    # the released command: --gpu_ids 0 / -1 keep their meaning (0: GPU 0, the CPU with a warning without CUDA)
    from dfdnet.cli.restore import build_parser
    from dfdnet.pipeline.options import RestoreOptions

    parser = build_parser()
    for flag in ('--gpu_ids', '--device'):
        assert select_device(options_from_args(RestoreOptions, parser.parse_args([flag, '-1'])).device) == 'cpu'
    import torch

    if not torch.cuda.is_available():
        assert select_device(options_from_args(RestoreOptions, parser.parse_args(['--gpu_ids', '0'])).device) == 'cpu'
    assert options_from_args(RestoreOptions, parser.parse_args(['--device', 'cuda:1'])).device == 'cuda:1'


def test_a_bad_device_is_a_clear_error_of_every_command(capsys, tmp_path):
    from dfdnet.cli.evaluate import main as evaluate_main
    from dfdnet.cli.restore import main as restore_main
    from dfdnet.dictionary.options import load_options

    with pytest.raises(SystemExit) as exit_info:
        restore_main(['--test_path', str(tmp_path), '--device', 'gpu'])
    assert exit_info.value.code == 2 and "--device must be auto, cpu, cuda, cuda:N" in capsys.readouterr().err
    assert evaluate_main(['--restored', str(tmp_path), '--device', 'gpu:0']) == 2
    assert "--device must be" in capsys.readouterr().err
    with pytest.raises(ValueError, match="device must be .*got 'gpu'"):
        load_options(None, {'device': 'gpu'})
    from dfdnet.cli.validate import main as validate_main

    with pytest.raises(SystemExit) as exit_info:
        validate_main(['--val_set', str(tmp_path), '--checkpoint', 'c.pth', '--device', 'cuda:one'])
    assert exit_info.value.code == 2 and "--device must be auto, cpu, cuda, cuda:N" in capsys.readouterr().err


def test_old_options_files_gpu_ids_is_read_with_a_deprecation_note(tmp_path, caplog):
    from dfdnet.dictionary.options import load_options

    old = tmp_path / 'old.yml'
    old.write_text('input: faces\noutput: dicts\ngpu_ids: [-1]\n')
    with caplog.at_level(logging.WARNING):
        options = load_options(old)
    assert options.device == '-1' and select_device(options.device) == 'cpu'
    assert str(old) in caplog.text and 'gpu_ids is deprecated' in caplog.text
    old.write_text('gpu_ids: null\n')
    assert load_options(old).device == 'auto'
    assert load_options(old, {'device': 'cpu'}).device == 'cpu'  # the command line wins over the file


def test_options_with_several_values_check_each_one():
    from dfdnet.pipeline.options import RestoreOptions

    assert RestoreOptions(dft_levels=[2, 3]).dft_levels == (2, 3) and RestoreOptions().dft_levels is None
    with pytest.raises(ValueError, match='--dft_levels must be one of 0, 1, 2, 3; got 5'):
        RestoreOptions(dft_levels=[1, 5])
    from dfdnet.cli.restore import build_parser

    args = build_parser().parse_args(['--dft_levels', '--verbose'])
    options = options_from_args(RestoreOptions, args)
    assert options.dft_levels == () and options.verbose
