"""Biased MF's batched SGD in torch, for a GPU: many scenarios, one wave of records at a time.

SGD visits records one after another, and a GPU cannot afford a kernel launch per record. But a
record's step reads and writes only its own user's and item's parameters, so two records that
share neither commute: either order gives the same result, bit for bit. :func:`sgd_waves` groups
the records of one epoch into *waves*: a record's wave is one more than the latest wave holding
an earlier record of its user or of its item. Records of one wave then touch distinct users and
distinct items, and every record still sees exactly the parameters it would see visiting the
records one by one. Running the waves in order is the same computation as the sequential visit,
not an approximation of it. On MovieLens-100K the 100,000 records form 821 waves.

Scenarios share one record array (the union of their training sets in visiting order) and differ
in a per-scenario mask of active records; an inactive record's step leaves that scenario's
parameters unchanged (``torch.where``), so masking a record out is the same as leaving it out.
Parameters are stacked along a scenario axis (``n_users x K x f`` and so on), so one wave of one
epoch is a handful of tensor operations for all ``K`` scenarios at once.

The arithmetic is :func:`datalever.learners.mf._sgd_batch`'s, in the same float type and order
of operations, except that the factor dot product is a torch reduction, not LLVM's vectorised
loop, and no multiply-add is fused. Models therefore equal the numba path's to float32 rounding
(tests bound the difference), and a batch of ``K`` scenarios equals ``K`` separate fits of this
path (to 1e-7, tested on the CPU). torch is optional: ``pip install 'datalever[gpu]'``.

Not yet measured on a GPU: each wave is about 30 small tensor operations, so a batch costs
about ``n_epochs x waves`` kernel launches whatever ``K`` is; capturing an epoch as a CUDA
graph would cut that, and is left until it can be measured.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Iterator

import numba
import numpy as np

from datalever.errors import DataleverError


@numba.njit(cache=True)
def _wave_of_records(users, items, n_users, n_items):  # pragma: no cover - compiled
    last_user = np.zeros(n_users, dtype=np.int64)
    last_item = np.zeros(n_items, dtype=np.int64)
    wave = np.empty(len(users), dtype=np.int64)
    for j in range(len(users)):
        u, i = users[j], items[j]
        w = max(last_user[u], last_item[i]) + 1
        wave[j] = w - 1
        last_user[u] = w
        last_item[i] = w
    return wave


def sgd_waves(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """The records (given in visiting order) grouped into waves of commuting steps.

    Returns ``(positions, ptr)``: wave ``w`` is ``positions[ptr[w]:ptr[w + 1]]``, ascending.
    """
    wave = _wave_of_records(
        np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64), n_users, n_items
    )
    positions = np.argsort(wave, kind="stable")
    ptr = np.zeros(int(wave.max(initial=-1)) + 2, dtype=np.int64)
    np.cumsum(np.bincount(wave, minlength=len(ptr) - 1), out=ptr[1:])
    return positions, ptr


@functools.cache
def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


#: Device files of a GPU driver on Linux: NVIDIA's, WSL2's and ROCm's.
_GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/dxg", "/dev/kfd")


@functools.cache
def gpu_present() -> bool:
    """Whether torch is installed and sees a CUDA (or ROCm) device, asked without starting
    CUDA in this process (so the engine's worker processes can still fork). On Linux without
    any GPU driver, the answer is no without importing torch (which takes seconds)."""
    if not torch_available():
        return False
    if sys.platform == "linux" and not any(map(os.path.exists, _GPU_DRIVER_FILES)):
        return False
    return bool(_torch().cuda.is_available())


def _torch():
    """torch, imported so that asking about CUDA devices goes through NVML and does not start
    CUDA in this process (the engine's worker processes fork after it)."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import torch

    return torch


def require_torch() -> None:
    if not torch_available():
        raise DataleverError(
            "The torch backend of biased_mf needs PyTorch, which is not installed.",
            "install it (pip install 'datalever[gpu]'), or use backend = \"numba\".",
        )


def resolve_device(device: str | None) -> str:
    """The torch device to fit on: ``device``, checked, or CUDA when none is given."""
    require_torch()
    return _checked_device(device)


@functools.cache  # asked once per device: every batch size, key and fit asks again
def _checked_device(device: str | None) -> str:
    torch = _torch()
    try:
        parsed = torch.device(device or "cuda")
    except RuntimeError:
        raise DataleverError(
            f"biased_mf cannot fit on the torch device {device!r}.",
            'give a device such as "cuda", "cuda:1" or "cpu".',
        ) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise DataleverError(
                f"The torch backend of biased_mf asks for {parsed}, and torch sees "
                f"{count} CUDA device(s).",
                'use backend = "auto" or "numba" for the CPU kernel, or device = "cpu" to run '
                "the torch backend on the CPU (much slower).",
            )
    return str(parsed)


def fit_stacked(
    users,
    items,
    ratings,
    active,
    mu,
    pu0,
    qi0,
    n_epochs,
    lr,
    reg,
    device: str,
    variant: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Fit ``K = len(mu)`` scenarios that all start from ``pu0``, ``qi0`` and zero biases on
    ``device``; yield each scenario's ``(bu, bi, pu, qi)`` (copied to the host one scenario at
    a time, so host memory holds one scenario's parameters, not the batch's). With
    ``variant``, ``qi0`` is a stack of item factors and scenario ``s`` starts from
    ``qi0[variant[s]]`` (scenarios with different numbers of users start their items
    differently, see :func:`datalever.learners.mf.initial_factors`)."""
    import torch

    dev = torch.device(device)
    k = len(mu)
    p_u = torch.as_tensor(pu0, device=dev)[:, None, :].repeat(1, k, 1)  # copies
    if variant is None:
        q_i = torch.as_tensor(qi0, device=dev)[:, None, :].repeat(1, k, 1)
    else:  # (n_items, K, f): each scenario's starting rows, copied in once (no larger stack)
        variant = np.asarray(variant, dtype=np.int64)
        q_i = torch.empty((qi0.shape[1], k, qi0.shape[2]), dtype=p_u.dtype, device=dev)
        for v in np.unique(variant):
            scenarios = torch.as_tensor(np.flatnonzero(variant == v), device=dev)
            q_i[:, scenarios] = torch.as_tensor(qi0[v], device=dev)[:, None, :]
    b_u = torch.zeros((p_u.shape[0], k), dtype=p_u.dtype, device=dev)
    b_i = torch.zeros((q_i.shape[0], k), dtype=p_u.dtype, device=dev)
    _sgd_waves(users, items, ratings, active, mu, b_u, b_i, p_u, q_i, n_epochs, lr, reg)
    for s in range(k):
        yield tuple(t[:, s].cpu().numpy() for t in (b_u, b_i, p_u, q_i))


def _sgd_waves(users, items, ratings, active, mu, b_u, b_i, p_u, q_i, n_epochs, lr, reg) -> None:
    """The SGD, wave by wave, on stacked device tensors ``b_u (n_users, K)``, ``b_i``,
    ``p_u (n_users, K, f)``, ``q_i`` (updated in place); ``active`` is ``(K, n_records)``."""
    import torch

    dev, dtype = p_u.device, p_u.dtype
    positions, ptr = sgd_waves(users, items, b_u.shape[0], b_i.shape[0])
    # Records sorted by wave, so each wave is a contiguous slice (a view, no copy).
    u_all = torch.as_tensor(np.asarray(users, dtype=np.int64)[positions], device=dev)
    i_all = torch.as_tensor(np.asarray(items, dtype=np.int64)[positions], device=dev)
    r_all = torch.as_tensor(np.asarray(ratings)[positions], dtype=dtype, device=dev)
    # (n_records, K), in wave order; transposed and gathered on the device, not the host.
    order = torch.as_tensor(positions, device=dev)
    on_all = torch.as_tensor(np.ascontiguousarray(active), device=dev).T[order]
    m = torch.as_tensor(mu, dtype=dtype, device=dev)
    lr_ = torch.tensor(lr, dtype=dtype, device=dev)
    reg_ = torch.tensor(reg, dtype=dtype, device=dev)
    decay = 1 - lr_ * reg_
    bounds = ptr.tolist()
    with torch.inference_mode():
        for _ in range(int(n_epochs)):
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                u, i, on = u_all[a:b], i_all[a:b], on_all[a:b]
                p, q, bu_w, bi_w = p_u[u], q_i[i], b_u[u], b_i[i]
                dot = (q * p).sum(-1)
                err = r_all[a:b, None] - (m + bu_w + bi_w + dot)
                b_u[u] = torch.where(on, bu_w + lr_ * (err - reg_ * bu_w), bu_w)
                b_i[i] = torch.where(on, bi_w + lr_ * (err - reg_ * bi_w), bi_w)
                step = (lr_ * err)[..., None]
                on_f = on[..., None]
                p_u[u] = torch.where(on_f, decay * p + step * q, p)
                q_i[i] = torch.where(on_f, decay * q + step * p, q)
