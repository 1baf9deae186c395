"""Dictionary building end to end on a few real faces (random encoder, small K, CPU)."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import dfdnet.dictionary.builder as builder_module
import dfdnet.data.folder_landmarks as folder_landmarks_module
from conftest import write_random_generator
from dfdnet.archs import GeneratorConfig, load_dictionaries
from dfdnet.archs.dfdnet_arch import DFDNetGenerator
from dfdnet.archs.dictionary import dictionary_file_name
from dfdnet.cli.build_dictionary import main as cli_main
from dfdnet.data.landmark_cache import LandmarkCache
from dfdnet.dictionary.builder import DictionaryBuildError, build_dictionary
from dfdnet.dictionary.faces import list_dictionary_images
from dfdnet.dictionary.features import extract_samples, feature_layout, load_encoder
from dfdnet.dictionary.kmeans import kmeans
from dfdnet.dictionary.options import BuildOptions, KMeansOptions, load_options
from dfdnet.face.components import PART_NAMES, component_boxes, flip_landmarks

ROOT = Path(__file__).resolve().parents[2]
FACES = ['0000.jpg', '0001.jpg', '0002.jpg']
K = 3


def make_options(input_dir, output, **kw) -> BuildOptions:
    kw.setdefault('random_encoder', 0)
    kw.setdefault('device', 'cpu')
    kw.setdefault('batch_size', 2)
    return BuildOptions(input=str(input_dir), output=str(output), k=kw.pop('k', K),
                        kmeans=KMeansOptions(max_iter=50), **kw)


@pytest.fixture(scope='module')
def built(shared_data, tmp_path_factory):
    """A K=3 build from 3 CelebA-HQ faces (flipped too) and one flat grey image."""
    root = tmp_path_factory.mktemp('dict_build')
    faces = root / 'faces'
    faces.mkdir()
    for name in FACES:
        (faces / name).symlink_to(shared_data / 'faces_hq' / 'celebahq_512' / name)
    cv2.imwrite(str(faces / 'grey.png'), np.full((512, 512, 3), 128, np.uint8))
    options = make_options(faces, root / 'out')
    summary = build_dictionary(options)
    return options, summary


def test_layout_shapes_and_dtype(built):
    options, summary = built
    out = Path(options.output)
    layout = GeneratorConfig().dictionary_layout()
    assert len(layout) == 16
    for (part, fsize), (channels, side) in layout.items():
        atoms = np.load(out / dictionary_file_name(part, fsize))
        assert atoms.dtype == np.float32
        assert atoms.shape == (K, channels, side, side)
        assert np.all(np.isfinite(atoms))
        flat = atoms.reshape(K, -1)
        assert all(np.abs(flat[i] - flat[j]).max() > 0 for i in range(K) for j in range(i))  # distinct atoms
    assert summary.faces_used == 3 and summary.samples == 6


def test_metadata_lists_the_skipped_grey_image(built):
    options, _ = built
    meta = json.loads((Path(options.output) / 'dictionary.json').read_text())
    assert meta['K'] == K and meta['faces_used'] == 3 and meta['samples_per_dictionary'] == 6
    assert meta['skipped'] == [['grey.png', 0, 'no_face']]
    assert meta['random_encoder'] is True and meta['encoder']['random_seed'] == 0
    _, _, info = load_encoder(random_seed=0)
    assert meta['encoder']['weights_sha256'] == info.weights_sha256
    assert meta['seed'] == 0 and meta['flip_augmentation'] is True and meta['date'].startswith('20')
    assert meta['layout']['mouth_256_center.npy'] == [K, 128, 55, 55]
    assert meta['options']['k'] == K
    cache = LandmarkCache.load(meta['landmark_cache'])
    assert cache.counts()['ok'] == 3 and cache.get('grey.png').flag == 'no_face'
    assert cache.landmarks('0000.jpg').shape == (68, 2)


def test_centres_are_the_means_of_their_clusters(built):
    """The atoms are Lloyd fixed points of the cached features (float16 cache, float32 means)."""
    options, _ = built
    feats = np.load(options.cache_folder() / 'features' / 'nose_32.npy').astype(np.float32)
    atoms = np.load(Path(options.output) / 'nose_32_center.npy').reshape(K, -1)
    labels = ((feats[:, None] - atoms[None]) ** 2).sum(-1).argmin(1)
    for k in range(K):
        np.testing.assert_allclose(feats[labels == k].mean(0), atoms[k], rtol=1e-3, atol=1e-3)


def test_flipped_left_eye_is_the_right_eye_of_the_mirrored_face(built, shared_data):
    options, _ = built
    cache = LandmarkCache.load(options.landmark_cache_path())
    face = cv2.cvtColor(cv2.imread(str(shared_data / 'faces_hq' / 'celebahq_512' / '0001.jpg')), cv2.COLOR_BGR2RGB)
    points = cache.landmarks('0001.jpg')
    # the flipped sample's left-eye box, mirrored back, lies on the original right eye
    flipped_left = component_boxes(flip_landmarks(points, 512), 512)[0]
    mirrored_back = np.array([511 - flipped_left[2], flipped_left[1], 511 - flipped_left[0], flipped_left[3]])
    right = component_boxes(points, 512)[1]
    assert np.abs(mirrored_back - right).max() <= 2
    # row 1 * 2 + 1 of the cache is face 0001 mirrored; its left eye == left eye of the mirrored file
    encoder, config, _ = load_encoder(random_seed=0)
    mirrored = extract_samples(encoder, [np.ascontiguousarray(face[:, ::-1])], [flip_landmarks(points, 512)],
                               config, flip=False)
    for part, fsize in [('left_eye', 32), ('right_eye', 64), ('mouth', 128)]:
        cached = np.load(options.cache_folder() / 'features' / f'{part}_{fsize}.npy')
        expected = mirrored[(part, fsize)][0][0].numpy().reshape(-1)
        np.testing.assert_allclose(cached[3].astype(np.float32), expected, rtol=2e-3, atol=2e-3)
        assert not np.allclose(cached[2].astype(np.float32), expected, rtol=0.05, atol=0.05)


def test_generator_loads_the_built_dictionary(built):
    options, _ = built
    bank = load_dictionaries(options.output, GeneratorConfig().dictionary_layout())
    assert bank.num_atoms == K
    model = DFDNetGenerator(GeneratorConfig())  # the released layout; set_dictionaries checks it
    model.set_dictionaries(bank)
    assert model.dictionaries.num_atoms == K
    assert model.dictionaries.atoms('mouth', 256).shape == (K, 128, 55, 55)


def _forbid(*_, **__):
    raise AssertionError('this stage should have been reused from the cache')


def test_rebuild_with_other_k_reuses_landmarks_and_features(built, tmp_path, monkeypatch):
    options, _ = built
    monkeypatch.setattr(builder_module, 'extract_samples', _forbid)
    monkeypatch.setattr(folder_landmarks_module, 'FaceLandmarker', _forbid)
    out = tmp_path / 'k2'
    summary = build_dictionary(make_options(options.input, out, k=2, cache_dir=str(options.cache_folder())))
    assert summary.faces_used == 3
    assert np.load(out / 'nose_64_center.npy').shape == (2, 512, 6, 6)


def test_k_larger_than_the_crops_is_an_error(built, tmp_path, monkeypatch):
    options, _ = built
    monkeypatch.setattr(builder_module, 'extract_samples', _forbid)
    with pytest.raises(DictionaryBuildError, match=r'K=7 is larger than .*3 faces x 2 view\(s\) = 6'):
        build_dictionary(make_options(options.input, tmp_path / 'k7', k=7, cache_dir=str(options.cache_folder())))


def test_interrupted_feature_run_resumes(built, tmp_path, monkeypatch):
    options, _ = built
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    shutil.copy(options.landmark_cache_path(), cache_dir / 'landmarks.npz')
    run = make_options(options.input, tmp_path / 'out', k=2, max_faces=3, flip=False, batch_size=1,
                       cache_dir=str(cache_dir))
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return extract_samples(*args, **kwargs)

    monkeypatch.setattr(builder_module, 'extract_samples', interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        build_dictionary(run)
    assert not (tmp_path / 'out' / 'dictionary.json').exists()
    calls.clear()
    monkeypatch.setattr(builder_module, 'extract_samples', lambda *a, **k: calls.append(1) or extract_samples(*a, **k))
    summary = build_dictionary(run)
    assert len(calls) == 2 and summary.faces_used == 3  # face 0 was kept, faces 1 and 2 computed
    # the resumed rows are the unflipped rows of the first build
    resumed = np.load(cache_dir / 'features' / 'right_eye_64.npy').astype(np.float32)
    first = np.load(options.cache_folder() / 'features' / 'right_eye_64.npy').astype(np.float32)
    np.testing.assert_allclose(resumed, first[0:6:2], rtol=2e-3, atol=2e-3)


def test_no_encoder_is_an_error_and_two_are_too(tmp_path):
    with pytest.raises(ValueError, match='exactly one source.*got none'):
        load_encoder()
    with pytest.raises(ValueError, match='exactly one source'):
        load_encoder(vgg='a.pth', random_seed=1)


def test_checkpoint_and_vgg_encoders_load_their_weights(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    checkpoint = write_random_generator(tmp_path / 'g.pth', config=GeneratorConfig(width=8))
    encoder, config, info = load_encoder(checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=True)['params']
    torch.testing.assert_close(encoder.vgg_net.conv3_2.weight, state['vgg_extractor.vgg_net.conv3_2.weight'])
    assert info.source == 'checkpoint' and len(info.file_sha256) == 64 and not info.is_random
    torch.manual_seed(3)
    # torchvision's layout; the classifier (120 M parameters) is left out: the loader ignores it
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
    torch.save({f'features.{k}': v for k, v in features.state_dict().items()}, tmp_path / 'vgg19.pth')
    encoder, _, info = load_encoder(vgg=tmp_path / 'vgg19.pth')
    torch.testing.assert_close(encoder.vgg_net.conv5_4.weight, features[34].weight)
    assert info.source == 'vgg'


def test_held_out_folders_are_skipped(tmp_path, shared_data, caplog):
    for folder in ('celeba', 'ffhq_gpen'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'a.jpg').symlink_to(shared_data / 'faces_hq' / 'celebahq_512' / '0000.jpg')
    assert [p.relative_to(tmp_path).as_posix() for p in list_dictionary_images(tmp_path)] == ['celeba/a.jpg']
    assert 'held-out' in caplog.text


def test_cli_with_options_file_and_overrides(built, tmp_path, monkeypatch, capsys):
    options, _ = built
    monkeypatch.setattr(builder_module, 'extract_samples', _forbid)
    parsed = load_options(ROOT / 'options' / 'build_dictionary.yml')
    assert parsed.k == 256 and parsed.flip and parsed.max_faces == 10000 and parsed.checkpoint
    out = tmp_path / 'cli'
    code = cli_main(['-opt', str(ROOT / 'options' / 'build_dictionary.yml'), '--input', options.input,
                     '--output', str(out), '--k', '2', '--random_encoder', '0', '--gpu_ids', '-1',
                     '--cache_dir', str(options.cache_folder()), '--max_faces', '3'])
    assert code == 0
    assert 'from 3 faces' in capsys.readouterr().out
    meta = json.loads((out / 'dictionary.json').read_text())
    assert meta['K'] == 2 and meta['options']['checkpoint'] is None and meta['random_encoder']
    # no encoder anywhere: a clear error, nothing written
    assert cli_main(['--input', options.input, '--output', str(tmp_path / 'none'), '--k', '2']) == 2
    assert not (tmp_path / 'none').exists()


def test_align_photo_with_two_faces(shared_data, tmp_path):
    photos = tmp_path / 'photos'
    photos.mkdir()
    (photos / 'couple.jpg').symlink_to(shared_data / 'faces_wild_hq' / 'couple.jpg')
    run = make_options(photos, tmp_path / 'out', k=2, flip=False)
    run.faces.align = True
    summary = build_dictionary(run)
    cache = LandmarkCache.load(run.landmark_cache_path())
    assert [(e.path, e.face_index, e.flag) for e in cache] == [('couple.jpg', 0, 'ok'), ('couple.jpg', 1, 'ok')]
    assert summary.faces_used == 2
    for entry in cache:  # the aligned eyes sit where the template puts them
        boxes = component_boxes(entry.landmarks, 512)
        eye_centres = (boxes[:2, :2] + boxes[:2, 2:]) / 2
        np.testing.assert_allclose(eye_centres[:, 1], 245, atol=25)
        assert eye_centres[0, 0] < 256 < eye_centres[1, 0]
    assert np.load(tmp_path / 'out' / f'{PART_NAMES[3]}_32_center.npy').shape == (2, 512, 6, 6)


@pytest.fixture
def fast_features(monkeypatch):
    """One random-encoder load for the whole test, and features drawn from a seed taken from each
    face (deterministic, no VGG pass); returns the list of faces extracted."""
    loaded = load_encoder(random_seed=0)
    monkeypatch.setattr(builder_module, 'load_encoder', lambda *a, **k: loaded)
    extracted = []

    def fake_samples(encoder, faces, landmarks, config, flip, device='cpu', precision='fp32'):
        extracted.extend(faces)
        views = [face[:, ::-1] if v else face for face in faces for v in range(1 + flip)]
        out = {}
        for key, (_, channels, side) in feature_layout(config).items():
            crops = [torch.from_numpy(np.random.default_rng([int(view[::16, ::16].sum()), side]).standard_normal(
                (channels, side, side), dtype=np.float32)) for view in views]
            out[key] = (torch.stack(crops), torch.ones(len(views), dtype=torch.bool))
        return out

    monkeypatch.setattr(builder_module, 'extract_samples', fake_samples)
    return extracted


def test_truncated_feature_cache_is_recomputed_without_a_zero_atom(built, tmp_path, fast_features, caplog):
    """The memmap used to zero-extend a truncated feature file: with K = 2 faces, an all-zero atom."""
    options, _ = built
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    shutil.copy(options.landmark_cache_path(), cache_dir / 'landmarks.npz')
    run = make_options(options.input, tmp_path / 'first', k=2, max_faces=2, flip=False, cache_dir=str(cache_dir))
    build_dictionary(run)
    first = np.load(tmp_path / 'first' / 'nose_32_center.npy')
    path = cache_dir / 'features' / 'nose_32.npy'
    os.truncate(path, os.path.getsize(path) - first[0].size * 2)  # the second face's float16 row
    fast_features.clear()
    run.output = str(tmp_path / 'second')  # another output: clustered again from the cache
    with caplog.at_level(logging.WARNING):
        build_dictionary(run)
    assert f'{path}: truncated feature cache file' in caplog.text and len(fast_features) == 2
    for name in GeneratorConfig().dictionary_layout():
        atoms = np.load(tmp_path / 'second' / dictionary_file_name(*name)).reshape(2, -1)
        assert np.abs(atoms).max(axis=1).min() > 0, name
    np.testing.assert_array_equal(np.load(tmp_path / 'second' / 'nose_32_center.npy'), first)


def test_damaged_centre_file_and_clustering_record_are_redone(built, tmp_path, fast_features, monkeypatch, caplog):
    options, _ = built
    cache_dir = tmp_path / 'cache'
    shutil.copytree(options.cache_folder(), cache_dir)
    clustered = []
    monkeypatch.setattr(builder_module, 'kmeans', lambda *a, **k: clustered.append(k['desc']) or kmeans(*a, **k))
    run = make_options(options.input, tmp_path / 'out', k=2, cache_dir=str(cache_dir))
    build_dictionary(run)
    target = tmp_path / 'out' / 'nose_32_center.npy'
    expected = np.load(target)
    os.truncate(target, os.path.getsize(target) - 8)
    clustered.clear()
    with caplog.at_level(logging.WARNING):
        build_dictionary(run)
    assert f'{target}: truncated dictionary file' in caplog.text
    assert clustered == ['nose_32_center.npy']  # the others were intact and reused
    np.testing.assert_array_equal(np.load(target), expected)
    record = cache_dir / 'clustering.json'
    os.truncate(record, os.path.getsize(record) // 2)
    clustered.clear()
    with caplog.at_level(logging.WARNING):
        build_dictionary(run)
    assert f'{record}: truncated or corrupt clustering record (JSONDecodeError' in caplog.text
    assert len(clustered) == 16 and not fast_features  # the features were reused throughout


def test_truncated_landmark_cache_stops_the_build_naming_it(built, tmp_path, caplog):
    options, _ = built
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    data = options.landmark_cache_path().read_bytes()
    (cache_dir / 'landmarks.npz').write_bytes(data[:len(data) // 2])
    code = cli_main(['--input', options.input, '--output', str(tmp_path / 'out'), '--k', '2', '--random_encoder',
                     '0', '--gpu_ids', '-1', '--cache_dir', str(cache_dir)])
    assert code == 2
    assert f'{cache_dir / "landmarks.npz"}: truncated or corrupt landmark cache (BadZipFile' in caplog.text
    assert not (tmp_path / 'out' / 'dictionary.json').exists()


def test_every_command_line_flag_is_a_build_option():
    """The command's flags are checked against BuildOptions: each one names a field (one declaration)."""
    import dataclasses
    import typing

    from dfdnet.cli.build_dictionary import overrides_from_args, parse_args
    from dfdnet.dictionary.options import BuildOptions

    args = parse_args(['--input', 'a', '--output', 'b', '--k', '8', '--max_faces', '3', '--align', '--no_flip',
                       '--landmarks_dir', 'l', '--cache_dir', 'c', '--batch_size', '2', '--gpu_ids', '-1',
                       '--seed', '5', '--precision', 'bf16', '--max_rows_per_atom', '40'])
    overrides = overrides_from_args(args)
    assert all(value is not None for value in overrides.values()), 'every flag was given'
    for key in overrides:
        cls = BuildOptions
        *sections, leaf = key.split('.')
        for section in sections:
            cls = typing.get_type_hints(cls)[section]
        assert leaf in typing.get_type_hints(cls), key
    encoder_flags = {'checkpoint', 'vgg', 'random_encoder'}
    assert encoder_flags <= {f.name for f in dataclasses.fields(BuildOptions)}


