"""End-to-end training: one step, state round trip and resume continuity, 2-process gloo DDP, smoke config.

Runs the smoke config (image size 256, width-8 generator) with batch 1 on CPU; a G+D step still
takes seconds, so the runs are kept to a handful of iterations.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dfdnet.models.builders import build_component_discriminator, build_discriminator, build_generator
from dfdnet.models.trainer import Trainer
from dfdnet.models.training_state import list_states, load_training_state
from dfdnet.models.options import parse_options

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / 'options' / 'train_smoke.yml'


def _options(root: Path, faces: Path, *extra):
    overrides = [f'experiments_root={root}', f'train_data.hq_folder={faces}', 'train.total_iter=2',
                 'train_data.batch_size=1', 'train_data.num_workers=0', 'train_data.max_images=3',
                 'train_data.val_count=1', 'logger.use_tb_logger=false', 'train.ema_decay=0.5',
                 'discriminator.base_channels=8', 'val.freq=1000', 'logger.save_checkpoint_freq=1',
                 'discriminator.components=[left_eye, right_eye, mouth]', 'discriminator.component_base_channels=8',
                 'train.component_weight=1.0', 'train.feature_matching_weight=10.0', *extra]
    return parse_options(SMOKE, overrides)


class _Recorder:
    """Wraps ``optimize_parameters`` to record the sample indices of every batch."""

    def __init__(self, trainer):
        self.indices = []
        original = trainer.model.optimize_parameters

        def wrapped(batch):
            self.indices.append(batch['index'].tolist())
            return original(batch)

        trainer.model.optimize_parameters = wrapped


@pytest.fixture(scope='module')
def first_run(shared_data, tmp_path_factory):
    """An uninterrupted 2-iteration run (states saved at iterations 1 and 2)."""
    root = tmp_path_factory.mktemp('run_a')
    options, resolved = _options(root, shared_data / 'faces_hq' / 'celebahq_512')
    trainer = Trainer(options, resolved, ['pytest'])
    recorder = _Recorder(trainer)
    trainer.run()
    trainer.close()
    return options, trainer, recorder.indices


def test_training_step_changes_g_and_d_not_encoder(first_run):
    options, trainer, _ = first_run
    initial_g, _ = build_generator(options.generator, options.init, options.experiment_dir, options.manual_seed)
    initial_d = build_discriminator(options.discriminator, options.manual_seed)
    trained_g, trained_d = trainer.model.net_g.state_dict(), trainer.model.net_d.state_dict()
    for name, value in initial_g.state_dict().items():
        if name.startswith('vgg_extractor.'):
            assert torch.equal(value, trained_g[name]), f'frozen encoder changed: {name}'
    changed = [n for n, p in initial_g.named_parameters() if p.requires_grad and not torch.equal(p, trained_g[n])]
    assert len(changed) > 0.9 * sum(p.requires_grad for p in initial_g.parameters())
    assert all(not torch.equal(v, trained_d[n]) for n, v in initial_d.state_dict().items() if n.endswith('weight_orig'))
    initial_comp = build_component_discriminator(options.discriminator, options.manual_seed)
    trained_comp = trainer.model.net_d_comp.state_dict()
    assert len(trainer.model.net_d_comp.discriminators) == 3
    assert all(not torch.equal(v, trained_comp[n]) for n, v in initial_comp.state_dict().items()
               if n.endswith('weight_orig'))
    bank = trainer.model.net_g.dictionaries
    assert torch.equal(bank.atoms('mouth', 128), initial_g.dictionaries.atoms('mouth', 128))  # fixed dictionaries
    exp = options.experiment_dir
    assert [p.name for p in list_states(exp / 'training_states')] == ['1.state', '2.state']
    for name in ('net_g_1.pth', 'net_g_2.pth', 'net_g_ema_2.pth', 'net_d_2.pth', 'net_g_best.pth'):
        assert (exp / 'models' / name).is_file(), name
    assert list(exp.glob('options_*.yml')) and (exp / 'command.txt').read_text().strip().endswith('pytest')


def test_state_round_trip_and_resume_continuity(first_run, shared_data, tmp_path):
    options, trainer_a, indices_a = first_run
    state_1 = options.experiment_dir / 'training_states' / '1.state'
    state = load_training_state(state_1)
    assert state['iteration'] == 1 and state['epoch'] == 0 and state['batches_in_epoch'] == 1
    assert len(state['rng']) == 1 and state['world_size'] == 1
    options_b, resolved_b = _options(tmp_path, shared_data / 'faces_hq' / 'celebahq_512')
    trainer_b = Trainer(options_b, resolved_b, ['pytest'], resume_state=state_1)
    assert trainer_b.iteration == 1
    for name, value in state['model']['net_g'].items():
        assert torch.equal(trainer_b.model.net_g.state_dict()[name], value)
    assert trainer_b.model.optimizer_g.state_dict()['state'].keys() == state['model']['optimizer_g']['state'].keys()
    recorder = _Recorder(trainer_b)
    trainer_b.run()
    trainer_b.close()
    assert trainer_b.iteration == 2
    assert recorder.indices == indices_a[1:]  # the same next batch
    final_a, final_b = trainer_a.model.net_g.state_dict(), trainer_b.model.net_g.state_dict()
    worst = max((final_a[k] - final_b[k]).abs().max().item() for k in final_a)
    assert worst < 1e-5, f'resumed run differs from the uninterrupted one by {worst}'


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))


def test_two_process_gloo_ddp(shared_data, tmp_path):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           str(ROOT / 'train.py'), '-opt', str(SMOKE), '--launcher', 'pytorch',
           '--set', f'experiments_root={tmp_path}', '--set', 'train.total_iter=1',
           '--set', f'train_data.hq_folder={shared_data / "faces_hq" / "celebahq_512"}',
           '--set', 'train_data.batch_size=1', '--set', 'train_data.num_workers=0', '--set', 'val.freq=1000',
           '--set', 'train_data.val_count=1', '--set', 'train_data.max_images=4',
           '--set', 'logger.use_tb_logger=false', '--set', 'train.ema_decay=0',
           '--set', 'discriminator.base_channels=8']
    result = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    exp = tmp_path / 'dfdnet_smoke'
    log = next(exp.glob('train_*.log')).read_text()
    assert 'batch 1 x 2 process(es)' in log and 'iter 1 epoch 0' in log
    state = load_training_state(exp / 'training_states' / '1.state')
    assert state['world_size'] == 2 and len(state['rng']) == 2
    assert not torch.equal(state['rng'][0]['torch'], state['rng'][1]['torch'])  # per-rank seeds


def test_smoke_config_runs(shared_data, tmp_path):
    cmd = [sys.executable, str(ROOT / 'train.py'), '-opt', str(SMOKE), '--set', f'experiments_root={tmp_path}',
           '--set', f'train_data.hq_folder={shared_data / "faces_hq" / "celebahq_512"}',
           '--set', 'train.total_iter=1', '--set', 'train_data.batch_size=1']
    result = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    exp = tmp_path / 'dfdnet_smoke'
    log = next(exp.glob('train_*.log')).read_text()
    assert 'iter 1 epoch 0' in log and 'samples/s' in log and 'ETA' in log
    assert 'validation at iter 1' in log and 'PSNR' in log
    assert (exp / 'models' / 'net_g_best.pth').is_file() and (exp / 'training_states' / '1.state').is_file()
    assert len(list((exp / 'visualization' / '1').glob('*.png'))) == 2
    assert (exp / 'landmarks.npz').is_file() and (exp / 'val_set' / 'manifest.json').is_file()
    assert list((exp / 'tb_logger').iterdir())
    assert 'random_encoder_seed=0' in log and 'random_dictionary_seed=0' in log
