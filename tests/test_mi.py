import math

import numpy as np
import pytest
import torch

from infoflow.inforidge import mi
from infoflow.inforidge.mi import _entropy_of_grams


def rows(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def reference_gram(x, kernel, sigma):
    """Unit-trace Gram from explicit pairwise differences, one representation at a time."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    distance = np.linalg.norm(u[:, None, :] - u[None, :, :], axis=-1)
    if kernel == "gaussian":
        k = np.exp(-distance**2 / (2 * sigma**2))
    elif kernel == "laplacian":
        k = np.exp(-distance / sigma)
    else:
        k = (u @ u.T + 1) ** 2
    return k / np.trace(k)


def reference_entropy(k, alpha):
    eigenvalues = np.clip(np.linalg.eigvalsh(k), 0, None)
    eigenvalues /= eigenvalues.sum()
    if alpha == 1:
        positive = eigenvalues[eigenvalues > 0]
        return -np.sum(positive * np.log(positive))
    return np.log(np.sum(eigenvalues**alpha)) / (1 - alpha)


def reference_mutual_information(x, y, kernel, sigma, alpha):
    kx, ky = reference_gram(x, kernel, sigma), reference_gram(y, kernel, sigma)
    joint = kx * ky / np.trace(kx * ky)
    return reference_entropy(kx, alpha) + reference_entropy(ky, alpha) - reference_entropy(joint, alpha)


@pytest.mark.parametrize("kernel", mi.KERNELS)
@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_batched_layers_match_per_layer_reference(kernel, alpha):
    xs, y = np.stack([rows(40, 6, seed) for seed in range(3)]), rows(40, 4, seed=9)
    threads = torch.get_num_threads()
    batched = mi.mutual_information_layers(xs, y, kernel=kernel, sigma=0.7, alpha=alpha)
    expected = [reference_mutual_information(x, y, kernel, 0.7, alpha) for x in xs]
    assert batched.shape == (3,)
    np.testing.assert_allclose(batched, expected, rtol=0, atol=1e-9)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("kernel, half_width", [("gaussian", 1 / math.sqrt(2)), ("laplacian", 0.5)])
def test_information_with_itself_is_twice_entropy_less_squared_kernel_entropy(kernel, half_width):
    # The joint Gram of X with itself is K o K: the same kernel with width sigma * half_width.
    # So I(X; X) = 2 H(X) - H_narrower(X), below H(X) unless the kernel already separates all points.
    x, sigma = rows(60, 3), 0.8
    h = mi.entropy(x, kernel, sigma)
    expected = 2 * h - mi.entropy(x, kernel, sigma * half_width)
    assert mi.mutual_information(x, x, kernel, sigma) == pytest.approx(expected, abs=1e-9)
    assert mi.mutual_information(x, x, kernel, sigma) < h
    spread = rows(60, 8)  # far apart on the sphere: a narrow kernel separates them, both sides are log N
    assert mi.mutual_information(spread, spread, kernel, 1e-3) == pytest.approx(math.log(60), abs=1e-9)


def test_symmetric():
    x, y = rows(50, 4, seed=1), rows(50, 7, seed=2)
    assert mi.mutual_information(x, y) == pytest.approx(mi.mutual_information(y, x), abs=1e-12)


def test_independent_samples_share_little_information_and_less_with_more_samples():
    def mean_information(n):
        pairs = [(rows(n, 3, seed), rows(n, 3, seed + 100)) for seed in range(4)]
        return np.mean([mi.mutual_information(x, y) for x, y in pairs]), np.mean([mi.entropy(x) for x, _ in pairs])

    small, _ = mean_information(50)
    large, h = mean_information(400)
    assert large < 0.1 * h
    assert large < 0.5 * small


def test_noise_decreases_information():
    x, noise = rows(200, 3, seed=3), rows(200, 3, seed=4)
    information = [mi.mutual_information(x, x + s * noise) for s in (0, 0.3, 1, 3)]
    assert all(a > b for a, b in zip(information, information[1:])), information


def test_kernel_width_limits():
    x = rows(30, 5)
    assert mi.entropy(x, sigma=1e4) == pytest.approx(0, abs=1e-5)  # Gram -> all ones / N
    assert mi.entropy(x, sigma=1e-3) == pytest.approx(math.log(30), abs=1e-9)  # Gram -> I / N


@pytest.mark.parametrize("alpha", [1.0, 2.0, 0.5])
def test_entropy_of_identity_gram_is_log_n(alpha):
    gram = torch.eye(16, dtype=torch.float64)[None] / 16
    assert _entropy_of_grams(gram, alpha).item() == pytest.approx(math.log(16), abs=1e-12)


def test_orthonormal_rows_closed_form():
    # ||u - v||^2 = 2 for orthonormal rows: K = (1 - 1/e) I + (1/e) 11^T.
    n = 10
    big, small = (1 + (n - 1) / math.e) / n, (1 - 1 / math.e) / n
    von_neumann = -big * math.log(big) - (n - 1) * small * math.log(small)
    assert mi.entropy(np.eye(n)) == pytest.approx(von_neumann, abs=1e-12)
    assert mi.entropy(np.eye(n), alpha=2) == pytest.approx(-math.log(big**2 + (n - 1) * small**2), abs=1e-12)


def test_renyi_order_on_a_known_gram():
    eigenvalues = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    gram = (rotation * eigenvalues) @ rotation.T
    von_neumann = -(eigenvalues * eigenvalues.log()).sum().item()
    assert _entropy_of_grams(gram[None], 2.0).item() == pytest.approx(-math.log(0.34375), abs=1e-12)
    assert _entropy_of_grams(gram[None], 1.0).item() == pytest.approx(von_neumann, abs=1e-12)
    assert _entropy_of_grams(gram[None], 1.0001).item() == pytest.approx(von_neumann, abs=1e-3)


def test_invariant_to_joint_permutation_of_rows():
    x, y = rows(50, 4, seed=5), rows(50, 4, seed=6)
    order = np.random.default_rng(7).permutation(50)
    assert mi.mutual_information(x[order], y[order]) == pytest.approx(mi.mutual_information(x, y), abs=1e-10)


@pytest.mark.parametrize("kernel", mi.KERNELS)
def test_information_between_zero_and_smaller_entropy(kernel):
    for seed in range(3):
        x, y = rows(60, 5, seed), rows(60, 5, seed + 50)
        y[:, :2] += x[:, :2]  # partly dependent
        information = mi.mutual_information(x, y, kernel)
        assert 0 <= information <= min(mi.entropy(x, kernel), mi.entropy(y, kernel)) + 1e-12


def test_identical_rows_carry_no_information():
    x, y = np.tile(rows(1, 6), (40, 1)), rows(40, 6)
    assert mi.entropy(x) == pytest.approx(0, abs=1e-12)
    assert mi.mutual_information(x, y) == pytest.approx(0, abs=1e-12)


def test_accepts_numpy_and_torch_and_normalises_rows():
    x, y = rows(30, 5, seed=8), rows(30, 5, seed=9)
    unit_x = x / np.linalg.norm(x, axis=1, keepdims=True)
    scaled_x = x * np.random.default_rng(10).uniform(0.1, 10, size=(30, 1))
    expected = mi.mutual_information(unit_x, y)
    assert mi.mutual_information(torch.tensor(x), torch.tensor(y)) == pytest.approx(expected, abs=1e-12)
    assert mi.mutual_information(torch.tensor(scaled_x, dtype=torch.float32), y) == pytest.approx(expected, abs=1e-6)
    assert mi.entropy(torch.tensor(scaled_x)) == pytest.approx(mi.entropy(unit_x), abs=1e-12)


def test_zero_rows_are_safe():
    x = rows(20, 4)
    x[3] = 0
    assert math.isfinite(mi.entropy(x)) and math.isfinite(mi.mutual_information(x, rows(20, 4, seed=1)))


@pytest.mark.parametrize(
    "arguments, name",
    [({"kernel": "cosine"}, "cosine"), ({"sigma": 0}, "sigma"), ({"sigma": -1.0}, "sigma"), ({"alpha": 0}, "alpha")],
)
def test_bad_arguments_are_refused(arguments, name):
    x = rows(10, 3)
    for call in (lambda: mi.entropy(x, **arguments), lambda: mi.mutual_information(x, x, **arguments),
                 lambda: mi.mutual_information_layers(x[None], x, **arguments)):
        with pytest.raises(ValueError, match=name):
            call()


def test_rows_must_be_the_same_examples():
    with pytest.raises(ValueError, match="rows"):
        mi.mutual_information(rows(10, 3), rows(11, 3))


def plain_torch_information(xs, y, kernel, sigma, alpha):
    """I(X_l; Y) of each layer by torch's matmul and numpy's eigvalsh, float64, one Gram at a time."""

    def gram(x):
        u = torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float64), dim=-1)
        inner = u @ u.T
        if kernel == "polynomial":
            k = (inner + 1) ** 2
        else:
            distance_squared = (2 - 2 * inner).clamp(min=0).fill_diagonal_(0)
            k = torch.exp(-distance_squared / (2 * sigma**2)) if kernel == "gaussian" else torch.exp(-distance_squared.sqrt() / sigma)
        return k / k.trace()

    def entropy(k):
        eigenvalues = torch.from_numpy(np.linalg.eigvalsh(k.numpy())).clamp(min=0)
        eigenvalues = eigenvalues / eigenvalues.sum()
        if alpha == 1:
            return -torch.special.xlogy(eigenvalues, eigenvalues).sum().item()
        return (torch.log((eigenvalues**alpha).sum()) / (1 - alpha)).item()

    ky = gram(y)
    return [entropy(kx) + entropy(ky) - entropy(kx * ky / (kx * ky).trace()) for kx in map(gram, xs)]


def correlated_layers(n=300, seed=11):
    """Three layers of width 96 sharing part of an 80-wide target's signal, as float32 (the pipeline's activations)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 80))
    xs = [np.hstack([y[:, :40] * s, rng.normal(size=(n, 56))]) for s in (0.0, 0.5, 2.0)]
    return np.stack(xs).astype(np.float32), y


