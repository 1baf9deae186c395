"""A results page: one row per image with its pictures side by side (built with dominate).

File names need not be valid UTF-8 (on Linux undecodable bytes reach Python as surrogate escapes):
links percent-encode the raw bytes so they open the real file, and shown text replaces the
undecodable bytes with U+FFFD, so the page is always valid UTF-8. dominate HTML-escapes all text.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from dfdnet.utils.files import atomic_path


@dataclass
class ImageRow:
    """One image's entry. ``columns`` maps a column title to the picture files shown in it:
    'input' and 'final' make the photo's before/after pair; 'aligned crops' and 'restored faces'
    (the same number, in face order) the per-face pairs; any other column is listed after them.
    ``video``: a restored video; its row's 'input' and 'final' are then the first frame's posters,
    and the restored one links to the video. ``note``: a problem (shown in red); ``caption``: a
    description (grey)."""
    name: str
    columns: dict = field(default_factory=dict)
    note: str = ''
    video: Path | None = None
    caption: str = ''


# Fits a 1400-px window without horizontal scrolling: pictures never exceed their column.
PAGE_STYLE = """
body{font-family:sans-serif;margin:0 auto;padding:8px 16px;max-width:1600px;box-sizing:border-box}
h2{margin:8px 0} .info{color:#444;margin:0 0 12px 0;overflow-wrap:anywhere}
.image{border-top:1px solid #ccc;padding:8px 0} .name{font-weight:bold;overflow-wrap:anywhere}
.note{color:#a33} .caption{color:#555} .pair{display:flex;gap:8px;align-items:flex-start}
.pair figure{flex:1 1 0;min-width:0;margin:0} .pair img{width:100%;height:auto;max-height:70vh;object-fit:contain}
.faces{display:flex;flex-wrap:wrap;gap:12px;margin-top:8px} .face{display:flex;gap:4px}
.face figure{margin:0;width:192px} .face img{width:192px;height:192px;object-fit:contain}
figcaption{font-size:12px;color:#555;overflow-wrap:anywhere}
"""
def _raw_name(text) -> bytes:
    """The bytes a file name stands for (``os.fsencode``; other lone surrogates kept, UTF-8 encoded)."""
    try:
        return os.fsencode(str(text))
    except UnicodeEncodeError:
        return str(text).encode('utf-8', 'surrogatepass')


def readable(text) -> str:
    """``text`` as valid Unicode: undecodable file-name bytes become U+FFFD."""
    return _raw_name(text).decode('utf-8', 'replace')


def relative_url(picture, base) -> str:
    """URL of ``picture`` relative to the folder ``base``, its raw bytes percent-encoded."""
    return quote(_raw_name(Path(os.path.relpath(picture, base)).as_posix()), safe='/')


def write_results_page(path, rows, title: str = 'DFDNet results', info: dict | None = None) -> Path:
    """Write ``path`` (index.html): per ``ImageRow``, the photo before and after at equal widths and
    every face's aligned crop beside its restored face; ``info`` (e.g. model, precision, seconds per
    image) is shown under the title. Picture links are relative; every name is escaped."""
    import dominate
    from dominate import tags

    path = Path(path)
    base = path.parent

    def figure(picture, caption, target=None):
        link = relative_url(picture, base)
        with tags.figure():
            with tags.a(href=relative_url(target, base) if target is not None else link):
                tags.img(src=link, alt=readable(Path(picture).name), loading='lazy')
            tags.figcaption(readable(caption))

    doc = dominate.document(title=readable(title))
    with doc.head:
        tags.meta(charset='utf-8')
        tags.meta(name='viewport', content='width=device-width, initial-scale=1')
        tags.style(PAGE_STYLE)
    with doc:
        tags.h2(readable(title))
        if info:
            tags.p('; '.join(f'{readable(k)}: {readable(v)}' for k, v in info.items()), cls='info')
        for row in rows:
            with tags.div(cls='image'):
                tags.div(readable(row.name), cls='name')
                if row.note:
                    tags.div(readable(row.note), cls='note')
                if row.caption:
                    tags.div(readable(row.caption), cls='caption')
                before, after = row.columns.get('input', []), row.columns.get('final', [])
                if before and after:
                    with tags.div(cls='pair'):
                        if row.video is not None:
                            figure(before[0], 'input (first frame)')
                            figure(after[0], f'restored (first frame): open {Path(row.video).name}', row.video)
                        else:
                            figure(before[0], 'input')
                            figure(after[0], 'restored')
                if row.video is not None:
                    with tags.div(cls='caption'):
                        tags.a(f'restored video: {readable(Path(row.video).name)}', href=relative_url(row.video, base))
                crops, restored = row.columns.get('aligned crops', []), row.columns.get('restored faces', [])
                with tags.div(cls='faces'):
                    for index, face in enumerate(restored):
                        with tags.div(cls='face'):
                            if index < len(crops):
                                figure(crops[index], f'face {index:02d}: input')
                            figure(face, f'face {index:02d}: restored')
                    shown = {'aligned crops', 'restored faces'} | ({'input', 'final'} if before and after else set())
                    for name, pictures in row.columns.items():
                        if name not in shown:
                            for picture in pictures:
                                with tags.div(cls='face'):
                                    figure(picture, name)
    with atomic_path(path) as tmp:
        tmp.write_text(doc.render(), encoding='utf-8')
    return path
