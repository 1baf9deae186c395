"""Face tools without the generator: image I/O, detection, landmarks, alignment, paste-back, page."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from dfdnet.face.alignment import (FFHQ_TEMPLATE_512, alignment_transforms, estimate_similarity, face_template,
                                   invert_affine, resize_aligned_face, transform_points, warp_face)
from dfdnet.face.detection import FaceDetector
from dfdnet.face.landmarks import FANLandmarker, LandmarkError, read_landmarks, write_landmarks
from dfdnet.face.paste import face_mask, paste_faces, soft_mask, upscale_image
from dfdnet.utils.html import ImageRow, write_results_page
from dfdnet.utils.image_io import ImageReadError, list_images, match_input_format, read_image, write_image


def similarity(scale, degrees, tx, ty):
    angle = math.radians(degrees)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


# ---------------------------------------------------------------------------------- alignment

def test_template_file_matches_built_in(shared_data):
    from_file = face_template(512, shared_data / 'alignment' / 'FFHQ_template.npy')
    np.testing.assert_allclose(from_file, FFHQ_TEMPLATE_512, atol=1e-3)
    np.testing.assert_allclose(face_template(256), FFHQ_TEMPLATE_512 / 2)


def test_estimate_similarity_recovers_exact_transform_and_is_least_squares():
    truth = similarity(0.37, -23.0, 41.5, 12.25)
    points = transform_points(FFHQ_TEMPLATE_512, truth)
    np.testing.assert_allclose(estimate_similarity(FFHQ_TEMPLATE_512, points), truth, atol=1e-9)
    # With noise the fit is a similarity (a = d, b = -c) and no perturbation lowers the squared error.
    noisy = points + np.random.default_rng(0).normal(0, 2.0, points.shape)
    fit = estimate_similarity(FFHQ_TEMPLATE_512, noisy)
    assert fit[0, 0] == pytest.approx(fit[1, 1]) and fit[0, 1] == pytest.approx(-fit[1, 0])
    best = np.sum((transform_points(FFHQ_TEMPLATE_512, fit) - noisy) ** 2)
    for delta in (similarity(1.001, 0, 0, 0), similarity(1, 0.05, 0, 0), similarity(1, 0, 0.05, -0.05)):
        moved = np.vstack([delta @ np.vstack([fit, [0, 0, 1]])])
        assert np.sum((transform_points(FFHQ_TEMPLATE_512, moved) - noisy) ** 2) > best
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 2)), points)


def test_alignment_round_trip_on_warped_dots():
    """Dots at the five landmarks of a tilted face land on the template after the warp, and the
    inverse transform and the paste-back transforms bring the template back onto them (the
    default one onto the ×2 canvas's pixel centres, the released one onto points × 2)."""
    points = transform_points(FFHQ_TEMPLATE_512, similarity(0.3, 17.0, 60.0, 20.0))
    image = np.zeros((260, 300, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    affine, paste_affine = alignment_transforms(points, upscale=2)
    crop = warp_face(image, affine)
    assert crop.shape == (512, 512, 3) and crop.dtype == np.uint8
    found = []
    for x, y in FFHQ_TEMPLATE_512:
        x0, y0 = int(x) - 15, int(y) - 15
        window = crop[y0:y0 + 31, x0:x0 + 31, 0].astype(np.float64)
        ys, xs = np.mgrid[y0:y0 + 31, x0:x0 + 31]
        found.append([(window * xs).sum() / window.sum(), (window * ys).sum() / window.sum()])
    np.testing.assert_allclose(found, FFHQ_TEMPLATE_512, atol=2.0)  # dots were drawn at integer pixels
    np.testing.assert_allclose(transform_points(FFHQ_TEMPLATE_512, invert_affine(affine)), points, atol=1e-6)
    np.testing.assert_allclose(transform_points(FFHQ_TEMPLATE_512, paste_affine), points * 2 + 0.5, atol=1e-6)
    released = alignment_transforms(points, upscale=2, paste='released')[1]
    np.testing.assert_allclose(transform_points(FFHQ_TEMPLATE_512, released), points * 2, atol=1e-6)
    with pytest.raises(ValueError, match="unknown paste transform 'exact'"):
        alignment_transforms(points, paste='exact')


@pytest.mark.parametrize('upscale', [1, 2, 4])
def test_unchanged_crop_pastes_back_where_it_came_from(upscale):
    """A crop pasted back unchanged reproduces the upscaled photo with the default (inverse)
    transform; the released refit misplaces it (five noisy points never fit a similarity exactly)."""
    rng = np.random.default_rng(upscale)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (200, 240, 3)).astype(np.float32), (0, 0), 2.0)
    photo = np.clip((photo - photo.mean()) * 4 + 128, 0, 255).astype(np.uint8)  # smooth, high-contrast texture
    points = transform_points(FFHQ_TEMPLATE_512, similarity(0.3, 12.0, 50.0, 10.0)) + rng.normal(0, 1.5, (5, 2))
    psnr = {}
    for paste in ('inverse', 'released'):
        affine, paste_affine = alignment_transforms(points, upscale, paste=paste)
        crop = warp_face(photo, affine, resampling='bicubic')
        out = paste_faces(photo, [crop], [paste_affine], upscale, resampling='bicubic')
        inside = soft_mask(paste_affine, 512, out.shape[:2], upscale) > 0.99
        err = (out.astype(np.float64) - upscale_image(photo, upscale, 'bicubic'))[inside]
        psnr[paste] = 10 * np.log10(255 ** 2 / np.mean(err ** 2))
    assert psnr['inverse'] > 40.0, psnr
    assert psnr['released'] < psnr['inverse'] - 10.0, psnr


def test_resampling_kernels():
    """'bicubic' is OpenCV's cubic warp and resize; an unknown kernel is refused by name."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    affine = similarity(4.0, 5.0, 3.0, -2.0)
    np.testing.assert_array_equal(warp_face(photo, affine, 256, 'bicubic'),
                                  cv2.warpAffine(photo, affine, (256, 256), flags=cv2.INTER_CUBIC))
    np.testing.assert_array_equal(warp_face(photo, affine, 256), cv2.warpAffine(photo, affine, (256, 256)))
    np.testing.assert_array_equal(upscale_image(photo, 2, 'bicubic'),
                                  cv2.resize(photo, (160, 128), interpolation=cv2.INTER_CUBIC))
    with pytest.raises(ValueError, match="unknown resampling 'lanczos'"):
        upscale_image(photo, 2, 'lanczos')


def test_aligned_faces_shrink_by_area_and_grow_by_the_kernel_asked():
    """The one aligned-face resize: area when both sides shrink, else the ``enlarge`` kernel; floats
    stay in [0, 1]; a face of the right size comes back as it is."""
    rng = np.random.default_rng(1)
    face = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    assert resize_aligned_face(face, 48) is face
    np.testing.assert_array_equal(resize_aligned_face(face, 32), cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA))
    for kernel, flag in (('bicubic', cv2.INTER_CUBIC), ('bilinear', cv2.INTER_LINEAR), ('area', cv2.INTER_AREA)):
        np.testing.assert_array_equal(resize_aligned_face(face, 64, enlarge=kernel),
                                      cv2.resize(face, (64, 64), interpolation=flag))
    grown = resize_aligned_face(face.astype(np.float32) / 255, 64)
    assert grown.dtype == np.float32 and grown.min() >= 0 and grown.max() <= 1
    assert cv2.resize(face.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_CUBIC).max() > 1  # overshoot
    with pytest.raises(ValueError, match="unknown enlarge kernel 'lanczos'"):
        resize_aligned_face(face, 64, enlarge='lanczos')


def test_warp_has_black_border():
    white = np.full((100, 100), 255, np.uint8)
    crop = warp_face(white, similarity(4.0, 0, 100, 100), size=512)
    assert crop[0, 0] == 0 and crop[511, 511] == 0 and crop[300, 300] == 255


# -------------------------------------------------------------------------------- paste-back

def released_paste(background, face, paste_affine, upscale):
    """The released full-frame blend (reference §3 step 5) in float, for comparison."""
    h, w = background.shape[:2]
    size = (w * upscale, h * upscale)
    up = cv2.resize(background, size).astype(np.float64)
    warped = cv2.warpAffine(face.astype(np.float32), paste_affine, size)
    mask = cv2.warpAffine(np.ones(face.shape, np.float32), paste_affine, size)
    border_free = cv2.erode(mask, np.ones((2 * upscale, 2 * upscale), np.uint8))
    w_edge = int((border_free.sum() / 3) ** 0.5) // 20
    centre = cv2.erode(border_free, np.ones((2 * w_edge, 2 * w_edge), np.uint8))
    soft = cv2.GaussianBlur(centre, (2 * w_edge + 1, 2 * w_edge + 1), 0)
    return soft * (border_free * warped) + (1 - soft) * up


@pytest.fixture
def face_on_canvas():
    rng = np.random.default_rng(1)
    background = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    face = np.full((512, 512, 3), (200, 120, 40), np.uint8)
    paste_affine = similarity(0.2 * 2, 10.0, 120.0, 40.0)  # crop -> 2x canvas
    return background, face, paste_affine


def test_paste_faces_matches_released_blend(face_on_canvas):
    background, face, paste_affine = face_on_canvas
    out = paste_faces(background, [face], [paste_affine], 2)
    assert out.shape == (300, 400, 3) and out.dtype == np.uint8
    expected = released_paste(background, face, paste_affine, 2)
    assert np.abs(out.astype(np.float64) - expected).max() <= 1.0
    centre = transform_points([[256, 256]], paste_affine)[0].round().astype(int)
    np.testing.assert_array_equal(out[centre[1], centre[0]], (200, 120, 40))
    untouched = cv2.resize(background, (400, 300))
    np.testing.assert_array_equal(out[:, :80], untouched[:, :80])  # left of the face footprint (x >= 84)


def test_soft_mask_is_feathered(face_on_canvas):
    _, _, paste_affine = face_on_canvas
    mask = soft_mask(paste_affine, 512, (300, 400), 2)
    assert mask.max() == pytest.approx(1.0) and mask.min() == 0.0
    assert 0.05 * mask.size < np.count_nonzero((mask > 0.02) & (mask < 0.98)) < 0.5 * np.count_nonzero(mask)


def test_paste_faces_grey_rgba_and_16_bit(face_on_canvas):
    background, face, paste_affine = face_on_canvas
    centre = transform_points([[256, 256]], paste_affine)[0].round().astype(int)
    grey = cv2.cvtColor(background, cv2.COLOR_RGB2GRAY)
    out = paste_faces(grey, [face], [paste_affine], 2)
    assert out.shape == (300, 400) and out.dtype == np.uint8
    assert out[centre[1], centre[0]] == round(0.299 * 200 + 0.587 * 120 + 0.114 * 40)

    alpha = np.tile(np.linspace(0, 255, 200).astype(np.uint8), (150, 1))
    rgba = np.dstack([background, alpha])
    out = paste_faces(rgba, [face], [paste_affine], 2)
    assert out.shape == (300, 400, 4)
    np.testing.assert_array_equal(out[:, :, 3], cv2.resize(alpha, (400, 300)))
    np.testing.assert_array_equal(out[:, :, :3], paste_faces(background, [face], [paste_affine], 2))

    deep = background.astype(np.uint16) * 257 + 3  # values no 8-bit image can hold
    out = paste_faces(deep, [face], [paste_affine], 2)
    assert out.dtype == np.uint16 and out.shape == (300, 400, 3)
    np.testing.assert_array_equal(out[centre[1], centre[0]], np.array((200, 120, 40)) * 257)
    np.testing.assert_array_equal(out[:, :80], cv2.resize(deep, (400, 300))[:, :80])


@pytest.fixture(scope='module')
def preparer():
    """dlib HOG detector, 5- and 68-point models, built once (loading the 68-point model is slow)."""
    from dfdnet.pipeline.options import RestoreOptions
    from dfdnet.pipeline.photo import build_preparer

    return build_preparer(RestoreOptions(), 512)


def test_identity_restoration_pastes_back_the_input(shared_data, preparer):
    """Align a real face, paste the unchanged crop back: the photo comes back (upscale 1)."""
    image = read_image(shared_data / 'whole' / 'dfdnet_testwhole' / 'test1.jpg')
    faces, skipped, detected = preparer.faces_in_image(image, upscale=1)
    assert detected == 1 and len(faces) == 1 and not skipped
    face = faces[0]
    np.testing.assert_allclose(transform_points(face.landmarks5, face.affine),
                               FFHQ_TEMPLATE_512, atol=25)  # five points fit the template
    out = paste_faces(image, [face.crop], [face.paste_affine], 1)
    inside = soft_mask(face.paste_affine, 512, image.shape[:2], 1) > 0.99
    assert inside.sum() > 1000
    assert np.abs(out.astype(int) - image)[inside].mean() < 4.0


def test_face_mask_follows_the_outline_and_pastes_only_the_face(shared_data, preparer):
    """The default blend: inside the jaw/forehead outline, feathered inside it, scale-proportional,
    zero on the crop's border; pasting with it leaves the rest of the crop's square unchanged."""
    image = read_image(shared_data / 'whole' / 'dfdnet_testwhole' / 'test1.jpg')
    face = preparer.faces_in_image(image, upscale=2)[0][0]
    points = face.landmarks68
    mask = face_mask(points, 512)
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    nose, chin = points[30].round().astype(int), points[8]
    assert mask[nose[1], nose[0]] > 0.99
    hull = np.zeros((512, 512), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points[:17]).astype(np.int32)), 1)
    outside = cv2.dilate(1 - hull, np.ones((3, 3), np.uint8)) & (np.arange(512)[:, None] > chin[1])
    assert mask[outside.astype(bool)].max() < 5e-3  # below the chin nothing of the crop is used
    assert mask[:4].max() == mask[:, :4].max() == mask[-4:].max() == mask[:, -4:].max() == 0.0
    ring = (mask > 0.05) & (mask < 0.95)
    half = face_mask(points / 2, 256)
    assert np.count_nonzero(ring) > 0.05 * np.count_nonzero(mask > 0.05)
    assert np.count_nonzero((half > 0.05) & (half < 0.95)) == pytest.approx(np.count_nonzero(ring) / 4, rel=0.2)

    red = np.full((512, 512, 3), (255, 0, 0), np.uint8)
    out = paste_faces(image, [red], [face.paste_affine], 2, masks=[mask])
    released = paste_faces(image, [red], [face.paste_affine], 2)
    canvas_mask = cv2.warpAffine(mask, face.paste_affine, out.shape[1::-1])
    upscaled = paste_faces(image, [], [], 2)
    assert np.array_equal(out[canvas_mask == 0], upscaled[canvas_mask == 0])
    square = soft_mask(face.paste_affine, 512, out.shape[:2], 2) > 0.99
    corners = square & (canvas_mask == 0)
    assert corners.sum() > 1000 and (released[corners] != upscaled[corners]).any(axis=1).mean() > 0.99


# ------------------------------------------------------------------------ detection, landmarks

def test_preparer_finds_all_faces_of_a_group_photo(shared_data, preparer):
    from dfdnet.pipeline.faces import FacePreparer

    image = read_image(shared_data / 'whole' / 'gpen_solvay' / 'Solvay_conference_1927.png')[:, :, :3]
    faces, skipped, detected = preparer.faces_in_image(image, upscale=2)
    assert detected == 28
    assert len(faces) == 28 and not skipped
    for face in faces:
        assert face.crop.shape == (512, 512, 3) and face.landmarks68.shape == (68, 2)
        assert face.boxes.shape == (4, 4) and np.all(face.boxes[:, 2:] > face.boxes[:, :2])
    largest = FacePreparer(512, preparer.landmarks68, detector=preparer.detector, landmarks5=preparer.landmarks5,
                           only_largest=True)
    only, _, count = largest.faces_in_image(image, upscale=1)
    boxes = FaceDetector('hog', 1)(image).boxes
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert count == 1 and len(only) == 1 and np.all(np.diff(areas) <= 0)
    np.testing.assert_array_equal(only[0].box, boxes[0])


def test_cnn_detector_agrees_with_hog(shared_data, preparer):
    image = read_image(shared_data / 'whole' / 'dfdnet_testwhole' / 'test1.jpg')
    cnn = FaceDetector('cnn', upsample=0)(image)
    hog = preparer.detector(image)
    assert len(cnn) == len(hog) == 1 and 0 < cnn.scores[0]
    (l1, t1, r1, b1), (l2, t2, r2, b2) = cnn.boxes[0], hog.boxes[0]
    inter = max(0, min(r1, r2) - max(l1, l2)) * max(0, min(b1, b2) - max(t1, t2))
    union = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter
    assert inter / union > 0.6
    # five landmarks from either box give nearly the same alignment
    np.testing.assert_allclose(preparer.landmarks5(image, cnn.boxes[0]), preparer.landmarks5(image, hog.boxes[0]),
                               atol=3.0)
    with pytest.raises(ValueError, match='unknown detector'):
        FaceDetector('sfd')


def test_face_with_failed_landmarks_is_skipped_and_others_kept(shared_data, preparer):
    from dfdnet.pipeline.faces import FacePreparer

    calls = []

    def flaky_landmarks(crop, box):  # the second face's 68 points land far from the template
        calls.append(1)
        points = preparer.landmarks68(crop, box)
        return points + 100.0 if len(calls) == 2 else points

    flaky = FacePreparer(512, flaky_landmarks, detector=preparer.detector, landmarks5=preparer.landmarks5)
    image = read_image(shared_data / 'whole' / 'codeformer' / '01.jpg')
    faces, skipped, detected = flaky.faces_in_image(image, upscale=1)
    assert detected == 4 and [f.index for f in faces] == [0, 2, 3]
    assert len(skipped) == 1 and skipped[0].index == 1 and 'from the template' in skipped[0].reason


def test_landmark_file_round_trip_and_errors(tmp_path, shared_data):
    released = shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks' / 'n000024_0042_02.png.txt'
    points = read_landmarks(released)
    assert points.shape == (68, 2) and points[0].tolist() == [114.0, 256.0]
    written = write_landmarks(tmp_path / 'out' / 'a.txt', points + 0.25)
    np.testing.assert_allclose(read_landmarks(written), points + 0.25)
    bad = tmp_path / 'bad.png.txt'
    bad.write_text('1 2\n3 4\n')
    with pytest.raises(LandmarkError, match='bad.png.txt'):
        read_landmarks(bad)


class _PeakNet(torch.nn.Module):
    """Heatmaps with one peak per landmark at fixed 64-grid cells, slightly stronger to the right."""

    def __init__(self, cells):
        super().__init__()
        self.register_buffer('cells', torch.as_tensor(cells))

    def forward(self, x):
        maps = torch.zeros(x.shape[0], 68, 64, 64)
        for i in range(68):
            cx, cy = int(self.cells[i, 0]), int(self.cells[i, 1])
            maps[:, i, cy, cx] = 1.0
            maps[:, i, cy, cx + 1] = 0.5
        return maps


def test_fan_landmarker_decodes_heatmaps(tmp_path):
    cells = np.stack([np.arange(68) % 50 + 5, np.arange(68) // 2 + 10], axis=1)
    weights = tmp_path / 'fan.pt'
    torch.jit.script(_PeakNet(cells)).save(str(weights))
    landmarker = FANLandmarker(weights)
    box = np.array([100.0, 120.0, 300.0, 320.0])
    points = landmarker(np.zeros((400, 400, 3), np.uint8), box)
    crop_xy = np.stack([(cells[:, 0] + 0.25 + 0.5) * 4 - 0.5, (cells[:, 1] + 0.5) * 4 - 0.5], axis=1)
    np.testing.assert_allclose(points, transform_points(crop_xy, invert_affine(landmarker.crop_affine(box))),
                               atol=1e-6)
    # the crop follows face-alignment: side 200 * (w + h) / 195, centre raised by 12% of the height
    side = 200 * 400 / 195
    np.testing.assert_allclose(transform_points([[200, 220 - 24]], landmarker.crop_affine(box)), [[128, 128]])
    assert landmarker.crop_affine(box)[0, 0] == pytest.approx(256 / side)
    with pytest.raises(LandmarkError, match='never downloads'):
        FANLandmarker(None)
    with pytest.raises(LandmarkError, match='not found'):
        FANLandmarker(tmp_path / 'missing.pt')


# -------------------------------------------------------------------------------- image I/O

@pytest.mark.parametrize('orientation', [1, 3, 6, 8])
def test_read_image_applies_exif_orientation(tmp_path, orientation):
    from PIL import Image, ImageOps

    pixels = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / 'o.png'
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img))
    got = read_image(path)
    assert got.shape == expected.shape == ((6, 10, 3) if orientation in (1, 3) else (10, 6, 3))
    np.testing.assert_array_equal(got, expected)


def test_image_kinds_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    kinds = {'grey.png': rng.integers(0, 256, (7, 9), dtype=np.uint8),
             'rgb.png': rng.integers(0, 256, (7, 9, 3), dtype=np.uint8),
             'rgba.png': rng.integers(0, 256, (7, 9, 4), dtype=np.uint8),
             'deep.png': rng.integers(0, 65536, (7, 9, 3), dtype=np.uint16),
             'deep_grey.tif': rng.integers(0, 65536, (7, 9), dtype=np.uint16)}
    for name, pixels in kinds.items():
        write_image(tmp_path / name, pixels)
        back = read_image(tmp_path / name)
        assert back.dtype == pixels.dtype and back.shape == pixels.shape, name
        np.testing.assert_array_equal(back, pixels)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temporary files left
    assert [p.name for p in list_images(tmp_path)] == sorted(kinds)


def test_unreadable_images_name_the_file(tmp_path):
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8 definitely not a jpeg')
    with pytest.raises(ImageReadError, match='broken.jpg'):
        read_image(broken)
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageReadError, match='empty.png.*empty'):
        read_image(tmp_path / 'empty.png')
    with pytest.raises(ImageReadError, match='missing.png'):
        read_image(tmp_path / 'missing.png')


def test_match_input_format():
    face = np.full((8, 8, 3), (10, 20, 30), np.uint8)
    rgba16 = np.zeros((4, 4, 4), np.uint16)
    rgba16[..., 3] = 1000
    out = match_input_format(face, rgba16)
    assert out.dtype == np.uint16 and out.shape == (8, 8, 4)
    assert out[0, 0].tolist() == [10 * 257, 20 * 257, 30 * 257, 1000]
    assert match_input_format(face, np.zeros((4, 4), np.uint8)).shape == (8, 8)


def test_results_page_links_relative_pictures(tmp_path):
    picture = tmp_path / 'Step4_FinalResults' / 'a.png'
    write_image(picture, np.zeros((4, 4, 3), np.uint8))
    page = write_results_page(tmp_path / 'index.html', [ImageRow('a', {'final': [picture]}, note='1 face skipped')],
                              info={'model': 'shipped <default>', 'time per image': '1.2 s'})
    html = page.read_text()
    assert 'src="Step4_FinalResults/a.png"' in html and '1 face skipped' in html
    assert '<figcaption>final</figcaption>' in html and 'model: shipped &lt;default&gt;; time per image: 1.2 s' in html
