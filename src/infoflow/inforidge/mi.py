"""Matrix-based Renyi entropy and mutual information (Sanchez Giraldo, Rao & Principe 2014).

N examples of a representation (rows of an [N, d] array, l2-normalised here) give a kernel Gram
matrix K, scaled to unit trace. Its eigenvalues l act like a probability distribution: the entropy
of order alpha is 1/(1-alpha) log sum l^alpha, and -sum l log l (von Neumann) at alpha = 1, in nats.
The joint entropy of two representations of the same examples is the entropy of the Hadamard
product of their Grams, scaled to unit trace, and I(A; B) = H(A) + H(B) - H(A, B). (So I(X; X) is
2 H(X) minus the entropy under the squared kernel, below H(X) unless the kernel separates all points.)

InfoRidge needs I(Z_l; Y) for every layer l: `mutual_information_layers`. Everything is float64.
The eigenvalues dominate the cost; each layer is one single-threaded task on torch's threads, with
numpy's LAPACK on the CPU, or, given a torch `device` (a GPU), torch.linalg.eigvalsh there.

Its multi-token analysis (Sec. 5) compares sets of vectors: example i holds the tokens A_i, and the
sequence kernel k(A_i, A_j) is the mean of the kernel over every pair (a in A_i, b in A_j), scaled
to unit trace as above (`sequence_kernels`, `sequence_mutual_information`). The sets at every step
t come from one kernel over all N x T tokens per layer: `prefix` sets (the tokens up to t) sum its
[T, T] blocks by cumulative sums along both token axes, `step` sets (token t alone) take their
diagonals.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from itertools import repeat

import numpy as np
import torch
from threadpoolctl import threadpool_limits

KERNELS = ("gaussian", "laplacian", "polynomial")
SETS = ("prefix", "step")  # the multi-token sets at step t: the tokens up to t, or token t alone
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


def mutual_information_layers(xs, y, kernel="gaussian", sigma=1.0, alpha=1.0, device=None):
    """I(X_l; Y) as a numpy array [L]: xs [L, N, d] holds one representation per layer, y [N, d'] the target.

    With `device` (a torch device, e.g. "cuda") the Grams and their eigenvalues are computed by torch
    there, one layer after another; by default numpy's LAPACK computes them on the CPU.
    """
    # Each layer becomes float64 in its own task: converting all of them first took 3% of the time.
    return _mutual_information_layers(_rows(xs, 3, dtype=None), y, kernel, sigma, alpha, device).numpy()


def _mutual_information_layers(xs, y, kernel, sigma, alpha, device=None):
    """I(X_l; Y) [L] as a CPU tensor of the layers xs [L, N, d] (any float dtype); on the CPU the layers
    are tasks for torch's threads (see _single_threaded)."""
    _check(kernel, sigma, alpha)
    y = _rows(y, 2)
    if xs.shape[1] != y.shape[0]:
        raise ValueError(f"x has {xs.shape[1]} rows but y has {y.shape[0]}; rows must be the same examples")
    if device is not None:
        return _mutual_information_on(torch.device(device), xs, y, kernel, sigma, alpha)
    layer_entropies = partial(_entropies_with, kernel=kernel, sigma=sigma, alpha=alpha)
    # Each worker sets its own torch threads too: OpenMP keeps that setting per thread.
    with _single_threaded() as threads, \
            ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        ky = _gram(y, kernel, sigma)
        h_y = pool.submit(_entropy_of_grams, ky[None], alpha)
        h_x, h_xy = torch.stack(list(pool.map(layer_entropies, xs, repeat(ky)))).T
        return h_x + h_y.result() - h_xy


def _mutual_information_on(device, xs, y, kernel, sigma, alpha):
    """I(X_l; Y) [L] (CPU tensor) with torch's Grams and torch.linalg.eigvalsh on `device`, layer by
    layer; single-threaded on the CPU, where multi-threaded eigvalsh calls stall (see _single_threaded)."""
    with _single_threaded():
        ky = _gram(y.to(device), kernel, sigma)
        h_y = _entropy_of_grams(ky[None], alpha, torch.linalg.eigvalsh)
        h_x, h_xy = torch.stack([_entropies_with(x.to(device), ky, kernel, sigma, alpha, torch.linalg.eigvalsh) for x in xs]).T
        return (h_x + h_y - h_xy).cpu()


def _entropies_with(x, ky, kernel, sigma, alpha, eigvalsh=None):
    """[H(X), H(X, Y)] of the rows of x [N, d] (as float64), given Y's unit-trace Gram ky [N, N]; both
    Grams are written into one [2, N, N] buffer, which the eigenvalue solver reads as it is."""
    grams = ky.new_empty((2, *ky.shape))
    kx = _gram(x.to(torch.float64), kernel, sigma, out=grams[0])
    _unit_trace_(torch.mul(kx, ky, out=grams[1]))
    return _entropy_of_grams(grams, alpha, eigvalsh)


def sequence_kernels(x, mask, sets="prefix", kernel="gaussian", sigma=1.0):
    """Sequence-kernel matrices [T, N, N] (float64, not scaled) of N examples' token vectors x [N, T, d]
    whose tokens `mask` [N, T] says exist: entry [t, i, j] is the mean kernel over the pairs of example
    i's and example j's tokens in their sets at step t (SETS), nan where either set is empty."""
    _check(kernel, sigma, 1.0, sets)
    x = _rows(x, 3)
    with _single_threaded():
        return _sequence_kernels(x, _mask(mask, x.shape[:2]), sets, kernel, sigma)


def sequence_mutual_information(xs, y, mask, samples=None, sets="prefix", kernel="gaussian", sigma=1.0, alpha=1.0):
    """I(X_l; Y) under the sequence kernel at every step t, per sample of the examples: numpy arrays
    (mi [samples, T, L], examples [samples, T]).

    xs [L, N, T, d] holds one representation per layer of every example's T tokens, y [N, T, d'] the
    targets of the same tokens, and mask [N, T] which tokens exist: a sequence that stopped early keeps
    its shorter sets. `samples` lists the indices of the examples each estimate uses (default: one
    sample, all of them). An example whose set is empty at step t (a `step` set past its end) is left
    out of that step's estimate; `examples` counts those kept, and mi is nan where fewer than 2 are.
    """
    _check(kernel, sigma, alpha, sets)
    xs, y = _rows(xs, 4), _rows(y, 3)
    if xs.shape[1:3] != y.shape[:2]:
        raise ValueError(f"x has {tuple(xs.shape[1:3])} examples x tokens but y has {tuple(y.shape[:2])}; they must be the same tokens")
    mask = _mask(mask, y.shape[:2])
    samples = [torch.arange(y.shape[0])] if samples is None else [torch.as_tensor(s, dtype=torch.long) for s in samples]
    with _single_threaded() as threads, \
            ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        ky = _sequence_kernels(y, mask, sets, kernel, sigma)
        present = ~ky.diagonal(dim1=-2, dim2=-1).isnan()  # [T, N]: the examples whose sets are not empty
        picks = [[sample[present[t, sample]] for t in range(len(ky))] for sample in samples]
        h_y = pool.submit(_target_entropies, ky, picks, alpha)
        layer_entropies = partial(_sequence_entropies, ky=ky, picks=picks, mask=mask, sets=sets, kernel=kernel, sigma=sigma, alpha=alpha)
        h_x, h_xy = torch.stack(list(pool.map(layer_entropies, xs)), dim=-1).unbind(-2)  # each [samples, T, L]
        information = h_x + h_y.result()[..., None] - h_xy
    return information.numpy(), np.array([[len(pick) for pick in sample] for sample in picks])


def _sequence_kernels(x, mask, sets, kernel, sigma):
    """sequence_kernels of x [N, T, d] (float64) and mask [N, T] (float64 0 / 1)."""
    n, steps, width = x.shape
    k = _kernel(x.reshape(n * steps, width), kernel, sigma).view(n, steps, n, steps)
    k.mul_(mask[:, :, None, None]).mul_(mask[None, None])
    if sets == "prefix":  # sum over a <= t, b <= t: cumulative sums along both token axes, then the diagonal
        sums, sizes = k.cumsum_(1).cumsum_(3).diagonal(dim1=1, dim2=3), mask.cumsum(1)
    else:
        sums, sizes = k.diagonal(dim1=1, dim2=3), mask
    return sums.permute(2, 0, 1) / (sizes.T[:, :, None] * sizes.T[:, None, :])  # 0 / 0 = nan: an empty set


def _sequence_entropies(x, ky, picks, mask, sets, kernel, sigma, alpha):
    """[samples, T, 2]: H(X) and H(X, Y) of x [N, T, d] on each sample's picked examples at each step."""
    kx = _sequence_kernels(x, mask, sets, kernel, sigma)
    return torch.stack([torch.stack([_pair_entropies(kx[t], ky[t], pick, alpha) for t, pick in enumerate(sample)]) for sample in picks])


def _pair_entropies(kx, ky, pick, alpha):
    """[H(X), H(X, Y)] of the unit-trace Grams of kernels kx, ky [N, N] on the examples `pick`; nan for fewer than 2."""
    if len(pick) < 2:
        return torch.full((2,), torch.nan, dtype=torch.float64)
    gx, gy = _picked(kx, pick), _picked(ky, pick)
    return _entropy_of_grams(torch.stack([gx, _unit_trace_(gx * gy)]), alpha)


def _target_entropies(ky, picks, alpha):
    """[samples, T]: H(Y) of the unit-trace Grams of ky [T, N, N] on each sample's picked examples at each step."""
    return torch.tensor([[_entropy_of_grams(_picked(ky[t], pick)[None], alpha).item() if len(pick) > 1 else torch.nan
                          for t, pick in enumerate(sample)] for sample in picks], dtype=torch.float64)


def _picked(k, pick):
    """The unit-trace Gram of the kernel matrix k [N, N] on the examples `pick` (a copy)."""
    return _unit_trace_(k[pick[:, None], pick])


def _mask(mask, shape):
    """mask [N, T] (bool or 0 / 1) as a float64 tensor of `shape`."""
    mask = torch.as_tensor(mask).detach().to("cpu", torch.float64)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(shape)} (examples x tokens)")
    return mask


