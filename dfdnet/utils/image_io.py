"""Reading and writing images without losing what the file holds.

``read_image`` returns the pixels in RGB order (grey stays 2-D, RGBA keeps its alpha, 16-bit
stays ``uint16``) with the EXIF orientation applied, and raises ``ImageReadError`` naming the
file when it cannot be decoded; of an animated or multi-page file (GIF, TIFF, WebP, APNG) it
returns the first frame and logs a warning naming the file and its frame count. ``list_images``
also lists image-like files this project cannot decode, so that reading reports them instead of
their being skipped without a word. ``write_image`` writes through a temporary file so a reader
never sees half an image.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.jp2', '.ppm', '.pgm', '.pbm',
                    '.gif')
# Image-like names that read_image may fail to decode (it tries; the error then names the file).
OTHER_IMAGE_EXTENSIONS = ('.jpe', '.jfif', '.pnm', '.avif', '.heic', '.heif', '.jxl', '.ico', '.tga', '.psd',
                          '.svg', '.exr', '.hdr', '.dng', '.cr2', '.nef', '.arw', '.raw')
# Decoded with Pillow first: OpenCV < 4.11 cannot read GIF, and newer builds always add an alpha channel.
_PILLOW_FIRST = ('.gif',)
_EXIF_ORIENTATION_TAG = 0x0112
_SIXTEEN_BIT_EXTENSIONS = ('.png', '.tif', '.tiff')
# OpenCV's flag of each resampling kernel name (the degradations' resizes, the face tools' warps).
INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}


class ImageReadError(ValueError):
    """An input image is missing, unreadable or of an unsupported kind (the message names the file)."""


class ImageSizeError(ImageReadError):
    """An input image, or its upscaled result, is larger than the configured limit."""


def is_image_file(path) -> bool:
    """True for the kinds ``read_image`` decodes (``IMAGE_EXTENSIONS``)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def looks_like_image(path) -> bool:
    """True for any image-like extension, decodable or not (``OTHER_IMAGE_EXTENSIONS`` too)."""
    return is_image_file(path) or Path(path).suffix.lower() in OTHER_IMAGE_EXTENSIONS


def list_images(root, exclude=None, include=None) -> list:
    """Image files under ``root`` (searched recursively, sorted), or ``[root]`` for a single file.

    Image-like files of kinds that may not decode (e.g. .heic), and image-named links that cannot be
    followed (dangling, or looping), are listed too: ``read_image`` then reports them. ``exclude``: a folder whose contents are skipped (e.g. a results folder in ``root``);
    ``include``: the test of a file's name (default ``looks_like_image``).
    For a dataset's flat folders of faces, see ``list_face_images``.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f'test path not found: {root}')
    exclude = Path(exclude).resolve() if exclude is not None else None
    include = looks_like_image if include is None else include
    found = []
    for path in sorted(root.rglob('*')):
        if not include(path) or path.name.startswith('.'):
            continue
        broken = is_broken_link(path)
        if not path.is_file() and not broken:
            continue
        if exclude is not None and exclude in _resolved(path).parents:
            continue
        found.append(path)
    return found


def is_broken_link(path) -> bool:
    """True for a symbolic link that cannot be followed: its target is missing, or links loop."""
    path = Path(path)
    return path.is_symlink() and not path.exists()


def _resolved(path: Path) -> Path:
    """``path`` resolved; a looping link resolves as far as it can (to its own folder)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path.parent.resolve() / path.name


def list_face_images(folders) -> list:
    """Decodable image files directly in ``folders`` (one folder or a list), sorted by name within
    each folder, the folders in the order given; FileNotFoundError naming a missing or empty folder."""
    if isinstance(folders, (list, tuple)):
        if not folders:
            raise FileNotFoundError('no image folders given')
        return [f for one in folders for f in list_face_images(one)]
    folder = Path(folders)
    if not folder.is_dir():
        raise FileNotFoundError(f'image folder not found: {folder}')
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith('.'))
    if not files:
        raise FileNotFoundError(f'no images in {folder}')
    return files


