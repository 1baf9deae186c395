"""``--skip_existing``: which inputs an earlier (killed) run already finished.

An input counts as finished when the last file its restoration writes is in place and whole:
the final photo (``Step4_FinalResults/<key>.<ext>``; with ``--aligned`` the restored face, the
only result), and for a video also its MP4 (the first-frame poster is written after the MP4).
Every output is written atomically, so a killed run leaves temporaries, never a partial file
under the final name; a file is still checked before it is trusted: a PNG must end with its
IEND chunk, a JPEG with its end-of-image marker, an MP4 must be a whole chain of boxes holding
``moov`` and ``mdat``, any other format must decode. A file that fails is restored again.
"""
from __future__ import annotations

import logging
import struct
from pathlib import Path

from dfdnet.utils.image_io import ImageReadError, read_image

logger = logging.getLogger(__name__)

PNG_END = b'IEND\xaeB`\x82'  # the IEND chunk type and its CRC: the last 8 bytes of every PNG
JPEG_END = b'\xff\xd9'


def _tail(path: Path, size: int) -> bytes:
    with open(path, 'rb') as fh:
        fh.seek(max(0, path.stat().st_size - size))
        return fh.read()


def mp4_is_whole(path: Path) -> bool:
    """True when the top-level boxes of ``path`` chain exactly to its end and include moov and mdat."""
    total, offset, seen = path.stat().st_size, 0, set()
    with open(path, 'rb') as fh:
        while offset < total:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return False
            size, kind = struct.unpack('>I4s', header[:8])
            if size == 1 and len(header) == 16:
                size = struct.unpack('>Q', header[8:16])[0]
            elif size == 0:  # the last box runs to the end of the file
                size = total - offset
            if size < 8:
                return False
            seen.add(kind)
            offset += size
    return offset == total and {b'moov', b'mdat'} <= seen


def output_is_whole(path: Path) -> bool:
    """True when ``path`` exists and is a complete picture or MP4 (see the module docstring)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        suffix = path.suffix.lower()
        if suffix == '.png':
            return _tail(path, len(PNG_END)) == PNG_END
        if suffix in ('.jpg', '.jpeg'):
            return _tail(path, 2) == JPEG_END
        if suffix == '.mp4':
            return mp4_is_whole(path)
        read_image(path)
        return True
    except (OSError, ImageReadError, struct.error) as exc:
        logger.debug('%s is not a whole result: %s', path, exc)
        return False


def finished_outputs(layout, key: str, aligned: bool, video: bool) -> list:
    """The files whose presence, whole, means the input ``key`` was finished (``layout``: an ``OutputLayout``)."""
    from dfdnet.pipeline.results_folder import STEP_FINAL, STEP_RESTORED

    if aligned:
        return [layout.path(STEP_RESTORED, key)]
    if video:
        return [layout.path(STEP_FINAL, key, ext='mp4'), layout.path(STEP_FINAL, key)]
    return [layout.path(STEP_FINAL, key)]


def is_finished(layout, key: str, aligned: bool, video: bool) -> bool:
    return all(output_is_whole(p) for p in finished_outputs(layout, key, aligned, video))
