"""The device check (scripts/gpu_check.sh) on the CPU at its smallest sizes: the report's structure
and pass flags, and a forced parity mismatch that fails with a message naming it.

The dictionary and torchrun sections are left out here (about 15 s each on 2 cores); the builder
and 2-process gloo training are tested in tests/dictionary and tests/models.
"""
import json

from dfdnet.cli import gpu_check

ROOT = gpu_check.Path(gpu_check.__file__).resolve().parents[2]
TINY = ['--device', 'cpu', '--sizes', 'tiny', '--threads', '2']


def test_cpu_run_writes_the_report_and_passes(shared_data, tmp_path, capsys):
    sections = ['environment', 'parity', 'speed', 'photo', 'training']
    code = gpu_check.main([str(tmp_path), *TINY, '--data', str(shared_data), '--sections', *sections,
                           '--photo', str(ROOT / 'TestData' / 'astronaut_lq.jpg')])
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert code == 0, report['failures']
    assert report['ok'] is True and report['failures'] == [] and report['device'] == 'cpu'
    assert list(report['sections']) == sections
    for name, section in report['sections'].items():
        assert section['ok'] is True and section['error'] is None and section['skipped'] is None, name
        assert set(section) >= {'checks', 'data', 'rows', 'seconds'}
    assert report['sections']['environment']['data']['torch']
    parity = {c['name']: c for c in report['sections']['parity']['checks']}
    assert parity['fp32 max |diff|']['value'] == 0.0 and parity['bf16 max |diff|']['limit'] == 3.0
    assert parity['fp16 mean |diff|']['limit'] == 0.5
    speed = report['sections']['speed']['rows']
    assert speed and all(row['faces_per_s'] > 0 and row['peak_rss_mib'] > 0 for row in speed)
    photo = report['sections']['photo']['rows'][0]
    assert photo['faces'] == 1 and photo['wall_s'] > 0 and 'restore_s' in photo
    runs = {row['run']: row for row in report['sections']['training']['rows']}
    assert runs['smoke']['end_iter'] == 1 and runs['resume']['start_iter'] == 1 and runs['resume']['end_iter'] == 2
    markdown = (tmp_path / 'gpu_check.md').read_text()
    assert markdown.startswith('# Device check: PASS') and '| training | pass |' in markdown
    assert 'gpu_check passed on cpu' in capsys.readouterr().out


def test_forced_mismatch_fails_naming_it(tmp_path, capsys):
    mismatch = 'parity: fp32 max |diff| = 0.5/255, limit 0.1/255'
    code = gpu_check.main([str(tmp_path), *TINY, '--sections', 'parity', '--perturb', '0.5'])
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    err = capsys.readouterr().err
    assert code == 1 and report['ok'] is False and report['sections']['parity']['ok'] is False
    assert any(line.startswith(mismatch) for line in report['failures']), report['failures']
    assert f'gpu_check FAILED: {mismatch}' in err
    assert '# Device check: FAIL' in (tmp_path / 'gpu_check.md').read_text()
