"""Loading generator checkpoints: released, BasicSR and own formats; strictness; bad files."""
import copy
import re

import pytest
import torch

from conftest import make_random_released_model, mapped_rss, write_random_dictionaries
from dfdnet import CheckpointError, GeneratorConfig, load_generator
from dfdnet.archs.checkpoint import generator_to_load, load_state_strict, read_checkpoint, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator
from dfdnet.archs.vgg import VGGEncoder, load_vgg_weights

_CODES = {'le': 'left_eye', 're': 'right_eye', 'no': 'nose', 'mo': 'mouth'}
_VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
_VGG19_NAMES = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv3_4',
                'conv4_1', 'conv4_2', 'conv4_3', 'conv4_4', 'conv5_1', 'conv5_2', 'conv5_3', 'conv5_4']


@pytest.fixture(scope='module')
def released_state():
    return make_random_released_model(seed=1).state_dict()


@pytest.fixture(scope='module')
def released_file(released_state, tmp_path_factory):
    """``released_state`` saved once (~1 GB, several seconds to write) for the tests that only read it."""
    path = tmp_path_factory.mktemp('released') / 'latest_net_G.pth'
    torch.save(released_state, path)
    return path


@pytest.fixture(scope='module')
def dict_dir(tmp_path_factory):
    return write_random_dictionaries(tmp_path_factory.mktemp('d') / 'dicts', num_atoms=3)


def to_basicsr(state):
    """Reference §2.3 renames, applied independently of the project's converter."""
    out = {}
    for key, value in state.items():
        if key.startswith(('VggExtract.model.classifier', 'VggExtract.features', 'to_rgb')) or re.match(r'up\d\.conv1\.0\.', key):
            continue
        key = key.replace('VggExtract.RGB_mean', 'vgg_extractor.mean').replace('VggExtract.RGB_std', 'vgg_extractor.std')
        m = re.match(r'VggExtract\.model\.features\.(\d+)\.(.*)', key)
        if m:
            key = f'vgg_extractor.vgg_net.{_VGG19_NAMES[_VGG19_CONVS.index(int(m[1]))]}.{m[2]}'
        m = re.match(r'(le|re|no|mo)_(\d+)\.(.*)', key)
        if m:
            key = f'attn_blocks.{_CODES[m[1]]}_{m[2]}.{m[3]}'
        m = re.match(r'MSDilate\.conv(\d)\.(.*)', key)
        if m:
            key = f'multi_scale_dilation.conv_blocks.{int(m[1]) - 1}.{m[2]}'
        key = key.replace('MSDilate.convi', 'multi_scale_dilation.conv_fusion')
        key = key.replace('ScaleModel1', 'scale_block').replace('ShiftModel1', 'shift_block')
        key = re.sub(r'^up4\.([23])\.Model', r'upsample4.\1.body', key)
        key = re.sub(r'^up(\d)', r'upsample\1', key)
        out[key] = value
    return out


def test_released_layout_has_386_keys(released_state):
    assert len(released_state) == 386
    buffers = re.compile(r'(weight_u|weight_v)$|^up\d\.conv1\.0\.|^VggExtract\.features\.')
    assert sum(v.numel() for k, v in released_state.items() if not buffers.search(k)) == 240_117_181


