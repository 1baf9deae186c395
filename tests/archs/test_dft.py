"""Dictionary feature transfer pieces against direct, slow re-computations."""
import torch
import torch.nn.functional as F

from dfdnet.archs.dft import _paste, cadain, match_atoms, scale_boxes, transfer_roi_align, transfer_slice
from dfdnet.archs.dictionary import standardize_atoms_
from dfdnet.archs.blocks import confidence_block


def _direct_match(atoms, crop):
    """Released steps 4-5 for one crop: renormalise all atoms, conv2d, softmax, argmax."""
    renorm = torch.empty_like(atoms)
    for k in range(atoms.shape[0]):
        for c in range(atoms.shape[1]):
            a, f = atoms[k, c].double(), crop[0, c].double()
            renorm[k, c] = ((a - a.mean()) / (a.var() + 1e-5).sqrt() * (f.var() + 1e-5).sqrt() + f.mean()).float()
    score = F.softmax(F.conv2d(crop, renorm).view(-1), dim=0)
    k = int(torch.argmax(score))
    return k, renorm[k]


def test_cadain_matches_per_channel_formula():
    g = torch.Generator().manual_seed(0)
    atoms = torch.randn(5, 4, 6, 6, generator=g) * 3 + 1
    crop = torch.randn(1, 4, 6, 6, generator=g) * 0.5 - 2
    out = cadain(atoms, crop)
    for c in range(4):
        torch.testing.assert_close(out[:, c].mean((1, 2)), crop[0, c].mean().expand(5), rtol=0, atol=1e-5)
        torch.testing.assert_close(out[:, c].flatten(1).var(1), crop[0, c].var().expand(5), rtol=1e-3, atol=1e-4)


def test_match_equals_direct_recomputation():
    g = torch.Generator().manual_seed(1)
    atoms = torch.randn(40, 8, 5, 5, generator=g) * torch.rand(40, 8, 1, 1, generator=g) * 4
    crops = torch.randn(6, 8, 5, 5, generator=g) * 2 + 0.5
    standardized = standardize_atoms_(atoms.clone())
    index, swap = match_atoms(standardized, crops)
    for b in range(6):
        k, renorm = _direct_match(atoms, crops[b:b + 1])
        assert int(index[b]) == k
        torch.testing.assert_close(swap[b], renorm, rtol=1e-4, atol=1e-5)


def test_ties_pick_the_first_atom():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(3, 4, 4, 4, generator=g)
    crop = torch.randn(1, 4, 4, 4, generator=g)
    best = _direct_match(base, crop)[0]
    atoms = torch.cat([base[:best], base[best:best + 1] * 2 + 1, base[best:]])  # same after CAdaIN
    index, _ = match_atoms(standardize_atoms_(atoms.clone()), crop)
    assert int(index[0]) == best


def test_match_without_cadain_is_plain_inner_product():
    g = torch.Generator().manual_seed(3)
    atoms = torch.randn(10, 3, 4, 4, generator=g)
    crops = torch.randn(2, 3, 4, 4, generator=g)
    index, swap = match_atoms(atoms, crops, standardized=False)
    expected = torch.einsum('bchw,kchw->bk', crops, atoms).argmax(1)
    assert torch.equal(index, expected) and torch.equal(swap, atoms[expected])


def test_scale_boxes_floor_and_clamp():
    boxes = torch.tensor([[85, 185, 116, 216], [-3, 5, 530, 519]])
    assert scale_boxes(boxes, 2, 256, 256).tolist() == [[42, 92, 58, 108], [0, 2, 256, 256]]
    assert scale_boxes(boxes, 16, 32, 32).tolist() == [[5, 11, 7, 13], [0, 0, 32, 32]]