@pytest.mark.parametrize("kernel", mi.KERNELS)
@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_layers_at_width_equal_plain_formulas_to_1e_10(kernel, alpha):
    xs, y = correlated_layers()
    expected = plain_torch_information(xs, y, kernel, 0.9, alpha)
    np.testing.assert_allclose(mi.mutual_information_layers(xs, y, kernel, 0.9, alpha), expected, rtol=0, atol=1e-10)
    assert expected[2] > expected[0]  # the signal is seen: a real test case, not all zeros


@pytest.mark.parametrize("kernel", mi.KERNELS)
@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_torch_eigenvalue_path_forced_on_the_cpu_equals_the_numpy_path(kernel, alpha):
    xs, y = correlated_layers(n=200)
    threads = torch.get_num_threads()
    numpy_path = mi.mutual_information_layers(xs, y, kernel, 0.9, alpha)
    torch_path = mi.mutual_information_layers(xs, y, kernel, 0.9, alpha, device="cpu")
    np.testing.assert_allclose(torch_path, numpy_path, rtol=0, atol=1e-10)
    assert torch.get_num_threads() == threads


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_eigenvalue_path_on_a_gpu_equals_the_numpy_path():
    xs, y = correlated_layers(n=200)
    np.testing.assert_allclose(mi.mutual_information_layers(xs, y, device="cuda"), mi.mutual_information_layers(xs, y), rtol=0, atol=1e-10)
