"""Restoration across processes (torchrun, gloo on the CPU) and ``--skip_existing``.

Two small photos (three faces) through the narrow random-weight model: two ranks give the same
final photos, byte for byte, as one process; rank 0 merges summary.json and index.html.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfdnet.cli.restore import main
from dfdnet.pipeline.resume import output_is_whole
from dfdnet.pipeline.runner import results_lock
from dfdnet.pipeline.summary import RunSummary, merge_summaries
from dfdnet.utils.distributed import DistInfo, contiguous_block, shard_by_cost

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FINAL = 'Step4_FinalResults'


def _arguments(inputs, results, model, *extra):
    checkpoint, dicts = model
    return ['--test_path', str(inputs), '--results_dir', str(results), '--upscale_factor', '1', '--gpu_ids', '-1',
            '--checkpoint', str(checkpoint), '--dict_dir', str(dicts), '--batch_size', '4', *extra]


def _torchrun(arguments, cwd):
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
               str(ROOT / 'test_FaceDict.py'), *arguments]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def inputs(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp('photos') / 'in'
    folder.mkdir()
    shutil.copy(ROOT / 'TestData' / 'astronaut_pair.jpg', folder / 'pair.jpg')
    shutil.copy(shared_data / 'whole' / 'dfdnet_testwhole' / 'test5.jpg', folder / 'test5.jpg')
    return folder


@pytest.fixture(scope='module')
def one_process(inputs, small_model_files, tmp_path_factory):
    results = tmp_path_factory.mktemp('one') / 'results'
    assert main(_arguments(inputs, results, small_model_files)) == 0
    return results


def test_two_ranks_give_the_photos_of_one_process_and_rank_0_merges(inputs, one_process, small_model_files,
                                                                    tmp_path):
    results = tmp_path / 'results'
    done = _torchrun(_arguments(inputs, results, small_model_files), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    names = sorted(p.name for p in (one_process / FINAL).iterdir())
    assert names == ['pair.png', 'test5.png']
    assert sorted(p.name for p in (results / FINAL).iterdir()) == names
    for name in names:
        assert (results / FINAL / name).read_bytes() == (one_process / FINAL / name).read_bytes(), name
    summary = json.loads((results / 'summary.json').read_text())
    single = json.loads((one_process / 'summary.json').read_text())
    assert [p['path'] for p in summary['photos']] == [p['path'] for p in single['photos']]  # the inputs' order
    assert {p['rank'] for p in summary['photos']} == {0, 1} and {p['status'] for p in summary['photos']} == {'restored'}
    assert summary['images_done'] == 2 and summary['faces_restored'] == single['faces_restored']
    assert [r['rank'] for r in summary['ranks']] == [0, 1]
    page = (results / 'index.html').read_text()
    assert all(f'{FINAL}/{name}' in page for name in names)
    assert not (results / '.dfdnet-restore.lock').exists()


def test_skip_existing_keeps_finished_photos_and_redoes_a_damaged_one(inputs, one_process, small_model_files,
                                                                      tmp_path):
    results = tmp_path / 'results'
    shutil.copytree(one_process, results)
    kept, damaged = results / FINAL / 'pair.png', results / FINAL / 'test5.png'
    kept_time = kept.stat().st_mtime_ns
    damaged.write_bytes(damaged.read_bytes()[:-100])  # as a copy cut short would leave it
    assert not output_is_whole(damaged) and output_is_whole(kept)
    with results_lock(results):  # a second, independent run is refused
        assert main(_arguments(inputs, results, small_model_files, '--skip_existing')) == 2
    assert main(_arguments(inputs, results, small_model_files, '--skip_existing')) == 0
    assert kept.stat().st_mtime_ns == kept_time  # untouched
    assert damaged.read_bytes() == (one_process / FINAL / 'test5.png').read_bytes()
    summary = json.loads((results / 'summary.json').read_text())
    assert summary['images_existing'] == [str(inputs / 'pair.jpg')]
    assert [p['status'] for p in summary['photos']] == ['earlier run', 'restored']
    assert 'restored by an earlier run' in (results / 'index.html').read_text()


def test_sharding_keeps_every_input_once_and_balances_the_cost():
    items, costs = list('abcdef'), [100, 1, 1, 1, 1, 96]  # 'a' and 'f' are videos
    shares = [shard_by_cost(items, costs, DistInfo(rank, 2)) for rank in range(2)]
    assert sorted(shares[0] + shares[1]) == items and shares == [['a'], ['b', 'c', 'd', 'e', 'f']]
    assert [list(contiguous_block(7, DistInfo(rank, 3))) for rank in range(3)] == [[0, 1, 2], [3, 4], [5, 6]]
    one = RunSummary(images_total=1, images_done=1, total_seconds=2.0, photos=[{'path': 'b', 'rank': 1}])
    other = RunSummary(images_total=1, images_done=1, total_seconds=3.0, photos=[{'path': 'a', 'rank': 0}])
    merged = merge_summaries([other, one], ['a', 'b'])
    assert merged.images_done == 2 and merged.total_seconds == 3.0 and [p['rank'] for p in merged.photos] == [0, 1]
