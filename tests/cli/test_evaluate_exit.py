"""``dfdnet-evaluate`` exits non-zero, with the reason, when a method has nothing evaluated (issue 31)."""
from __future__ import annotations

import numpy as np

from dfdnet.cli.evaluate import main
from dfdnet.utils.image_io import write_image


def _faces(folder, *names):
    rng = np.random.default_rng(0)
    for name in names:
        write_image(folder / name, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return folder


def test_no_matching_names_is_an_error_not_an_empty_table(tmp_path, capsys):
    gt = _faces(tmp_path / 'gt', 'a.png', 'b.png')
    common = ['--gt', str(gt), '--no-face-metrics', '--lpips', 'off']
    assert main(['--restored', f'ours={_faces(tmp_path / "ours", "x.png", "y.png")}', *common]) == 1
    err = capsys.readouterr().err
    assert 'ours: nothing evaluated' in err and 'no file name matches' in err
    assert main(['--restored', f'empty={(tmp_path / "empty").mkdir() or tmp_path / "empty"}', *common]) == 1
    assert 'empty: nothing evaluated' in capsys.readouterr().err
    assert main(['--restored', f'good={_faces(tmp_path / "good", "a.png", "b_00.png")}', *common]) == 0
