"""Losses of the training model (Eq. 7-9) on known inputs, and the multi-scale discriminator."""
import pytest
import torch
from torch import nn

from dfdnet.archs.discriminator import MultiScaleDiscriminator
from dfdnet.archs.vgg import VGGEncoder, vgg_layer_names
from dfdnet.errors import CheckpointError
from dfdnet.archs.vgg import load_vgg_encoder
from dfdnet.losses import ReconstructionLoss, hinge_d_loss, hinge_g_loss


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
