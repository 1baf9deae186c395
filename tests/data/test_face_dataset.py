"""Training data: the on-the-fly face dataset, the resumable sampler, the fixed validation set, options."""
import numpy as np
import pytest
import torch
import yaml

from dfdnet.data.degradation_pipeline import DegradationConfig, DegradationPipeline
from dfdnet.data.face_dataset import EpochSampler, FaceDataset, build_train_loader, load_landmarks, \
    split_train_val
from dfdnet.data.validation_set import ValidationDataset, make_validation_set
from dfdnet.face.components import component_boxes
from dfdnet.utils.image_io import list_face_images
from dfdnet.models.options import OptionsError, parse_options

SIZE = 256


@pytest.fixture(scope='module')
def realvgg(shared_data):
    """(files, landmarks) of the 13 released test faces with their 68-point .txt files."""
    files = list_face_images(shared_data / 'faces_lq' / 'dfdnet_realvgg')
    landmarks = load_landmarks(files, shared_data / 'faces_lq' / 'dfdnet_realvgg_landmarks')
    assert len(landmarks) == len(files) == 13
    return files, landmarks


def _dataset(realvgg, flip_prob=0.5, seed=0):
    files, landmarks = realvgg
    return FaceDataset(files[:4], landmarks, SIZE, DegradationPipeline(DegradationConfig()), flip_prob, seed)


def test_landmarks_from_a_cache_file(realvgg, tmp_path):
    from dfdnet.data.landmark_cache import LandmarkCache

    files, landmarks = realvgg
    cache = LandmarkCache(files[0].parent, face_size=512, model='txt')
    for f in files[:3]:
        cache.add(f, landmarks[f])
    cache.add(files[3], flag='no_face')
    cache.save(tmp_path / 'landmarks.npz')
    loaded = load_landmarks(files[:5], tmp_path / 'landmarks.npz', landmark_size=512)
    assert sorted(loaded) == sorted(files[:3])  # no_face and unknown faces are left out
    assert all(np.allclose(loaded[f], landmarks[f]) for f in files[:3])
    with pytest.raises(ValueError, match='256-px|512-px'):
        load_landmarks(files[:3], tmp_path / 'landmarks.npz', landmark_size=256)


def test_sample_shapes_ranges_and_determinism(realvgg):
    ds = _dataset(realvgg)
    sample = ds[1]
    assert sample['lq'].shape == sample['gt'].shape == (3, SIZE, SIZE)
    assert sample['lq'].dtype == torch.float32 and sample['boxes'].dtype == torch.int64
    assert sample['boxes'].shape == (4, 4)
    for key in ('lq', 'gt'):
        assert -1.0 <= sample[key].min() and sample[key].max() <= 1.0
    again = ds[1]
    assert torch.equal(sample['lq'], again['lq']) and torch.equal(sample['boxes'], again['boxes'])
    next_epoch = ds[1 + len(ds)]  # same face, next epoch: new random degradation
    assert next_epoch['path'] == sample['path'] and not torch.equal(next_epoch['lq'], sample['lq'])


def test_flip_mirrors_image_and_swaps_eye_boxes(realvgg):
    plain, flipped = _dataset(realvgg, flip_prob=0.0)[0], _dataset(realvgg, flip_prob=1.0)[0]
    assert torch.equal(flipped['gt'], plain['gt'].flip(-1))
    files, landmarks = realvgg
    boxes = component_boxes(np.asarray(landmarks[files[0]]) * SIZE / 512, SIZE)
    assert torch.equal(plain['boxes'], torch.from_numpy(boxes))
    # the image's left eye after flipping is the mirrored right eye
    left_after, right_before = flipped['boxes'][0].numpy(), boxes[1]
    mirrored_right = np.array([SIZE - 1 - right_before[2], right_before[1],
                               SIZE - 1 - right_before[0], right_before[3]])
    assert np.abs(left_after - mirrored_right).max() <= 2


