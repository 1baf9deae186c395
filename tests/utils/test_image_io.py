"""Image listing and reading of GIF / multi-frame files, and the results page with awkward file names."""
import logging
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import numpy as np
import pytest

from dfdnet.utils.html import ImageRow, write_results_page
from dfdnet.utils.image_io import ImageReadError, list_face_images, list_images, read_image, write_image

ROOT = Path(__file__).resolve().parents[2]


class _PageParser(HTMLParser):
    """Collects the tags, the href/src links and the text of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.links, self.text = set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [value for name, value in attrs if name in ('href', 'src')]

    def handle_data(self, data):
        self.text.append(data)


def test_results_page_with_undecodable_and_html_special_file_names(tmp_path):
    names = [os.fsdecode(b'caf\xe9 1.png'), 'a<b & "c">.png', 'x#y?.png']
    pictures = [tmp_path / 'Step4_FinalResults' / name for name in names]
    try:
        for picture in pictures:
            write_image(picture, np.zeros((4, 4, 3), np.uint8))
    except (OSError, UnicodeEncodeError) as exc:
        pytest.skip(f'this file system refuses such names: {exc}')
    rows = [ImageRow(Path(p).stem, {'final': [p]}, note=f'FAILED: {p.name}') for p in pictures]
    page = write_results_page(tmp_path / 'index.html', rows)

    parser = _PageParser()
    parser.feed(page.read_bytes().decode('utf-8'))  # strict: the page is valid UTF-8
    assert parser.tags <= {'html', 'head', 'meta', 'title', 'style', 'body', 'h2', 'p', 'div', 'figure', 'figcaption',
                           'a', 'img'}
    assert len(parser.links) == 2 * len(names)
    for link in parser.links:
        raw = unquote_to_bytes(link)
        assert raw in [os.fsencode(f'Step4_FinalResults/{name}') for name in names]
        assert (tmp_path / os.fsdecode(raw)).is_file()
    text = ''.join(parser.text)
    assert 'caf\ufffd 1' in text and 'FAILED: a<b & "c">.png' in text and 'x#y?' in text


def _frames():
    first = np.zeros((6, 8, 3), np.uint8)
    first[:, :4] = (255, 0, 0)
    first[:, 4:] = (0, 0, 255)
    second = np.full((6, 8, 3), (0, 255, 0), np.uint8)
    return first, second


@pytest.mark.parametrize('name', ['anim.gif', 'pages.tif'])
def test_multi_frame_files_are_listed_and_give_the_first_frame_with_a_warning(tmp_path, caplog, name):
    from PIL import Image

    first, second = _frames()
    Image.fromarray(first).save(tmp_path / name, save_all=True, append_images=[Image.fromarray(second)])
    write_image(tmp_path / 'still.png', first)
    assert [p.name for p in list_images(tmp_path)] == sorted([name, 'still.png'])
    with caplog.at_level(logging.WARNING, logger='dfdnet.utils.image_io'):
        pixels = read_image(tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / 'still.png'), first)
    np.testing.assert_array_equal(pixels, first)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and name in warnings[0] and '2 frames' in warnings[0]


def test_image_like_files_that_do_not_decode_are_listed_and_reported(tmp_path):
    (tmp_path / 'photo.heic').write_bytes(b'\x00\x00\x00\x18ftypheic not really')
    (tmp_path / 'broken.gif').write_bytes(b'GIF89a truncated')
    (tmp_path / 'notes.txt').write_text('not an image')
    assert [p.name for p in list_images(tmp_path)] == ['broken.gif', 'photo.heic']
    with pytest.raises(ImageReadError, match=r'photo\.heic: cannot decode \.heic files'):
        read_image(tmp_path / 'photo.heic')
    with pytest.raises(ImageReadError, match=r'broken\.gif: cannot decode'):
        read_image(tmp_path / 'broken.gif')


def test_results_page_fits_a_1400_px_window_in_chromium(tmp_path):
    """The page in a real headless browser (skipped where no Chromium is installed)."""
    import importlib.util
    import shutil

    if not any(shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome')):
        pytest.skip('no Chromium on this machine (apt-get install chromium)')
    spec = importlib.util.spec_from_file_location('check_results_page', ROOT / 'scripts' / 'measurements' / 'results_page.py')
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    wide = np.zeros((300, 3000, 3), np.uint8)  # a panorama must not make the page scroll sideways
    rows = [ImageRow('a <wide> photo', {
        'input': [write_image(tmp_path / 'Step0_Input' / 'wide.png', wide)],
        'final': [write_image(tmp_path / 'Step4_FinalResults' / 'wide.png', wide)],
        'aligned crops': [write_image(tmp_path / 'Step1_CropImg' / f'wide_{i:02d}.png', wide[:, :300]) for i in range(9)],
        'restored faces': [write_image(tmp_path / 'Step3_RestoreCropFace' / f'wide_{i:02d}.png', wide[:, :300])
                           for i in range(9)]})]
    page = write_results_page(tmp_path / 'index.html', rows, info={'model': 'x' * 400})
    report = checker.check_page(page)
    assert report['images'] == 20 and report['broken'] == 0
    assert report['scroll_width'] <= report['window_width'] == 1400
    assert not list(tmp_path.glob('.probe_*'))  # the probe copy is removed


def test_several_training_folders_in_order(tmp_path):
    import cv2
    import numpy as np

    for folder, names in (('b', ['2.png', '1.png']), ('a', ['3.png'])):
        (tmp_path / folder).mkdir()
        for name in names:
            cv2.imwrite(str(tmp_path / folder / name), np.zeros((4, 4, 3), np.uint8))
    files = list_face_images([tmp_path / 'b', tmp_path / 'a'])
    assert [f'{f.parent.name}/{f.name}' for f in files] == ['b/1.png', 'b/2.png', 'a/3.png']
    with pytest.raises(FileNotFoundError, match='no image folders'):
        list_face_images([])