class ImageMetadata(NamedTuple):
    """What an image file's header says: EXIF orientation (1-8), frames or pages, (width, height)
    in stored pixels (None when Pillow cannot tell)."""
    orientation: int = 1
    frames: int = 1
    size: tuple | None = None


def image_metadata(path) -> ImageMetadata:
    """The header of an image file, read by Pillow without decoding the pixels; defaults for what
    Pillow cannot parse. A JPEG's extra MPO pictures (phone previews, depth maps) are not frames."""
    from PIL import Image

    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the size limit is read_image's
    try:
        with Image.open(path) as img:
            value = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            try:
                frames = 1 if img.format == 'MPO' else int(getattr(img, 'n_frames', 1))
            except Exception:  # a damaged later frame: the first still decodes
                frames = 1
            size = tuple(int(v) for v in img.size)
    except Exception:  # Pillow cannot parse every file OpenCV can; no EXIF then
        return ImageMetadata()
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    return ImageMetadata(int(value) if value in range(1, 9) else 1, frames, size)


def exif_orientation(path) -> int:
    """EXIF orientation tag (1-8) of an image file; 1 when absent or unreadable."""
    return image_metadata(path)[0]


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H, W[, C]) into display orientation, as EXIF tag values 1-8 define it."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],                    # mirror horizontally
        3: lambda a: a[::-1, ::-1],                 # rotate 180
        4: lambda a: a[::-1],                       # mirror vertically
        5: lambda a: np.swapaxes(a, 0, 1),          # transpose (main diagonal)
        6: lambda a: np.rot90(a, -1),               # rotate 90 clockwise
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # transverse (anti-diagonal)
        8: lambda a: np.rot90(a, 1),                # rotate 90 counter-clockwise
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(image))


def _read_with_opencv(path: Path) -> np.ndarray | None:
    """Pixels (colour in RGB order) of the file, or None if OpenCV cannot decode it."""
    data = np.fromfile(path, dtype=np.uint8)  # works with non-ASCII paths, unlike cv2.imread
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is not None and image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image


