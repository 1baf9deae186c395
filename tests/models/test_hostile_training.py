"""Hostile training options (issue 31): bad paths, zero sizes and malformed overrides are messages
before experiments/<name> is touched; one run per experiment; a killed run's unfinished files are
removed by the next. Nothing here trains."""
from __future__ import annotations

from pathlib import Path

import pytest

from dfdnet.cli.train import main
from dfdnet.models.options import parse_options
from dfdnet.models.trainer import DistInfo, experiment_lock, prepare_experiment

SMOKE = Path(__file__).resolve().parents[2] / 'options' / 'train_smoke.yml'


def _args(root, *overrides):
    args = ['-opt', str(SMOKE), '--set', f'experiments_root={root}', '--set', 'logger.use_tb_logger=false']
    for item in overrides:
        args += ['--set', item]
    return args


def test_a_missing_data_folder_stops_before_the_experiment_folder_is_moved(tmp_path, capsys):
    existing = tmp_path / 'dfdnet_smoke'
    (existing / 'models').mkdir(parents=True)
    for key in ('train_data.hq_folder', 'train_data.landmarks', 'init.pretrain_network_g', 'init.dictionaries'):
        code = main(_args(tmp_path, f'{key}={tmp_path / "missing"}'))
        err = capsys.readouterr().err
        assert code == 2 and key in err and 'missing' in err and 'Traceback' not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dfdnet_smoke']  # not moved aside, no lock left
    assert (existing / 'models').is_dir()


@pytest.mark.parametrize('override, message', [
    ('train_data.batch_size=0', 'train_data.batch_size must be >= 1, got 0'),
    ('train_data.num_workers=-1', 'train_data.num_workers must be >= 0'),
    ('logger.save_checkpoint_freq=0', 'logger.save_checkpoint_freq must be >= 1'),
    ('val.freq=0', 'val.freq must be >= 1'),
    ('train_data.flip_prob=2', 'train_data.flip_prob must be in [0, 1]'),
    ('train.lr_g=-1', 'train.lr_g'),
])
def test_sizes_and_frequencies_out_of_range_are_option_errors(tmp_path, capsys, override, message):
    assert main(_args(tmp_path, override)) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('override', ['train.total_iter=[1', 'name={a: 1', 'train.lr_g="x', '=5'])
def test_a_malformed_override_names_the_override(tmp_path, capsys, override):
    assert main(_args(tmp_path, override)) == 2
    err = capsys.readouterr().err
    assert f'override {override!r}' in err and 'Traceback' not in err


def test_one_run_per_experiment_and_a_killed_runs_temporaries_are_removed(tmp_path, capsys, shared_data):
    options, resolved = parse_options(SMOKE, [f'experiments_root={tmp_path}',
                                              f'train_data.hq_folder={shared_data / "faces_hq" / "celebahq_512"}'])
    states = options.experiment_dir / 'training_states'
    states.mkdir(parents=True)
    leftover = states / '.10.state.a1B2c3D4.tmp.state'  # fresh, as a run killed a minute ago leaves it
    leftover.write_bytes(b'\x00' * 1000)
    with experiment_lock(options.experiment_dir):  # a live run
        code = main(_args(tmp_path, f'train_data.hq_folder={shared_data / "faces_hq" / "celebahq_512"}'))
        assert code == 2 and 'in use by another run' in capsys.readouterr().err
        assert leftover.exists()
    with experiment_lock(options.experiment_dir):  # the next run holds the lock: any temporary is a killed run's
        prepare_experiment(options, resolved, ['train.py'], resume=True, info=DistInfo())
    assert not leftover.exists()
    assert 'removed 1 unfinished temporary file(s)' in capsys.readouterr().err
    assert not (tmp_path / '.dfdnet_smoke.lock').exists()  # released
