"""Open a results page (``index.html`` of ``test_FaceDict.py``) in headless Chromium and check it.

Checks, in a 1400 x 900 window: no horizontal scrolling (the page's scroll width fits the
window), every picture loaded (none broken), and optionally writes a screenshot. Chromium comes
from the system's packages (``apt-get install chromium``); nothing is downloaded. A copy of the
page with a small probe script is written next to it (so relative links work) and removed after.

    PYTHONPATH=. python scripts/measurements/results_page.py results/index.html --screenshot docs/figures/results_page.png
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const report = {scroll_width: document.documentElement.scrollWidth, window_width: window.innerWidth,
                  images: images.length, broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
                  widest_image: Math.max(0, ...images.map(i => i.getBoundingClientRect().width))};
  document.body.setAttribute('data-report', JSON.stringify(report));
});
</script>"""


def find_chromium() -> str | None:
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name):
            return shutil.which(name)
    return None


def check_page(page: Path, width: int = 1400, height: int = 900, screenshot: Path | None = None) -> dict:
    """{'scroll_width', 'window_width', 'images', 'broken', 'widest_image'} of ``page`` in Chromium."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError('no Chromium found (apt-get install chromium)')
    page = Path(page).resolve()
    probe = page.with_name(f'.probe_{page.name}')
    html = page.read_text(encoding='utf-8')
    probe.write_text(html.replace('</body>', PROBE + '</body>'), encoding='utf-8')
    common = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
              f'--window-size={width},{height}', '--allow-file-access-from-files', '--virtual-time-budget=5000']
    with tempfile.TemporaryDirectory() as profile:
        common.append(f'--user-data-dir={profile}')
        try:
            dom = subprocess.run(common + ['--dump-dom', probe.as_uri()], capture_output=True, text=True,
                                 timeout=120, check=True).stdout
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(common + [f'--screenshot={Path(screenshot).resolve()}', page.as_uri()],
                               capture_output=True, timeout=120, check=True)
        finally:
            probe.unlink(missing_ok=True)
    match = re.search(r'data-report="([^"]*)"', dom)
    if not match:
        raise RuntimeError('the page did not report (did it load?)')
    return json.loads(match.group(1).replace('&quot;', '"'))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('page', type=Path)
    parser.add_argument('--width', type=int, default=1400)
    parser.add_argument('--screenshot', type=Path, default=None)
    args = parser.parse_args(argv)
    report = check_page(args.page, args.width, screenshot=args.screenshot)
    print(json.dumps(report))
    problems = []
    if report['scroll_width'] > report['window_width']:
        problems.append(f'horizontal scrolling: {report["scroll_width"]} px wide in a {report["window_width"]} px window')
    if report['broken']:
        problems.append(f'{report["broken"]} of {report["images"]} pictures did not load')
    for problem in problems:
        print(f'problem: {problem}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