def test_epoch_sampler_resume_skips_exactly(realvgg):
    ds = _dataset(realvgg)
    sampler = EpochSampler(ds, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    assert sorted(i - 2 * len(ds) for i in full) == list(range(len(ds)))
    sampler.set_start(3)
    assert list(sampler) == full[3:]
    assert list(sampler) == full  # the skip applies to one pass only
    ranks = [list(EpochSampler(ds, num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and len(ranks[0]) == len(ranks[1]) == 2


def test_loader_with_worker_matches_in_process(realvgg):
    ds = _dataset(realvgg)
    batches = []
    for workers in (0, 1):
        loader = build_train_loader(ds, EpochSampler(ds, seed=1), batch_size=2, num_workers=workers,
                                    pin_memory=False, persistent_workers=False)
        batches.append(next(iter(loader)))
    assert torch.equal(batches[0]['lq'], batches[1]['lq']) and torch.equal(batches[0]['boxes'], batches[1]['boxes'])


def test_validation_set_made_once_and_reused(realvgg, tmp_path):
    files, landmarks = realvgg
    train, val = split_train_val(files, val_count=2)
    assert val == files[-2:] and not set(train) & set(val)
    folder = make_validation_set(tmp_path / 'val', val, landmarks, SIZE, DegradationConfig(), seed=5)
    first = ValidationDataset(folder)
    assert len(first) == 2
    stamp = (folder / 'manifest.json').stat().st_mtime_ns
    make_validation_set(tmp_path / 'val', val, landmarks, SIZE, DegradationConfig(), seed=5)  # reused as it is
    assert (folder / 'manifest.json').stat().st_mtime_ns == stamp
    again = make_validation_set(tmp_path / 'val2', val, landmarks, SIZE, DegradationConfig(), seed=5)
    assert torch.equal(ValidationDataset(again)[0]['lq'], first[0]['lq'])  # seeded: identical
    sample = first[1]
    assert sample['lq'].shape == (3, SIZE, SIZE) and sample['boxes'].shape == (4, 4)
    with pytest.raises(ValueError, match='other settings'):
        make_validation_set(tmp_path / 'val', val, landmarks, SIZE, DegradationConfig(), seed=6)


SMOKE = 'options/train_smoke.yml'


def test_options_parse_validate_and_override(tmp_path):
    options, resolved = parse_options(SMOKE, ['train.total_iter=7', 'generator.crop_mode=slice'])
    assert options.name == 'dfdnet_smoke' and options.train.total_iter == 7
    assert options.generator.crop_mode == 'slice' and options.generator.part_sizes == (40, 40, 32, 56)
    assert options.train_data.degradation.scale == (1.0, 8.0)
    assert resolved['train']['total_iter'] == 7
    # the resolved dict parses back to the same options
    (tmp_path / 'resolved.yml').write_text(yaml.safe_dump(resolved))
    assert parse_options(tmp_path / 'resolved.yml')[0] == options
    with pytest.raises(OptionsError, match=r'train\.totl_iter'):
        parse_options(SMOKE, ['train.totl_iter=3'])
    with pytest.raises(OptionsError, match=r'train\.total_iter: expected an integer'):
        parse_options(SMOKE, ['train.total_iter=many'])
    with pytest.raises(OptionsError, match='crop_mode'):
        parse_options(SMOKE, ['generator.crop_mode=nearest'])
    with pytest.raises(OptionsError, match='no encoder weights'):
        parse_options(SMOKE, ['init.random_encoder_seed=null'])
    with pytest.raises(OptionsError, match='no dictionaries'):
        parse_options(SMOKE, ['init.random_dictionary_seed=null'])


def test_paper_options_file_parses():
    options, _ = parse_options('options/train.yml')
    assert options.train.lr_g == options.train.lr_d == 2e-4 and options.train.betas == (0.5, 0.999)
    assert options.train.pixel_weight == 100 and options.train.perceptual_weights == (0.5, 1, 2, 4)
    assert options.train.adversarial_weights == (4, 2, 1, 1) and options.discriminator.scales == (1, 2, 4, 8)
    assert options.train.lr_factor == 0.5


def test_cli_reports_option_errors(capsys):
    from dfdnet.cli.train import main

    assert main(['-opt', SMOKE, '--set', 'train.bad_key=1']) == 2
    assert 'train.bad_key' in capsys.readouterr().err
    assert main(['-opt', 'options/absent.yml']) == 2


def test_build_generator_ablations_and_refusals(tmp_path):
    from dfdnet.archs.dfdnet_arch import GeneratorConfig
    from dfdnet.models.builders import build_generator
    from dfdnet.models.options import InitOptions

    cfg = dict(image_size=SIZE, part_sizes=(40, 40, 32, 56))
    with pytest.raises(ValueError, match='no encoder weights'):
        build_generator(GeneratorConfig(**cfg), InitOptions(random_dictionary_seed=0), tmp_path, 0)
    no_dft, record = build_generator(GeneratorConfig(dft_levels=(), **cfg), InitOptions(random_encoder_seed=1),
                                     tmp_path, 0)
    assert no_dft.dictionaries is None and record == {'random_encoder_seed': 1}
    assert not any(p.requires_grad for p in no_dft.vgg_extractor.parameters())
    raw, record = build_generator(GeneratorConfig(use_cadain=False, dft_levels=(2, 3), **cfg),
                                  InitOptions(random_encoder_seed=1, random_dictionary_seed=2,
                                                 random_dictionary_atoms=3), tmp_path, 0)
    assert raw.dictionaries.standardized is False and raw.dictionaries.num_atoms == 3
    assert record['random_dictionary_seed'] == 2 and (tmp_path / 'random_dictionary_seed2').is_dir()
    # same seeds, same weights
    again, _ = build_generator(GeneratorConfig(dft_levels=(), **cfg), InitOptions(random_encoder_seed=1),
                               tmp_path, 0)
    assert all(torch.equal(a, b) for a, b in zip(no_dft.state_dict().values(), again.state_dict().values()))


def test_validation_scores_per_face_and_group(realvgg, tmp_path):
    from torch.utils.data import DataLoader

    from dfdnet.metrics import calculate_psnr
    from dfdnet.models.validation import score_generator
    from dfdnet.utils.pixels import from_network

    files, landmarks = realvgg
    _, val = split_train_val(files, val_count=4)
    config = DegradationConfig(clean_prob=0.5, clean_scale=(1.0, 1.0))  # a clean face is its GT exactly
    dataset = ValidationDataset(make_validation_set(tmp_path / 'val', val, landmarks, SIZE, config, seed=3))
    expected = ['clean' if 'clean_scale' in item['params'] else 'degraded' for item in dataset.items]
    assert set(expected) == {'clean', 'degraded'}, 'seed 3 should give both groups'

    scores = score_generator(lambda lq, boxes: lq, DataLoader(dataset, batch_size=3), keep_images=1)
    assert scores.groups == expected and len(scores.images) == 1 and not scores.recon_loss
    for i, group in enumerate(expected):
        psnr = calculate_psnr(from_network(dataset[i]['lq']), from_network(dataset[i]['gt']))
        assert scores.psnr[i] == psnr and (group == 'clean') == (psnr == float('inf'))
    for i in range(len(dataset)):  # PSNR inside the component boxes, where the dictionaries act
        lq, gt, boxes = (from_network(dataset[i]['lq']), from_network(dataset[i]['gt']),
                         dataset[i]['boxes'].numpy())
        inside = np.zeros(gt.shape[:2], dtype=bool)
        for x1, y1, x2, y2 in boxes:
            inside[y1:y2, x1:x2] = True
        mse = np.mean((lq[inside].astype(np.float64) - gt[inside]) ** 2)
        want = float('inf') if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
        assert scores.component_psnr[i] == pytest.approx(want, rel=1e-12) and 0.05 < inside.mean() < 0.3
    assert scores.means()['component_psnr'] == pytest.approx(np.mean(scores.component_psnr))
    groups = scores.group_psnr()
    assert groups['clean'] == (float('inf'), expected.count('clean'))
    assert groups['degraded'][1] == expected.count('degraded') and 15 < groups['degraded'][0] < 40
    with pytest.raises(ValueError, match='empty'):
        score_generator(lambda lq, boxes: lq, [])