def _read_with_pillow(path: Path) -> np.ndarray | None:
    """Pixels of the file's first frame, or None if Pillow cannot decode it."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.load()
            if img.mode in ('I;16', 'I;16B', 'I;16L'):
                return np.asarray(img, dtype=np.uint16)
            if img.mode not in ('L', 'RGB', 'RGBA'):
                img = img.convert('RGBA' if 'A' in img.getbands() or 'transparency' in img.info else 'RGB')
            return np.asarray(img)
    except Exception:
        return None


def read_image(path, max_pixels: float | None = None) -> np.ndarray:
    """Read an image file as it is displayed.

    Returns uint8 or uint16 pixels: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA. Of an animated
    or multi-page file (GIF, TIFF, WebP, APNG) only the first frame is returned, with a warning
    logged that names the file and its frame count.
    Raises ``ImageReadError`` naming the file if it is missing, empty, corrupt or of a kind
    this project cannot process (e.g. floating-point TIFF, HEIC), or if it has more than
    ``max_pixels`` pixels (checked from the header before decoding where the header can be read).
    """
    path = Path(path)
    if is_broken_link(path):
        raise ImageReadError(f'{path}: a link that cannot be followed (its target is missing, or links loop)')
    if not path.is_file():
        raise ImageReadError(f'{path}: no such image file')
    if path.stat().st_size == 0:
        raise ImageReadError(f'{path}: the file is empty')
    metadata = image_metadata(path)
    if metadata.size is not None:
        check_pixel_count(path, metadata.size[0], metadata.size[1], max_pixels)
    suffix = path.suffix.lower()
    decoders = [_read_with_opencv, _read_with_pillow]
    if suffix in _PILLOW_FIRST:
        decoders.reverse()
    for decode in decoders:
        image = decode(path)
        if image is not None:
            break
    if image is None and not is_image_file(path):
        raise ImageReadError(f'{path}: cannot decode {suffix or "extension-less"} files '
                             f'(readable kinds: {" ".join(IMAGE_EXTENSIONS)})')
    if image is None:
        raise ImageReadError(f'{path}: cannot decode the image (corrupt, truncated or not an image file)')
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f'{path}: unsupported pixel type {image.dtype} (8- and 16-bit images are supported)')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise ImageReadError(f'{path}: unsupported channel count {image.shape[2]}')
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ImageReadError(f'{path}: unsupported image shape {image.shape}')
    check_pixel_count(path, image.shape[1], image.shape[0], max_pixels)
    if metadata.frames > 1:
        logger.warning('%s: %d frames or pages (animated or multi-page image): using the first frame only',
                       path, metadata.frames)
    return apply_orientation(image, metadata.orientation)


def check_pixel_count(path, width: int, height: int, max_pixels: float | None) -> None:
    """Raise ``ImageReadError`` naming ``path`` when a ``width`` x ``height`` image exceeds ``max_pixels``."""
    if max_pixels and width * height > max_pixels:
        raise ImageSizeError(f'{path}: {width}x{height} px ({width * height / 1e6:.0f} MP) is more than the limit of '
                             f'{max_pixels / 1e6:g} MP (--max_input_megapixels)')


def encode_image(image: np.ndarray, ext: str) -> bytes:
    """Encode RGB(A)/grey pixels to the bytes of an ``ext`` file ('.png', '.jpg', ...)."""
    ext = ext if ext.startswith('.') else '.' + ext
    if image.dtype == np.uint16 and ext.lower() not in _SIXTEEN_BIT_EXTENSIONS:
        logger.warning('%s cannot hold 16-bit pixels: writing 8 bits', ext)
        image = to_8bit(image)
    if image.ndim == 3 and image.shape[2] == 4 and ext.lower() in ('.jpg', '.jpeg', '.bmp', '.ppm'):
        logger.warning('%s cannot hold an alpha channel: dropping it', ext)
        image = image[:, :, :3]
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buffer = cv2.imencode(ext, np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f'OpenCV cannot encode {image.dtype} {image.shape} pixels as {ext}')
    return buffer.tobytes()


def write_image(path, image: np.ndarray) -> Path:
    """Write RGB(A)/grey uint8/uint16 pixels atomically; the format follows the file's extension."""
    path = Path(path)
    payload = encode_image(image, path.suffix)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def check_image_array(image, what: str = 'image') -> np.ndarray:
    """``image`` as an array if it is one this project processes: (H, W) grey, (H, W, 3) RGB or
    (H, W, 4) RGBA, uint8 or uint16, at least 1 x 1 px; else ``ValueError`` saying what it is."""
    array = np.asarray(image)
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'{what}: expected uint8 or uint16 pixels, got {array.dtype} (shape {array.shape})')
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise ValueError(f'{what}: expected (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA pixels, got shape '
                         f'{array.shape}')
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if min(array.shape[:2]) < 1:
        raise ValueError(f'{what}: the image is empty (shape {array.shape})')
    return array


def to_8bit(image: np.ndarray) -> np.ndarray:
    """8-bit copy of a uint8/uint16 image (16-bit values are divided by 257 and rounded)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    raise ValueError(f'expected uint8 or uint16 pixels, got {image.dtype}')


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any image ``read_image`` returns (grey replicated, alpha dropped)."""
    image = to_8bit(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def read_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (``read_image`` then ``to_rgb8``); ImageReadError naming the file."""
    return to_rgb8(read_image(path))


def match_input_format(rgb: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Give an (S, S, 3) uint8 RGB result the kind of ``reference`` (an image ``read_image`` returned):
    grey stays grey, RGBA gets the reference's alpha resized to S x S (bilinear), 16-bit is scaled by 257."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if reference.ndim == 2 else rgb
    if reference.dtype == np.uint16:
        out = out.astype(np.uint16) * 257
    if reference.ndim == 3 and reference.shape[2] == 4:
        height, width = out.shape[:2]
        alpha = cv2.resize(reference[:, :, 3], (width, height), interpolation=cv2.INTER_LINEAR)
        out = np.dstack([out, alpha.astype(out.dtype)])
    return out
