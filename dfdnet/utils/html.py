"""A results page: one row per image with its pictures side by side (built with dominate)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dfdnet.utils.files import atomic_path


@dataclass
class ImageRow:
    """One image's entry. ``columns`` maps a column title to the picture files shown in it."""
    name: str
    columns: dict = field(default_factory=dict)
    note: str = ''


def write_results_page(path, rows, title: str = 'DFDNet results', thumb_height: int = 256) -> Path:
    """Write ``path`` (index.html) with one table row per ``ImageRow``; picture links are relative."""
    import dominate
    from dominate import tags

    path = Path(path)
    base = path.parent
    doc = dominate.document(title=title)
    with doc.head:
        tags.style('body{font-family:sans-serif} td{vertical-align:top;padding:4px} '
                   f'img{{height:{thumb_height}px;margin:2px}} .note{{color:#a33}}')
    with doc:
        tags.h2(title)
        titles = []
        for row in rows:
            for name in row.columns:
                if name not in titles:
                    titles.append(name)
        with tags.table(border=1, style='border-collapse:collapse'):
            with tags.tr():
                tags.th('image')
                for name in titles:
                    tags.th(name)
            for row in rows:
                with tags.tr():
                    with tags.td():
                        tags.p(row.name)
                        if row.note:
                            tags.p(row.note, cls='note')
                    for name in titles:
                        with tags.td():
                            for picture in row.columns.get(name, []):
                                link = Path(os.path.relpath(picture, base)).as_posix()
                                with tags.a(href=link):
                                    tags.img(src=link, title=Path(picture).name)
    with atomic_path(path) as tmp:
        tmp.write_text(doc.render(), encoding='utf-8')
    return path
