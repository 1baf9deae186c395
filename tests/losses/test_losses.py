"""Losses of the training model (Eq. 7-9) on known inputs, and the multi-scale discriminator."""
import pytest
import torch
from torch import nn

from dfdnet.archs.discriminator import ComponentDiscriminator, MultiScaleDiscriminator
from dfdnet.archs.vgg import VGGEncoder, vgg_layer_names
from dfdnet.errors import CheckpointError
from dfdnet.archs.vgg import load_vgg_encoder
from dfdnet.losses import ReconstructionLoss, feature_matching_loss, hinge_d_loss, hinge_g_loss
from dfdnet.losses.reconstruction import gram_matrix, style_loss


def test_hinge_d_loss_known_values():
    real = [torch.tensor([2.0, 0.5, -1.0]), torch.tensor([0.0])]
    fake = [torch.tensor([-2.0, 0.0, 1.0]), torch.tensor([-0.5])]
    # scale 1: relu(1 - real) = [0, .5, 2] -> mean 5/6; relu(1 + fake) = [0, 1, 2] -> mean 1
    # scale 2: relu(1 - 0) = 1; relu(1 - .5) = .5
    expected = 5 / 6 + 1 + 1 + 0.5
    assert hinge_d_loss(real, fake).item() == pytest.approx(expected)


def test_hinge_g_loss_uses_scale_weights():
    fake = [torch.full((2, 1, 4, 4), 1.0), torch.full((2, 1, 2, 2), -2.0), torch.tensor([3.0]), torch.tensor([0.5])]
    loss = hinge_g_loss(fake, (4, 2, 1, 1))
    assert loss.item() == pytest.approx(-(4 * 1.0 + 2 * -2.0 + 1 * 3.0 + 1 * 0.5))
    with pytest.raises(ValueError, match='4 adversarial weights for 3'):
        hinge_g_loss(fake[:3], (4, 2, 1, 1))


class _TwoMaps(nn.Module):
    """Feature net with known outputs: the input itself and its 2x average pool."""

    def forward(self, x):
        return [x, nn.functional.avg_pool2d(x, 2)]


def test_reconstruction_loss_known_values():
    out = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    target[0] = 1.0  # first sample off by 1 everywhere, second exact
    loss_fn = ReconstructionLoss(_TwoMaps(), pixel_weight=100.0, perceptual_weights=(0.5, 2.0))
    total, parts = loss_fn(out, target)
    # pixel MSE over the batch = 0.5; each feature map: sum of squares / (C H W), batch mean = 0.5
    assert parts['l_pix'].item() == pytest.approx(50.0)
    assert parts['l_percep'].item() == pytest.approx(0.5 * 0.5 + 2.0 * 0.5)
    assert total.item() == pytest.approx(50.0 + 1.25)
    # the perceptual net is not a sub-module (not trained, not saved with the loss)
    assert list(loss_fn.parameters()) == [] and loss_fn.state_dict() == {}


def test_reconstruction_loss_gradient_flows_only_to_output():
    encoder = VGGEncoder('vgg19')
    out = torch.rand(1, 3, 32, 32, requires_grad=True)
    total, _ = ReconstructionLoss(encoder)(out * 2 - 1, torch.zeros(1, 3, 32, 32))
    total.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_load_vgg_encoder_torchvision_layout(tmp_path):
    source = VGGEncoder('vggface')
    torch.manual_seed(3)
    for m in source.modules():
        if isinstance(m, nn.Conv2d):
            m.reset_parameters()
    names = list(source.vgg_net.state_dict())
    index = {name: i for i, name in enumerate(vgg_layer_names('vggface'))}
    tv_state = {}
    for key, value in source.vgg_net.state_dict().items():
        layer, kind = key.split('.')
        tv_state[f'features.{index[layer]}.{kind}'] = value
    tv_state['classifier.0.weight'] = torch.zeros(2, 2)  # ignored
    torch.save(tv_state, tmp_path / 'vggface.pth')
    loaded = load_vgg_encoder('vggface', tmp_path / 'vggface.pth')
    for name in names:
        assert torch.equal(loaded.vgg_net.state_dict()[name], source.vgg_net.state_dict()[name])
    assert not any(p.requires_grad for p in loaded.parameters())
    del tv_state['features.0.weight']
    torch.save(tv_state, tmp_path / 'broken.pth')
    with pytest.raises(CheckpointError, match='broken.pth.*missing'):
        load_vgg_encoder('vggface', tmp_path / 'broken.pth')
    with pytest.raises(CheckpointError, match='not found'):
        load_vgg_encoder('vggface', tmp_path / 'absent.pth')


def test_multiscale_discriminator_shapes_and_spectral_norm():
    disc = MultiScaleDiscriminator(scales=(1, 2, 4, 8), base_channels=8, num_down=3)
    outputs = disc(torch.zeros(2, 3, 256, 256))
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 32, 32), (2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(c, 'weight_orig') for c in convs)  # spectral norm after every conv


