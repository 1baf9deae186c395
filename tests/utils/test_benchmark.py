"""scripts/benchmarks/inference.py runs in its quick mode and reports what it measured."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
SCRIPT = ROOT / 'scripts' / 'benchmarks' / 'inference.py'
ENV = {**os.environ, 'PYTHONPATH': str(ROOT)}  # the scripts import the package: installed, or on PYTHONPATH


def test_generator_quick(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, str(SCRIPT), 'generator', '--quick',
                           '--dict_root', str(tmp_path / 'dicts'), '--json', str(out), '--threads', '2'],
                          capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]['K'] == 4 and rows[0]['impl'] == 'ours' and rows[0]['width'] == 16
    assert rows[0]['s_per_face'] > 0 and rows[0]['peak_rss_mb'] > 50
    assert rows[0]['machine']['torch'] and rows[0]['machine']['torch_threads'] == 2
    assert '| ours | 16 | 4 | 1 | fp32 | cpu |' in proc.stdout


def test_pipeline_one_image(tmp_path, shared_data):
    images = tmp_path / 'images'
    images.mkdir()
    source = sorted((shared_data / 'whole' / 'dfdnet_testwhole').iterdir())[0]
    (images / source.name).write_bytes(source.read_bytes())
    out = tmp_path / 'pipe.json'
    shipped = ROOT / 'dfdnet' / 'pretrained' / 'default'  # the small shipped model: the pipeline is the point
    proc = subprocess.run([sys.executable, str(SCRIPT), 'pipeline', '--images', str(images),
                           '--checkpoint', str(shipped / 'net_g.pth'), '--dict_dir', str(shipped / 'dictionaries'),
                           '--upscale_factor', '1', '--threads', '1', '--json', str(out)],
                          capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text())[0]
    assert row['images'] == 1 and row['faces'] >= 1 and row['exit'] == 0
    assert {'detect_s_per_image', 'restore_s_per_image'} <= set(row)
    assert row['restore_s_per_image'] > 0 and row['detect_s_per_image'] > 0
