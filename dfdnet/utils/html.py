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
    """One image's entry. ``columns`` maps a column title to the picture files shown in it."""
    name: str
    columns: dict = field(default_factory=dict)
    note: str = ''


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


def write_results_page(path, rows, title: str = 'DFDNet results', thumb_height: int = 256) -> Path:
    """Write ``path`` (index.html) with one table row per ``ImageRow``; picture links are relative."""
    import dominate
    from dominate import tags

    path = Path(path)
    base = path.parent
    doc = dominate.document(title=readable(title))
    with doc.head:
        tags.meta(charset='utf-8')
        tags.style('body{font-family:sans-serif} td{vertical-align:top;padding:4px} '
                   f'img{{height:{thumb_height}px;margin:2px}} .note{{color:#a33}}')
    with doc:
        tags.h2(readable(title))
        titles = []
        for row in rows:
            for name in row.columns:
                if name not in titles:
                    titles.append(name)
        with tags.table(border=1, style='border-collapse:collapse'):
            with tags.tr():
                tags.th('image')
                for name in titles:
                    tags.th(readable(name))
            for row in rows:
                with tags.tr():
                    with tags.td():
                        tags.p(readable(row.name))
                        if row.note:
                            tags.p(readable(row.note), cls='note')
                    for name in titles:
                        with tags.td():
                            for picture in row.columns.get(name, []):
                                link = relative_url(picture, base)
                                with tags.a(href=link):
                                    tags.img(src=link, title=readable(Path(picture).name))
    with atomic_path(path) as tmp:
        tmp.write_text(doc.render(), encoding='utf-8')
    return path