def test_released_checkpoint_loads_every_tensor(released_file, released_state, dict_dir):
    path = released_file
    state, config, fmt = read_checkpoint(path)
    assert fmt == 'released' and config == GeneratorConfig()
    del state  # ~1 GB: keep the suite within its memory budget
    model = load_generator(path, dict_dir, fold_spectral_norm=False)
    assert not model.training
    ours = model.state_dict()
    assert torch.equal(ours['vgg_extractor.vgg_net.conv5_4.weight'], released_state['VggExtract.model.features.34.weight'])
    assert torch.equal(ours['vgg_extractor.mean'], released_state['VggExtract.RGB_mean'])
    assert torch.equal(ours['attn_blocks.mouth_64.2.weight_v'], released_state['mo_64.2.weight_v'])
    assert torch.equal(ours['multi_scale_dilation.conv_blocks.3.0.weight_orig'], released_state['MSDilate.conv4.0.weight_orig'])
    assert torch.equal(ours['upsample2.shift_block.2.bias'], released_state['up2.ShiftModel1.2.bias'])
    assert torch.equal(ours['upsample4.3.body.2.weight'], released_state['up4.3.Model.2.weight'])
    assert torch.equal(ours['upsample4.4.weight'], released_state['up4.4.weight'])
    # a second load with another random init gives the same tensors: nothing random is left
    torch.manual_seed(12345)
    fresh = load_generator(path, dict_dir, fold_spectral_norm=False).state_dict()
    for key, value in fresh.items():
        assert torch.equal(value, ours[key]), key
    assert len(ours) == 386 - 6 - 32 - 32 - 8  # minus classifier, duplicates, to_rgb, blur buffers


def test_unused_released_tensors_are_never_read(released_file, dict_dir):
    """The checkpoint is mapped, not read: after the network's tensors are copied out of it, the
    file's pages in this process are those tensors' (the unused classifier, duplicate encoder and
    to_rgb layers, half the file, are never paged in), and a load leaves no mapping behind."""
    state, _, _ = read_checkpoint(released_file)
    model = generator_to_load(GeneratorConfig())
    load_state_strict(model, state)
    used = sum(v.numel() * v.element_size() for v in state.values())
    assert released_file.stat().st_size - used > 400e6  # what a read would add
    assert used * 0.95 < mapped_rss(released_file) < used + 16e6
    del state, model
    load_generator(released_file, dict_dir)
    assert mapped_rss(released_file) == 0


def test_module_prefix_is_accepted(tmp_path, released_state):
    # Some of the released keys (loading all of them is test_released_checkpoint_loads_every_tensor's):
    # read_checkpoint strips DDP's prefix before it recognises and converts the layout.
    keys = ['VggExtract.RGB_mean', 'VggExtract.model.features.34.weight', 'up0.conv1.1.weight_orig', 'mo_64.2.weight_v']
    path = tmp_path / 'ddp.pth'
    torch.save({f'module.{k}': released_state[k] for k in keys}, path)
    state, config, fmt = read_checkpoint(path)
    assert fmt == 'released' and config == GeneratorConfig()
    assert torch.equal(state['upsample0.conv1.1.weight_orig'], released_state['up0.conv1.1.weight_orig'])
    assert torch.equal(state['vgg_extractor.vgg_net.conv5_4.weight'], released_state['VggExtract.model.features.34.weight'])
    assert len(state) == len(keys)


def test_missing_and_unexpected_keys_are_listed(tmp_path, released_state, dict_dir):
    broken = dict(released_state)
    del broken['up3.convup.1.bias']
    broken['up9.extra.weight'] = torch.zeros(1)
    path = tmp_path / 'broken.pth'
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as info:
        load_generator(path, dict_dir)
    message = str(info.value)
    assert str(path) in message
    assert 'upsample3.convup.1.bias' in message and 'up9.extra.weight' in message


def test_wrong_shape_is_an_error(tmp_path, released_state, dict_dir):
    broken = dict(released_state)
    broken['up4.4.weight'] = torch.zeros(3, 64, 1, 1)
    torch.save(broken, tmp_path / 'shape.pth')
    with pytest.raises(CheckpointError, match='size mismatch'):
        load_generator(tmp_path / 'shape.pth', dict_dir)


def test_blur_buffers_are_checked(tmp_path, released_state, dict_dir):
    broken = dict(released_state)
    broken['up1.conv1.0.weight'] = torch.ones_like(broken['up1.conv1.0.weight'])
    torch.save(broken, tmp_path / 'blur.pth')
    with pytest.raises(CheckpointError, match='blur'):
        load_generator(tmp_path / 'blur.pth', dict_dir)


