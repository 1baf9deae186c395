"""Training states on disk: the newest readable one is resumed, and files follow the umask."""
from __future__ import annotations

import logging
import math
import os

import pytest
import torch

from dfdnet.models.training_state import list_states, load_latest_state, save_training_state
from dfdnet.utils.files import atomic_path


def test_newest_readable_state_is_resumed_past_a_truncated_one(tmp_path, caplog):
    folder = tmp_path / 'training_states'
    assert load_latest_state(folder) is None  # nothing yet: the caller starts from 0 and says so
    for iteration in (100, 200):
        save_training_state(folder, iteration, {'iteration': iteration, 'w': torch.full((4,), float(iteration))})
    newest = folder / '200.state'
    newest.write_bytes(newest.read_bytes()[:50])  # a kill or a full disk mid-write of an older format
    caplog.set_level(logging.INFO)
    path, state = load_latest_state(folder)
    assert path == folder / '100.state' and state['iteration'] == 100
    assert '200.state' in caplog.text and 'newest readable' in caplog.text
    (folder / '100.state').write_bytes(b'not a state')
    with pytest.raises(ValueError, match='no readable training state') as info:
        load_latest_state(folder)
    assert '100.state' in str(info.value) and '200.state' in str(info.value)
    assert [p.name for p in list_states(folder)] == ['100.state', '200.state']


def test_atomic_writes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / 'a.txt') as tmp:
            tmp.write_text('x')
        os.umask(0o077)
        with atomic_path(tmp_path / 'b.txt') as tmp:
            tmp.write_text('x')
    finally:
        os.umask(old)
    assert (tmp_path / 'a.txt').stat().st_mode & 0o777 == 0o644
    assert (tmp_path / 'b.txt').stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.txt', 'b.txt']  # no temporary left


def test_torch_files_are_byte_reproducible(tmp_path):
    from dfdnet.utils.files import atomic_torch_save
    obj = {'params': {'w': torch.arange(6, dtype=torch.int8)}, 'scale': torch.tensor([0.5])}
    atomic_torch_save(obj, tmp_path / 'a.pth')
    atomic_torch_save(obj, tmp_path / 'b.pth')
    assert (tmp_path / 'a.pth').read_bytes() == (tmp_path / 'b.pth').read_bytes()
    assert torch.equal(torch.load(tmp_path / 'b.pth')['params']['w'], obj['params']['w'])


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    from dfdnet.utils.files import remove_stale_temporaries

    (tmp_path / 'models').mkdir()
    stale = tmp_path / 'models' / '.net_g_250.pth.k2j4_x9a.tmp.pth'
    fresh = tmp_path / '.img.png.abcdefgh.tmp.png'
    kept = [tmp_path / '.hidden_user_file', tmp_path / 'notes.tmp', tmp_path / 'models' / 'net_g_250.pth']
    for path in [stale, fresh, *kept]:
        path.write_bytes(b'x')
    os.utime(stale, (0, 0))
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and fresh.exists() and all(p.exists() for p in kept)
    assert remove_stale_temporaries(tmp_path, min_age_s=-1) == 1 and not fresh.exists()
    assert remove_stale_temporaries(tmp_path / 'missing') == 0


def test_cosine_schedule_decays_per_iteration_and_resumes():
    from dfdnet.models.dfdnet_model import make_scheduler
    from dfdnet.models.options import TrainOptions, OptionsError

    options = TrainOptions(lr_schedule='cosine', total_iter=10, lr_g=1.0, min_lr=0.0)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=options.lr_g)
    scheduler = make_scheduler(optimizer, options)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]['lr'] == pytest.approx(0.5)  # half-way down the cosine
    again = torch.optim.SGD([weight], lr=options.lr_g)
    resumed = make_scheduler(again, options)
    again.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(scheduler.state_dict())
    for sched, opt in ((scheduler, optimizer), (resumed, again)):
        opt.step()
        sched.step()
    assert again.param_groups[0]['lr'] == optimizer.param_groups[0]['lr'] == pytest.approx(0.5 * (1 + math.cos(0.6 * math.pi)))
    plateau = make_scheduler(torch.optim.SGD([weight], lr=1.0), TrainOptions())
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(OptionsError, match='lr_schedule'):
        TrainOptions(lr_schedule='step')
