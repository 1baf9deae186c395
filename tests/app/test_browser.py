"""The page in a real headless browser (Debian's chromium driven by Playwright): upload a photo,
see the restored one twice the size, download it and the zip, and a message for a non-image.
Skips, saying why, where Playwright or chromium is missing."""
from __future__ import annotations

import os
import shutil
import zipfile

import cv2
import pytest

from app.helpers import face_difference

sync_api = pytest.importorskip('playwright.sync_api', reason='Playwright is not installed (pip install playwright)')
CHROMIUM = os.environ.get('DFDNET_CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason='no chromium on this machine (apt-get install chromium, '
                                'or set DFDNET_CHROMIUM to its path)')


@pytest.fixture(scope='module')
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_server[1] + '/')
    yield page
    context.close()


def test_page_restores_a_photo_and_downloads_it(page, face_photo, tmp_path):
    page.wait_for_selector('#model option', state='attached')
    page.select_option('#upscale_factor', '2')
    page.set_input_files('#files', str(face_photo))
    after = page.wait_for_selector('.card .after[src]', state='attached')
    page.wait_for_function('img => img.complete && img.naturalWidth > 0', arg=after)
    assert after.evaluate('img => [img.naturalWidth, img.naturalHeight]') == [384, 384]
    assert 'Done: 384 × 384 px, 1 face(s) restored' in page.inner_text('.card .state')
    assert page.locator('.card .face img').count() == 2  # the face before and after
    page.locator('.card .slider').fill('20')
    assert 'inset(0px 0px 0px 20%)' in page.locator('.card .after-clip').evaluate('e => getComputedStyle(e).clipPath')

    with page.expect_download() as download:
        page.click('.card .links a')
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == 'astronaut_restored.png'
    restored = cv2.imread(str(saved))
    assert restored.shape == (384, 384, 3)
    inside, outside = face_difference(restored, face_photo)
    assert inside > 2.0 and outside < 1.0, (inside, outside)

    with page.expect_download() as download:
        page.click('#download-all')
    download.value.save_as(tmp_path / 'all.zip')
    assert [name.split('_', 1)[1] for name in zipfile.ZipFile(tmp_path / 'all.zip').namelist()] == [
        'astronaut_restored.png']


def test_page_says_what_is_wrong_with_a_non_image(page, tmp_path):
    notes = tmp_path / 'notes.txt'
    notes.write_text('not a photo')
    page.set_input_files('#files', str(notes))
    message = page.wait_for_selector('.card .state.error')
    assert 'notes.txt: cannot decode .txt files' in message.inner_text()
    assert 'Traceback' not in page.content()