def test_bf16_features_are_float32_crops_close_to_fp32(shared_data):
    """The encoder pass in bf16 (the shipped model's encoder: width 16, 256-px core): the crops come
    back float32 and within a few per cent of the fp32 ones; a wrong precision is refused."""
    from dfdnet.face.landmarks import DlibLandmarker, aligned_face_landmarks
    from dfdnet.pipeline.photo import shipped_model_dir
    from dfdnet.utils.image_io import read_rgb

    encoder, config, _ = load_encoder(checkpoint=shipped_model_dir() / 'net_g.pth')
    face = read_rgb(shared_data / 'faces_hq' / 'celebahq_512' / FACES[0])
    points = aligned_face_landmarks(face, DlibLandmarker(68))
    fp32 = extract_samples(encoder, [face], [points], config, flip=False)
    bf16 = extract_samples(encoder, [face], [points], config, flip=False, precision='bf16')
    assert fp32.keys() == bf16.keys()
    for key, (crops, valid) in fp32.items():
        assert bf16[key][0].dtype == torch.float32 and bool(valid.all())
        relative = (bf16[key][0] - crops).norm() / crops.norm()
        assert 0 < relative < 0.05, (key, float(relative))
    with pytest.raises(ValueError, match='precision'):
        make_options('in', 'out', precision='int8').validate()