def test_basicsr_layout(tmp_path, released_state, released_file, dict_dir):
    basicsr = to_basicsr(released_state)
    torch.save({'params': basicsr}, tmp_path / 'DFDNet_official-d1fa5650.pth')
    del basicsr
    a = load_generator(tmp_path / 'DFDNet_official-d1fa5650.pth', dict_dir, fold_spectral_norm=False).state_dict()
    b = load_generator(released_file, dict_dir, fold_spectral_norm=False).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_own_format_round_trip_keeps_config(tmp_path):
    # every field the file carries (a narrow width keeps the test fast; the layout is width-independent)
    config = GeneratorConfig(dft_levels=(2, 3), use_confidence=False, width=16)
    dicts = write_random_dictionaries(tmp_path / 'dicts', num_atoms=3, config=config)
    torch.manual_seed(3)
    model = DFDNetGenerator(config)
    save_generator(model, tmp_path / 'own.pth', iteration=7)
    state, loaded_config, fmt = read_checkpoint(tmp_path / 'own.pth')
    assert fmt == 'dfdnet-generator' and loaded_config == config
    loaded = load_generator(tmp_path / 'own.pth', dicts, fold_spectral_norm=False)
    assert loaded.config == config and sorted(loaded.attn_blocks) == sorted(model.attn_blocks)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert load_generator(tmp_path / 'own.pth', dicts).spectral_norm_folded  # inference folds by default


@pytest.mark.parametrize('content', [None, b'', b'not a checkpoint at all', 'truncated'])
def test_bad_checkpoint_files_name_the_path(tmp_path, released_file, dict_dir, content):
    path = tmp_path / 'latest_net_G.pth'
    if content == 'truncated':
        with open(released_file, 'rb') as fh:
            path.write_bytes(fh.read(released_file.stat().st_size // 3))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_generator(path, dict_dir)
    assert str(path) in str(info.value)


def test_not_a_generator(tmp_path, dict_dir):
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match='not a DFDNet generator'):
        load_generator(tmp_path / 'other.pth', dict_dir)


def test_vgg_weights_file(tmp_path):
    """torchvision-layout VGG19 and name-keyed VGG-Face files load into the encoders."""
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.vgg19()
    torch.save(tv.state_dict(), tmp_path / 'vgg19.pth')
    enc = VGGEncoder('vgg19')
    load_vgg_weights(enc, tmp_path / 'vgg19.pth')
    assert torch.equal(enc.vgg_net.conv4_4.weight, tv.features[25].weight)

    face = VGGEncoder('vggface')
    named = {f'{k}': v.clone() + 1 for k, v in face.vgg_net.state_dict().items()}
    named['fc6.weight'] = torch.zeros(4096, 10)
    torch.save(named, tmp_path / 'vgg_face_dag.pth')
    load_vgg_weights(face, tmp_path / 'vgg_face_dag.pth')
    assert torch.equal(face.vgg_net.conv5_3.bias, named['conv5_3.bias'])
    assert face.taps == ('relu2_2', 'relu3_3', 'relu4_3', 'conv5_3')
    del named['conv3_3.weight']
    torch.save(named, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError, match='conv3_3.weight'):
        load_vgg_weights(face, tmp_path / 'bad.pth')


def test_folded_spectral_norm_is_the_eval_weight(tmp_path, released_file, dict_dir):
    plain = load_generator(released_file, dict_dir, fold_spectral_norm=False)
    folded = copy.deepcopy(plain).fold_spectral_norm()  # what load_generator does by default
    assert folded.spectral_norm_folded and not any(k.endswith('weight_orig') for k in folded.state_dict())
    x = torch.randn(2, 512, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name in ('attn_blocks.nose_32', 'multi_scale_dilation.conv_blocks.0'):
            a, b = plain.get_submodule(name), folded.get_submodule(name)
            torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-6)  # float rounding of W / sigma only
    with pytest.raises(ValueError, match='folded'):
        save_generator(folded, tmp_path / 'no.pth')