def _check(kernel, sigma, alpha, sets="prefix"):
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; use one of {', '.join(KERNELS)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if sets not in SETS:
        raise ValueError(f"unknown sets {sets!r}; use one of {', '.join(SETS)}")


def _rows(x, ndim, dtype=torch.float64):
    """x (numpy array or torch tensor) as a CPU tensor of `dtype` (None: its own), checked to have ndim dimensions."""
    x = torch.as_tensor(x).detach().to("cpu", dtype)
    if x.ndim != ndim:
        raise ValueError(f"expected a {ndim}-d array of rows, got shape {tuple(x.shape)}")
    return x


def _gram(x, kernel, sigma, out=None):
    """Unit-trace Gram matrices [..., N, N] (float64) of the l2-normalised rows of x [..., N, d] (into `out`)."""
    return _unit_trace_(_kernel(x, kernel, sigma, out))


def _kernel(x, kernel, sigma, out=None):
    """Kernel matrices [..., N, N] (float64) of the l2-normalised rows of x [..., N, d] (into `out`).

    Squared distances come from one matrix product, |u|^2 + |v|^2 - 2 u.v (= 2 - 2 u.v for unit
    rows; zero rows stay zero and keep their true distance), with an exactly zero diagonal.
    Operations are in place: each [..., N, N] buffer is allocated once.
    """
    u = torch.nn.functional.normalize(x, dim=-1)
    k = _inner_products(u, out)
    if kernel == "polynomial":
        return k.add_(1).pow_(POLYNOMIAL_DEGREE)
    norms = k.diagonal(dim1=-2, dim2=-1).clone()
    squared = k.mul_(-2).add_(norms[..., :, None]).add_(norms[..., None, :]).clamp_(min=0)
    if kernel == "gaussian":
        return squared.mul_(-1 / (2 * sigma**2)).exp_()
    return squared.sqrt_().mul_(-1 / sigma).exp_()


def _inner_products(u, out=None):
    """u u^T [..., N, N] (into `out`). On the CPU numpy's BLAS (OpenBLAS) multiplies: in float64 it
    takes about half the time of torch's (MKL) on this project's AMD CPU, and the product is most of
    a Gram's cost."""
    if u.device.type != "cpu":
        return torch.matmul(u, u.mT, out=out)
    out = u.new_empty((*u.shape[:-1], u.shape[-2])) if out is None else out
    np.matmul(u.numpy(), u.numpy().swapaxes(-1, -2), out=out.numpy())
    return out


def _unit_trace_(k):
    """k [..., N, N] divided in place by its trace."""
    return k.div_(k.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None])


def _lapack_eigvalsh(grams):
    """Eigenvalues of CPU Grams [B, N, N] by numpy's LAPACK (OpenBLAS): single-threaded it takes about
    half the time of torch.linalg.eigvalsh (MKL) on this project's AMD CPU, for the same values."""
    return torch.from_numpy(np.linalg.eigvalsh(grams.numpy()))


def _entropy_of_grams(grams, alpha, eigvalsh=None):
    """Renyi entropies [B] of order alpha (nats) of unit-trace float64 Grams [B, N, N], their
    eigenvalues found by `eigvalsh` (default: _lapack_eigvalsh)."""
    eigenvalues = (eigvalsh or _lapack_eigvalsh)(grams).clamp(min=0)
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