def test_two_ranks_build_the_dictionaries_of_one(built, tmp_path):
    """torchrun with 2 CPU ranks (gloo): each extracts its share of the sample and clusters half of the
    16 dictionaries; the atoms are those of the one-process build (up to order, within 1 %)."""
    import subprocess
    import sys

    options, _ = built
    cache = tmp_path / 'cache'
    cache.mkdir()
    shutil.copy(options.landmark_cache_path(), cache / 'landmarks.npz')  # the landmarks are not the point here
    (tmp_path / 'build.yml').write_text('kmeans:\n  max_iter: 50\n')
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
               str(ROOT / 'build_dictionary.py'), '-opt', str(tmp_path / 'build.yml'), '--input', options.input,
               '--output', str(tmp_path / 'out'), '--k', str(K), '--random_encoder', '0', '--gpu_ids', '-1',
               '--batch_size', '2', '--cache_dir', str(cache)]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in cache.glob('features_*')) == ['features_0of2', 'features_1of2']
    meta = json.loads((tmp_path / 'out' / 'dictionary.json').read_text())
    assert meta['ranks'] == 2 and meta['faces_used'] == 3 and len(meta['kmeans']) == 16
    for (part, fsize) in GeneratorConfig().dictionary_layout():
        name = dictionary_file_name(part, fsize)
        one = np.load(Path(options.output) / name).reshape(K, -1)
        two = np.load(tmp_path / 'out' / name).reshape(K, -1)
        for atom in one:  # each atom has a twin among the other build's, within 1 % of its norm
            assert np.linalg.norm(two - atom, axis=1).min() <= 0.01 * np.linalg.norm(atom), name


def test_the_sample_is_seeded_bounded_and_the_plan_fits_ffhq(capsys):
    from dfdnet.dictionary.sharding import sample_entries

    entries = list(range(1000))
    sample = sample_entries(entries, views=2, k=8, max_rows_per_atom=48, seed=0)
    assert len(sample) * 2 <= 48 * 8 and sample == sorted(sample) == sample_entries(entries, 2, 8, 48, 0)
    assert sample != sample_entries(entries, 2, 8, 48, 1) and sample_entries(entries, 2, 8, 0, 0) == entries
    assert cli_main(['--plan', '70000', '--k', '512', '--gpu_ids', '-1']) == 0
    disk = next(line for line in capsys.readouterr().out.splitlines() if 'disk' in line)
    assert 'GB' in disk and float(disk.split()[1]) <= 100
