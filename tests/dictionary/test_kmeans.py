"""K-means (torch and faiss backends): planted clusters, scikit-learn inertia, determinism, chunking,
float16 memmaps, backend choice."""
from __future__ import annotations

import importlib.util
import logging
import sys

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from dfdnet.dictionary.kmeans import choose_backend, kmeans

HAS_FAISS = importlib.util.find_spec('faiss') is not None
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason='faiss is not installed (pip install faiss-cpu)')
BACKENDS = ['torch', pytest.param('faiss', marks=needs_faiss)]


def planted(n_per=40, k=6, dim=16, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)) * 10
    truth = np.repeat(np.arange(k), n_per)
    x = centres[truth] + spread * rng.standard_normal((k * n_per, dim))
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), truth[order], centres


def test_planted_clusters_are_recovered():
    x, truth, centres = planted()
    result = kmeans(x, 6, seed=3, device='cpu')
    assert result.converged
    assert adjusted_rand_score(truth, result.labels.numpy()) == 1.0
    # every found centre is within the noise of one planted centre
    d = np.linalg.norm(result.centers.numpy()[:, None] - centres[None], axis=-1).min(1)
    assert d.max() < 0.3
    expected = ((x - result.centers.numpy()[result.labels.numpy()]) ** 2).sum()
    assert result.inertia == pytest.approx(expected, rel=1e-4)
    assert result.centers.dtype == torch.float32 and result.centers.shape == (6, 16)


@pytest.mark.parametrize('backend', BACKENDS)
def test_inertia_matches_scikit_learn_within_one_percent(backend):
    # overlapping blobs, like real component features: k-means has no single "right" answer
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((1500, 48)) + 1.5 * rng.standard_normal((25, 48))[rng.integers(0, 25, 1500)])
    x = x.astype(np.float32)
    ours = np.mean([kmeans(x, 20, seed=s, device='cpu', backend=backend).inertia for s in range(3)])
    sk = np.mean([KMeans(20, init='k-means++', n_init=1, random_state=s).fit(x).inertia_ for s in range(3)])
    assert abs(ours / sk - 1) < 0.01, (ours, sk)


@pytest.mark.parametrize('backend', BACKENDS)
def test_same_seed_same_result_other_seed_differs(backend):
    x, _, _ = planted(n_per=30, k=8, spread=3.0, seed=2)
    a = kmeans(x, 8, seed=7, device='cpu', backend=backend)
    b = kmeans(x, 8, seed=7, device='cpu', backend=backend)
    c = kmeans(x, 8, seed=8, device='cpu', backend=backend)
    assert torch.equal(a.centers, b.centers) and torch.equal(a.labels, b.labels) and a.inertia == b.inertia
    assert not torch.equal(a.centers, c.centers)
    assert a.backend == backend and a.device == 'cpu' and a.centers.dtype == torch.float32


def test_chunked_equals_unchunked():
    x, _, _ = planted(n_per=50, k=5, spread=4.0, seed=4)
    whole = kmeans(x, 5, seed=0, chunk_size=len(x), device='cpu')
    chunked = kmeans(x, 5, seed=0, chunk_size=7, device='cpu', max_resident_bytes=0)
    assert torch.equal(whole.labels, chunked.labels)
    torch.testing.assert_close(whole.centers, chunked.centers, rtol=1e-6, atol=1e-6)
    assert chunked.inertia == pytest.approx(whole.inertia, rel=1e-6)


def test_float16_memmap_input(tmp_path):
    x, truth, _ = planted(n_per=30, k=4, dim=32, seed=5)
    mm = np.lib.format.open_memmap(tmp_path / 'f.npy', mode='w+', dtype=np.float16, shape=x.shape)
    mm[:] = x
    mm.flush()
    features = np.load(tmp_path / 'f.npy', mmap_mode='r')
    streamed = kmeans(features, 4, seed=1, chunk_size=16, device='cpu', max_resident_bytes=0)
    in_memory = kmeans(x.astype(np.float16).astype(np.float32), 4, seed=1, device='cpu')
    assert adjusted_rand_score(truth, streamed.labels.numpy()) == 1.0
    assert torch.equal(streamed.labels, in_memory.labels)
    torch.testing.assert_close(streamed.centers, in_memory.centers, rtol=1e-5, atol=1e-5)