def test_slice_transfer_writes_later_parts_last():
    torch.manual_seed(0)
    feature = torch.randn(1, 4, 16, 16)
    atoms = [standardize_atoms_(torch.randn(3, 4, 3, 3)) for _ in range(2)]
    blocks = [confidence_block(4).eval() for _ in range(2)]
    boxes = torch.tensor([[[0, 0, 16, 16], [8, 8, 16, 16]]])  # second box inside the first
    out = transfer_slice(feature, boxes, atoms, blocks, stride=2)
    only_first = transfer_slice(feature, boxes[:, :1], atoms[:1], blocks[:1], stride=2)
    assert torch.equal(out[..., :4, :], only_first[..., :4, :])  # outside part 2
    assert not torch.equal(out[..., 4:8, 4:8], only_first[..., 4:8, 4:8])  # part 2 overwrote
    assert torch.equal(out[..., 8:, 8:], feature[..., 8:, 8:])  # outside both boxes


def test_roi_align_transfer_is_differentiable_and_local():
    torch.manual_seed(0)
    feature = torch.randn(2, 4, 16, 16, requires_grad=True)
    atoms = [standardize_atoms_(torch.randn(3, 4, 4, 4)) for _ in range(2)]
    blocks = [confidence_block(4) for _ in range(2)]
    boxes = torch.tensor([[[2.0, 2.0, 10.0, 10.0], [12.0, 12.0, 20.0, 20.0]]] * 2)
    out = transfer_roi_align(feature, boxes, atoms, blocks, stride=2)
    assert out.shape == feature.shape
    assert torch.equal(out[..., 6:, :6], feature[..., 6:, :6])  # untouched outside the boxes
    out.square().mean().backward()
    assert feature.grad is not None and blocks[0][0].weight_orig.grad.abs().sum() > 0


def test_paste_places_patch_in_box():
    patch = torch.arange(4.0).view(1, 1, 2, 2)
    pasted, mask = _paste(patch, torch.tensor([[2.0, 4.0, 6.0, 8.0]]), 10, 10)
    assert mask[0, 0].nonzero()[:, 0].unique().tolist() == [4, 5, 6, 7]
    assert mask[0, 0].nonzero()[:, 1].unique().tolist() == [2, 3, 4, 5]
    assert pasted[0, 0, 4, 2] == 0 and pasted[0, 0, 7, 5] == 3  # corners keep the patch corners


def test_roi_align_equals_torchvision_with_gradients():
    """The plain-torch RoIAlign of the DFT (sampling ratio 2, aligned) is torchvision's, boxes
    partly or wholly outside the map included, and so is its gradient."""
    import torchvision

    from dfdnet.archs.dft import roi_align

    torch.manual_seed(0)
    feature = torch.randn(5, 8, 32, 40, requires_grad=True)
    boxes = torch.tensor([[10., 20, 70, 90], [-30, -10, 40, 50], [60, 50, 200, 170], [3, 5, 9, 60],
                          [300, 300, 340, 330]])
    rois = torch.cat([torch.arange(5.)[:, None], boxes], dim=1)  # box b on image b
    for size, scale in (((5, 5), 0.5), ((10, 14), 0.25), ((3, 7), 1.0)):
        ours = roi_align(feature, boxes, size, scale)
        theirs = torchvision.ops.roi_align(feature, rois, size, spatial_scale=scale, sampling_ratio=2, aligned=True)
        assert torch.allclose(ours, theirs, atol=2e-5), (size, scale, (ours - theirs).abs().max())
        grad_ours, = torch.autograd.grad((ours ** 2).sum(), feature)
        grad_theirs, = torch.autograd.grad((theirs ** 2).sum(), feature)
        assert torch.allclose(grad_ours, grad_theirs, atol=2e-5)
    assert ours[4].abs().max() == 0  # a box beyond the map: zeros, as torchvision


def test_paste_mask_takes_centres_on_the_edge():
    """Integer boxes divided by the stride put pixel centres exactly on box edges: they are inside
    (compared directly, so that every runtime agrees), and so is nothing beyond."""
    box = torch.tensor([[5.0, 10.0, 33.0, 41.0]]) / 2  # [2.5, 5, 16.5, 20.5]
    _, mask = _paste(torch.ones(1, 1, 3, 3), box, 32, 32)
    assert mask[0, 0].nonzero()[:, 1].unique().tolist() == list(range(2, 17))
    assert mask[0, 0].nonzero()[:, 0].unique().tolist() == list(range(5, 21))