def test_psnr_pixel_loss_weighs_every_face_in_db():
    from dfdnet.losses.reconstruction import ReconstructionLoss
    from dfdnet.models.options import TrainOptions, OptionsError

    floor = 4e-5  # the MSE on [-1, 1] of a 50 dB face
    loss = ReconstructionLoss(torch.nn.Identity(), 1.0, (0.0, 0.0, 0.0, 0.0), pixel_loss='psnr', psnr_floor_db=50)
    target = torch.zeros(2, 3, 8, 8)
    output = target.clone()
    output[0] += 0.1   # a degraded face: MSE 1e-2
    output[1] += 0.01  # a nearly clean one: MSE 1e-4
    total, parts = loss(output, target)
    expected = 10 * torch.log10(torch.tensor([1e-2, 1e-4]) + floor).mean()
    assert torch.allclose(total, expected) and torch.allclose(parts['l_pix'], expected)
    output.requires_grad_(True)
    loss(output, target)[0].backward()
    per_face = output.grad.abs().flatten(1).sum(1)
    assert per_face[1] > 5 * per_face[0]  # the clean face's small error is not drowned out
    exact, _ = loss(target, target)  # the floor keeps a perfect output finite
    assert torch.isfinite(exact) and torch.allclose(exact, 10 * torch.log10(torch.tensor(floor)))
    lower = ReconstructionLoss(torch.nn.Identity(), 1.0, (0.0,) * 4, pixel_loss='psnr', psnr_floor_db=40)
    output.grad = None
    lower(output, target)[0].backward()
    per_face_40 = output.grad.abs().flatten(1).sum(1)
    assert per_face_40[1] / per_face_40[0] < per_face[1] / per_face[0]  # a lower floor weighs clean faces less
    with pytest.raises(ValueError, match='pixel_loss'):
        ReconstructionLoss(torch.nn.Identity(), 1.0, (0.0,) * 4, pixel_loss='l1')
    with pytest.raises(OptionsError, match='pixel_loss'):
        TrainOptions(pixel_loss='l1')


def test_feature_matching_loss_known_values():
    fake = [[torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 2, 2)], [torch.full((1, 1, 1, 1), 3.0)]]
    real = [[torch.ones(1, 2, 2, 2), torch.ones(1, 1, 2, 2)], [torch.full((1, 1, 1, 1), 1.0)]]
    # D 1: layers 1.0 and 0.0, mean over its 2 layers 0.5; D 2: 2.0; mean over the Ds 1.25
    assert feature_matching_loss(fake, real).item() == pytest.approx(1.25)
    leaf = torch.zeros(1, 1, 2, 2, requires_grad=True)
    target = torch.ones(1, 1, 2, 2, requires_grad=True)
    feature_matching_loss([[leaf]], [[target]]).backward()
    assert target.grad is None and leaf.grad is not None  # the truth's activations are constants
    with pytest.raises(ValueError, match='2 fake and 1 real'):
        feature_matching_loss(fake, real[:1])


def test_component_discriminator_crops_and_shapes():
    torch.manual_seed(0)
    disc = ComponentDiscriminator(('left_eye', 'mouth'), (32, 48), enlarge=1.0, base_channels=4, num_down=2).eval()
    image = torch.zeros(2, 3, 128, 128)
    image[:, :, 40:60, 30:50] = 1.0  # the left eye's box of both faces is all ones
    boxes = torch.tensor([[30, 40, 50, 60], [70, 40, 90, 60], [50, 50, 70, 80], [40, 85, 90, 110]]).repeat(2, 1, 1)
    eye, mouth = disc.crops(image, boxes)
    assert eye.shape == (2, 3, 32, 32) and mouth.shape == (2, 3, 48, 48)
    assert torch.allclose(eye[:, :, 2:-2, 2:-2], torch.ones(1)) and mouth.abs().max() == 0
    logits, features = disc(image, boxes, return_features=True)
    assert [tuple(x.shape) for x in logits] == [(2, 1, 8, 8), (2, 1, 12, 12)]
    assert len(features) == 2 and all(len(f) == 4 for f in features)  # one per LeakyReLU
    assert torch.equal(disc(image, boxes)[0], logits[0])
    wider = ComponentDiscriminator(('left_eye',), (32,), enlarge=2.0, base_channels=4, num_down=2)
    assert wider.crops(image, boxes)[0][:, :, :6].abs().max() == 0  # the enlarged box reaches past the ones
    with pytest.raises(ValueError, match='parts must be some of'):
        ComponentDiscriminator(('chin',), (32,))
    with pytest.raises(ValueError, match='one crop size'):
        ComponentDiscriminator(('left_eye', 'mouth'), (32,))


def test_multiscale_discriminator_features_match_its_logits():
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator((1, 2), base_channels=4, num_down=2).eval()  # no power iteration per call
    x = torch.rand(1, 3, 32, 32)
    logits, features = disc(x, return_features=True)
    plain = disc(x)
    assert all(torch.equal(a, b) for a, b in zip(logits, plain))
    assert [len(f) for f in features] == [4, 4] and features[0][0].shape == (1, 4, 32, 32)


def test_style_loss_sees_texture_not_its_place():
    torch.manual_seed(0)
    texture = torch.randn(1, 2, 16, 16)
    shifted = torch.roll(texture, shifts=(5, 3), dims=(2, 3))  # the same texture elsewhere
    flat = torch.zeros(1, 2, 16, 16)
    gram = gram_matrix(texture)
    assert gram.shape == (1, 2, 2) and gram[0, 0, 0] == pytest.approx(texture[0, 0].pow(2).mean() / 2)
    assert style_loss([shifted], [texture], [1.0]).item() == pytest.approx(0.0, abs=1e-6)
    assert style_loss([flat], [texture], [3.0]).item() == pytest.approx(3 * gram.abs().mean().item())
    assert style_loss([flat], [texture], [0.0]).item() == 0.0
    loss_fn = ReconstructionLoss(_TwoMaps(), pixel_weight=0.0, perceptual_weights=(0.0, 0.0), style_weights=(1.0, 0.0))
    total, parts = loss_fn(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
    assert parts['l_style'].item() == pytest.approx(1 / 3) and total.item() == pytest.approx(1 / 3)