def test_empty_cluster_is_reseeded_and_k_too_large_is_an_error():
    # 3 distinct points repeated: with k=3 each must get one cluster, none empty
    x = np.repeat(np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32), 5, axis=0)
    result = kmeans(x, 3, seed=0, device='cpu')
    assert sorted(np.bincount(result.labels.numpy()).tolist()) == [5, 5, 5]
    assert result.inertia == pytest.approx(0.0, abs=1e-3)  # float32 rounding of squared norms ~ 100
    # a starting centre far from every point gets no point: it is moved onto the farthest one
    far_init = np.array([[0, 0], [10, 0], [1000, 1000]], dtype=np.float32)
    reseeded = kmeans(x, 3, init=far_init, device='cpu')
    assert sorted(np.bincount(reseeded.labels.numpy()).tolist()) == [5, 5, 5]
    assert reseeded.inertia == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match='K=20 needs at least 20 samples, got 15'):
        kmeans(x, 20)


def clustered(n=2000, dim=64, k=16, seed=0):
    """(n, dim) float32: k Gaussian blobs (unit noise, centres ~ N(0, 4^2)) around a large offset,
    like non-negative features with a big mean."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * rng.standard_normal((k, dim)) + 20.0
    return (centres[rng.integers(0, k, n)] + rng.standard_normal((n, dim))).astype(np.float32)


@pytest.mark.parametrize('backend', BACKENDS)
def test_each_backend_is_within_one_percent_of_scikit_learn_per_seed(backend):
    x = clustered()
    for seed in range(3):
        ours = kmeans(x, 16, seed=seed, device='cpu', backend=backend)
        sk = KMeans(16, init='k-means++', n_init=1, random_state=seed).fit(x)
        assert ours.backend == backend
        assert abs(ours.inertia / sk.inertia_ - 1) < 0.01, (seed, ours.inertia, sk.inertia_)
        # the reported inertia is the sum of squared distances to the returned centres
        centres = ours.centers.double().numpy()
        expected = ((x - centres[ours.labels.numpy()]) ** 2).sum()
        assert ours.inertia == pytest.approx(expected, rel=1e-4)


@needs_faiss
def test_faiss_and_torch_share_the_seeded_initialisation():
    x = clustered(n=600, dim=32, k=6, seed=3)
    a = kmeans(x, 6, seed=5, device='cpu', backend='faiss', max_iter=1)
    b = kmeans(x, 6, seed=5, device='cpu', backend='torch', max_iter=1)
    torch.testing.assert_close(a.centers, b.centers, rtol=1e-4, atol=1e-4)
    assert torch.equal(a.labels, b.labels)


def test_auto_picks_torch_on_a_cpu_and_says_so(caplog):
    x = clustered(n=400, dim=16, k=4)
    with caplog.at_level(logging.INFO, logger='dfdnet.dictionary.kmeans'):
        result = kmeans(x, 4, seed=0, device='cpu', desc='eyes')
    assert result.backend == 'torch' and result.device == 'cpu'
    assert 'eyes: torch backend on cpu (faster than faiss on a CPU)' in caplog.text


@needs_faiss
def test_faiss_backend_reads_float16_memmaps(tmp_path):
    x, truth, _ = planted(n_per=30, k=4, dim=32, seed=5)
    np.save(tmp_path / 'f.npy', x.astype(np.float16))
    features = np.load(tmp_path / 'f.npy', mmap_mode='r')
    streamed = kmeans(features, 4, seed=1, chunk_size=16, device='cpu', backend='faiss')
    in_memory = kmeans(x.astype(np.float16).astype(np.float32), 4, seed=1, device='cpu', backend='faiss')
    assert adjusted_rand_score(truth, streamed.labels.numpy()) == 1.0
    assert torch.equal(streamed.labels, in_memory.labels)
    torch.testing.assert_close(streamed.centers, in_memory.centers, rtol=1e-5, atol=1e-5)


@needs_faiss
def test_faiss_backend_errors_name_the_problem():
    x = clustered(n=100, dim=8, k=2)
    with pytest.raises(ValueError, match=r'cannot run: its centred float32 copy .* more than max_resident_bytes'):
        kmeans(x, 2, device='cpu', backend='faiss', max_resident_bytes=1000)
    with pytest.raises(ValueError, match="k-means backend must be one of auto, faiss, torch, got 'sklearn'"):
        kmeans(x, 2, device='cpu', backend='sklearn')


@needs_faiss
def test_cuda_device_with_a_cpu_build_of_faiss(caplog):
    import faiss

    if faiss.get_num_gpus() > 0:
        pytest.skip('this faiss build has GPUs')
    x = clustered(n=100, dim=8, k=2)
    cuda = torch.device('cuda:0')  # only compared, never used
    assert choose_backend('auto', x, cuda, 2**30)[:2] == ('torch', cuda)
    with caplog.at_level(logging.WARNING):
        assert choose_backend('faiss', x, cuda, 2**30)[:2] == ('faiss', torch.device('cpu'))
    assert 'no GPU support' in caplog.text


def test_faiss_requested_but_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, 'faiss', None)  # makes ``import faiss`` raise ImportError
    x = clustered(n=100, dim=8, k=2)
    with pytest.raises(ImportError, match="backend 'faiss' was requested but the faiss module cannot be imported"):
        kmeans(x, 2, device='cpu', backend='faiss')
    assert kmeans(x, 2, device='cpu', backend='auto').backend == 'torch'


def overlapping(n=3000, dim=48, blobs=40, seed=1):
    """Overlapping blobs with a decaying spectrum: Lloyd creeps for tens of iterations."""
    rng = np.random.default_rng(seed)
    scale = np.arange(1, dim + 1) ** -0.5
    x = (rng.standard_normal((n, dim)) + 1.2 * rng.standard_normal((blobs, dim))[rng.integers(0, blobs, n)]) * scale
    return (x + 3.0).astype(np.float32)


def test_inertia_tol_stops_early_near_the_converged_inertia():
    x = overlapping()
    full = kmeans(x, 24, seed=2, device='cpu', max_iter=300)
    early = kmeans(x, 24, seed=2, device='cpu', max_iter=300, inertia_tol=3e-4)
    coarse = kmeans(x, 24, seed=2, device='cpu', max_iter=300, inertia_tol=0.05)
    assert full.n_iter > 20  # the rule has something to cut
    assert coarse.n_iter < early.n_iter < full.n_iter and early.converged
    assert early.inertia == pytest.approx(full.inertia, rel=0.01)
    assert full.inertia <= early.inertia <= coarse.inertia  # same seeds, so the same trajectory, cut earlier
    # the reported inertia is still that of the returned centres
    expected = ((x - early.centers.numpy()[early.labels.numpy()]) ** 2).sum()
    assert early.inertia == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match='inertia_tol and init_dims must be >= 0, got -0.1 and 128'):
        kmeans(x, 4, device='cpu', inertia_tol=-0.1)


def test_projected_initialisation_of_wide_features():
    # the seeding is the same code for both backends: the torch one is tested
    x, truth, _ = planted(n_per=25, k=8, dim=1200, spread=2.0, seed=6)  # wider than 2 * init_dims
    projected = kmeans(x, 8, seed=3, device='cpu', init_dims=64)
    again = kmeans(x, 8, seed=3, device='cpu', init_dims=64)
    full = kmeans(x, 8, seed=3, device='cpu', init_dims=0, max_iter=1)
    first = kmeans(x, 8, seed=3, device='cpu', init_dims=64, max_iter=1)
    assert adjusted_rand_score(truth, projected.labels.numpy()) == 1.0
    assert torch.equal(projected.labels, again.labels) and torch.equal(projected.centers, again.centers)
    assert not torch.equal(first.centers, full.centers)  # the projection chose other seeds
    # fewer rows than init_dims: seeded in the full space (the projection would outweigh the data)
    few = [kmeans(x[:60], 4, seed=3, device='cpu', init_dims=dims, max_iter=1).centers for dims in (64, 0)]
    assert torch.equal(few[0], few[1])
    # as good as seeding in the full space, over seeds (single runs differ by about 1% either way)
    wide = overlapping(n=600, dim=1100, blobs=30)
    inertia = {dims: np.mean([kmeans(wide, 12, seed=s, device='cpu', init_dims=dims).inertia
                              for s in range(6)]) for dims in (0, 128)}
    assert abs(inertia[128] / inertia[0] - 1) < 0.01, inertia
