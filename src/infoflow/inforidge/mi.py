"""Matrix-based Renyi entropy and mutual information (Sanchez Giraldo, Rao & Principe 2014).

N examples of a representation (rows of an [N, d] array, l2-normalised here) give a kernel Gram
matrix K, scaled to unit trace. Its eigenvalues l act like a probability distribution: the entropy
of order alpha is 1/(1-alpha) log sum l^alpha, and -sum l log l (von Neumann) at alpha = 1, in nats.
The joint entropy of two representations of the same examples is the entropy of the Hadamard
product of their Grams, scaled to unit trace, and I(A; B) = H(A) + H(B) - H(A, B). (So I(X; X) is
2 H(X) minus the entropy under the squared kernel, below H(X) unless the kernel separates all points.)

InfoRidge needs I(Z_l; Y) for every layer l: `mutual_information_layers`. Everything is float64.
The eigenvalues dominate the cost; each layer is one single-threaded task on torch's threads.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from itertools import repeat

import numpy as np
import torch
from threadpoolctl import threadpool_limits

KERNELS = ("gaussian", "laplacian", "polynomial")
# The polynomial kernel is (u.v + 1)^POLYNOMIAL_DEGREE; it has no width, so sigma is not used.
POLYNOMIAL_DEGREE = 2


def entropy(x, kernel="gaussian", sigma=1.0, alpha=1.0):
    """Matrix-based Renyi entropy of order alpha (nats) of the rows of x [N, d]."""
    _check(kernel, sigma, alpha)
    x = _rows(x, 2)
    with _single_threaded():
        return _entropy_of_grams(_gram(x, kernel, sigma)[None], alpha).item()


def mutual_information(x, y, kernel="gaussian", sigma=1.0, alpha=1.0):
    """Matrix-based mutual information I(X; Y) (nats) of paired rows x [N, d] and y [N, d']."""
    return _mutual_information_layers(_rows(x, 2)[None], y, kernel, sigma, alpha).item()


def mutual_information_layers(xs, y, kernel="gaussian", sigma=1.0, alpha=1.0):
    """I(X_l; Y) as a numpy array [L]: xs [L, N, d] holds one representation per layer, y [N, d'] the target."""
    return _mutual_information_layers(_rows(xs, 3), y, kernel, sigma, alpha).numpy()


def _mutual_information_layers(xs, y, kernel, sigma, alpha):
    """I(X_l; Y) [L] as a tensor; the layers are tasks for torch's threads (see _single_threaded)."""
    _check(kernel, sigma, alpha)
    y = _rows(y, 2)
    if xs.shape[1] != y.shape[0]:
        raise ValueError(f"x has {xs.shape[1]} rows but y has {y.shape[0]}; rows must be the same examples")
    layer_entropies = partial(_entropies_with, kernel=kernel, sigma=sigma, alpha=alpha)
    # Each worker sets its own torch threads too: OpenMP keeps that setting per thread.
    with _single_threaded() as threads, \
            ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        ky = _gram(y, kernel, sigma)
        h_y = pool.submit(_entropy_of_grams, ky[None], alpha)
        h_x, h_xy = torch.stack(list(pool.map(layer_entropies, xs, repeat(ky)))).T
        return h_x + h_y.result() - h_xy


def _entropies_with(x, ky, kernel, sigma, alpha):
    """[H(X), H(X, Y)] of the rows of x [N, d], given Y's unit-trace Gram ky [N, N]."""
    kx = _gram(x, kernel, sigma)
    return _entropy_of_grams(torch.stack([kx, _unit_trace_(kx * ky)]), alpha)


def _check(kernel, sigma, alpha):
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; use one of {', '.join(KERNELS)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")


def _rows(x, ndim):
    """x (numpy array or torch tensor) as a float64 CPU tensor, checked to have ndim dimensions."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.ndim != ndim:
        raise ValueError(f"expected a {ndim}-d array of rows, got shape {tuple(x.shape)}")
    return x


def _gram(x, kernel, sigma):
    """Unit-trace Gram matrices [..., N, N] (float64) of the l2-normalised rows of x [..., N, d].

    Squared distances come from one matrix product, |u|^2 + |v|^2 - 2 u.v (= 2 - 2 u.v for unit
    rows; zero rows stay zero and keep their true distance), with an exactly zero diagonal.
    Operations are in place: each [..., N, N] buffer is allocated once.
    """
    u = torch.nn.functional.normalize(x, dim=-1)
    k = u @ u.mT
    if kernel == "polynomial":
        return _unit_trace_(k.add_(1).pow_(POLYNOMIAL_DEGREE))
    norms = k.diagonal(dim1=-2, dim2=-1).clone()
    squared = k.mul_(-2).add_(norms[..., :, None]).add_(norms[..., None, :]).clamp_(min=0)
    if kernel == "gaussian":
        return _unit_trace_(squared.mul_(-1 / (2 * sigma**2)).exp_())
    return _unit_trace_(squared.sqrt_().mul_(-1 / sigma).exp_())


def _unit_trace_(k):
    """k [..., N, N] divided in place by its trace."""
    return k.div_(k.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None])


def _entropy_of_grams(grams, alpha):
    """Renyi entropies [B] of order alpha (nats) of unit-trace float64 Grams [B, N, N].

    numpy's LAPACK (OpenBLAS) finds the eigenvalues: single-threaded it takes about half the time
    of torch.linalg.eigvalsh (MKL) on this project's AMD CPU, for the same values.
    """
    eigenvalues = torch.from_numpy(np.linalg.eigvalsh(grams.numpy())).clamp(min=0)
    eigenvalues = eigenvalues / eigenvalues.sum(-1, keepdim=True)
    if alpha == 1:
        return -torch.special.xlogy(eigenvalues, eigenvalues).sum(-1)
    return torch.log((eigenvalues**alpha).sum(-1)) / (1 - alpha)


@contextmanager
def _single_threaded():
    """Run torch and BLAS single-threaded inside the block; yields torch's thread count from before.

    Why single-threaded work on parallel tasks: the eigenvalue solver spends its time reducing each
    matrix to tridiagonal form, which is memory bound and gains less from a second thread on one
    matrix than from two matrices at once; and multi-threaded eigenvalue calls stall, for seconds
    each, when other processes share the cores (benchmarks/mi_speed.py). Independent layers on one
    thread each use every core without that risk. The setting is process-wide while the block runs.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield threads
    finally:
        torch.set_num_threads(threads)
