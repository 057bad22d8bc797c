"""A small decoder-only transformer language model of source code, in PyTorch.

It predicts the same symbols as the n-gram models (:mod:`~datalever.tasks.code.ngram`), so
their metrics compare: each file is read as ``BOS t1 … tn EOS`` (EOS is the code ``V``, BOS
``V + 1``, with ``V`` the vocabulary size) and a model predicts, for each file, its tokens then
its EOS, one row per predicted symbol in file order.

**Windows.** A file's ``n + 1`` predictions are cut into non-overlapping windows of
``context`` positions: the input of a window is the ``context`` symbols before its targets
(``BOS t1 … t(context-1)`` predicts ``t1 … t(context)``, and so on). Attention is causal and
never crosses a window, so the symbol at position ``j`` of a padded file (BOS is position 0)
is conditioned on the symbols from ``context × ⌊(j - 1) / context⌋`` to ``j - 1``: between
one and ``context`` symbols of its own file, never another file's. Training and scoring use
the same windows, so a model is scored on exactly the conditioning it was trained on, and
scoring costs one forward pass per window (strided windows that gave every position a full
``context`` would cost ``context`` times more).

**Vocabulary cap.** Only the ``vocab_cap`` most frequent codes of the training files (ties by
the lower code; ``<unk>``, code 0, always among them) get an embedding of their own; the
others share ``<unk>``'s, as input and as output. The ``g`` codes that share ``<unk>``'s class
(code 0 and those dropped) each get ``p(<unk> class) / g``, so the probabilities of the
``V + 1`` predicted symbols still sum to 1. This keeps the output layer, the costliest part
on a large vocabulary (the standard library's is about 75,000 codes), at ``vocab_cap + 1``
classes. Input and output embeddings are tied.

**Determinism.** Initial weights come from ``torch.manual_seed(seed)`` (inside
``torch.random.fork_rng``, so the caller's random state is untouched) and the order of the
windows from a ``torch.Generator`` of the same seed; there is no dropout. On the CPU, the same
seed, data and number of torch threads give the same model bit for bit. On a GPU, kernels
round differently (and some accumulate in a varying order), so results may differ in the last
bits; such results get a key variant of their own. Scoring runs windows in fixed batches, so
a file's probabilities do not depend on the call, but may differ in the last bits from the
same file scored among other files.

**Batched fits** (:meth:`TransformerLM.fast_path`). On a GPU (or on any device with
``batched = true``) the scenarios of one batch train together: every scenario builds its own
network exactly as its plain fit does (same seed, same vocabulary classes, same windows, the
same generator calls for the order of its windows), and the ``K`` networks' parameters are
stacked along a leading scenario axis. Each optimiser step runs one forward and backward
pass for all ``K`` (``torch.func.grad`` under ``torch.vmap``, of a functional form of the
network whose attention is written out in matrix products, as torch's attention kernels have
no batching rule), each scenario on its own next batch of windows. Batches are padded to a
common number of windows and width, and padding positions carry no loss; as attention is
causal and confined to a window, padding never changes a real position. Each scenario's
``vocab_cap`` classes are its own: the stacked embedding table has room for the largest
scenario's classes, and a per-scenario mask keeps a scenario's logits to its own output
classes (its padding rows get no gradient and are dropped from its model). Gradient clipping
is per scenario (the norm of that scenario's gradients), AdamW keeps a state and a step
count per scenario, and a scenario that has taken all the steps of its plain fit stops
updating (a per-scenario step mask), so every scenario takes exactly its plain fit's steps.
The result is the plain fit's to float32 rounding (the loss reduction and padded matrix
products may round differently), which the tests check on the CPU; ``batched = true`` is
therefore part of a learner's parameters (and scenario keys), absent when false.

PyTorch is optional: ``pip install 'datalever[gpu]'`` (or ``pip install torch``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from datalever.core.config import MAX_SEED, LearnerConfig
from datalever.core.delta import Delta
from datalever.core.learner import FastPath, Learner, Model
from datalever.errors import DataleverError
from datalever.learners import mf_torch
from datalever.tasks.code.files import TokenFiles
from datalever.tasks.code.ngram_counts import bos_code, eos_code

#: Scoring runs this many logits (positions × classes) at a time at most: 64 MiB of float32
#: probabilities (and as much again for the logits, and for a copy in ``top_k``).
EVAL_ELEMENTS = 2**24
#: :meth:`TransformerModel.top_k` shortlists in float32 every class within this relative
#: distance of the k-th best, far above float32's rounding of ``p(<unk>) / g`` (2^-24).
NEAR_TIE = 1e-6
#: Targets of padding positions, which the loss skips.
IGNORE = -100


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _torch() -> Any:
    """torch, or a DataleverError saying how to install it."""
    if not _torch_installed():
        raise DataleverError(
            "The transformer learner needs PyTorch, which is not installed.",
            "install it (pip install 'datalever[gpu]', or pip install torch), or use the "
            "kneser_ney learner.",
        )
    return mf_torch._torch()


class TransformerLM(Learner):
    """A decoder-only causal transformer trained on token files by AdamW on next-symbol
    cross-entropy. Each scenario trains a model from scratch; on a GPU (or with ``batched``)
    the scenarios of a batch train together (:class:`BatchedFits`)."""

    name = "transformer"
    task: ClassVar[str] = "code"
    version = "1"
    #: Scenarios per batch: batched fits on a GPU gain from more of them at once.
    cpu_batch_size = 8
    gpu_batch_size = 32

    class Config(LearnerConfig):
        context: int = Field(
            64, ge=1, le=8192, description="Symbols of history a prediction sees at most."
        )
        d_model: int = Field(64, ge=1, le=4096, description="Width of embeddings and layers.")
        layers: int = Field(2, ge=1, le=64, description="Transformer blocks.")
        heads: int = Field(2, ge=1, le=64, description="Attention heads; must divide d_model.")
        epochs: int = Field(1, ge=1, le=1000, description="Passes over the training windows.")
        batch_windows: int = Field(
            32, ge=1, le=65536, description="Windows of context symbols per optimiser step."
        )
        lr: float = Field(3e-3, gt=0, le=1, description="AdamW learning rate.")
        seed: int = Field(
            0,
            ge=0,
            le=MAX_SEED,
            description="Seeds the initial weights and the order of the windows.",
        )
        device: Literal["auto", "cpu", "cuda"] = Field(
            "auto", description="Where to train and score: auto takes CUDA when torch sees it."
        )
        vocab_cap: int | None = Field(
            4096,
            ge=1,
            le=2**31 - 1,
            description="Codes with an embedding of their own: <unk> and the most frequent "
            "others in training; the rest share <unk>'s. Unset: every code has its own.",
        )
        batched: bool = Field(
            False,
            exclude_if=lambda v: not v,
            description="Fit the scenarios of a batch together on any device (always so on "
            "CUDA): equal to separate fits to float32 rounding.",
        )

        @model_validator(mode="after")
        def _heads_divide_width(self) -> Self:
            if self.d_model % self.heads:
                raise ValueError(
                    f"heads ({self.heads}) must divide d_model ({self.d_model}): each head "
                    "attends over d_model / heads dimensions"
                )
            return self

    def __init__(
        self,
        context: int = 64,
        d_model: int = 64,
        layers: int = 2,
        heads: int = 2,
        epochs: int = 1,
        batch_windows: int = 32,
        lr: float = 3e-3,
        seed: int = 0,
        device: str = "auto",
        vocab_cap: int | None = 4096,
        batched: bool = False,
    ) -> None:
        c = self.configure(
            context=context,
            d_model=d_model,
            layers=layers,
            heads=heads,
            epochs=epochs,
            batch_windows=batch_windows,
            lr=lr,
            seed=seed,
            device=device,
            vocab_cap=vocab_cap,
            batched=batched,
        )
        self.context: int = c.context
        self.d_model: int = c.d_model
        self.layers: int = c.layers
        self.heads: int = c.heads
        self.epochs: int = c.epochs
        self.batch_windows: int = c.batch_windows
        self.lr: float = c.lr
        self.seed: int = c.seed
        self.device: str = c.device
        self.vocab_cap: int | None = c.vocab_cap
        self.batched: bool = c.batched

    def params(self) -> dict:
        """The constructor parameters; ``batched`` only when set, so the keys of plain fits
        stay as they were."""
        params = super().params()
        if not params["batched"]:
            del params["batched"]
        return params

    def torch_device(self) -> str:
        """``"cuda"`` or ``"cpu"``: ``auto`` takes CUDA when torch sees a device, and
        ``cuda`` without one is refused here, before anything runs."""
        if self.device == "auto":
            return "cuda" if mf_torch.gpu_present() else "cpu"
        torch = _torch()
        if self.device == "cuda" and not torch.cuda.is_available():
            raise DataleverError(
                'The transformer learner asks for device = "cuda", and torch sees no CUDA device.',
                'use device = "auto" or "cpu".',
            )
        return self.device

    @property
    def runs_on_gpu(self) -> bool:  # type: ignore[override]
        return self.torch_device() == "cuda"

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.gpu_batch_size if self.runs_on_gpu else self.cpu_batch_size

    def fast_path(self, base: TokenFiles) -> FastPath | None:
        """Batched fits (:class:`BatchedFits`) on CUDA or with ``batched``; else ``None``
        (plain fits)."""
        if self.device == "cpu" and not self.batched:
            return None
        device = self.torch_device()
        if device == "cuda" or self.batched:
            return BatchedFits(self, base, device)
        return None

    def key_variant(self) -> str | None:
        """A GPU rounds differently from the CPU: its results get keys of their own."""
        return "torch-cuda" if self.runs_on_gpu else None

    def check(self, data: Any) -> None:
        _torch()
        self.torch_device()

    def memory_bytes(self, n_contributors: int, width: int, n_records: int) -> int:
        """Weights, gradients and AdamW's two moments (``width`` taken as the vocabulary),
        plus one step's logits and their gradients, which dominate on a large vocabulary."""
        classes = width + 2 if self.vocab_cap is None else min(self.vocab_cap, width) + 2
        d = self.d_model
        weights = (classes + self.context) * d + self.layers * 12 * d * d
        logits = self.batch_windows * self.context * classes
        return 16 * weights + 12 * logits + super().memory_bytes(n_contributors, width, n_records)

    def fit(self, train: TokenFiles) -> TransformerModel:
        torch = _torch()
        device = torch.device(self.torch_device())
        classes = Classes.learn(train, self.vocab_cap)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _network(torch, classes.k, self.context, self.d_model, self.layers, self.heads)
        net.to(device).train()
        model = TransformerModel(net, classes, train.vocab_size, self.context)
        inputs, targets, _ = model._windows(train)
        if len(inputs) == 0:
            net.eval()
            return model
        x_all, y_all = torch.from_numpy(inputs), torch.from_numpy(targets)
        width = torch.from_numpy((targets != IGNORE).sum(axis=1))
        order = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            perm = torch.randperm(len(inputs), generator=order)
            for start in range(0, len(perm), self.batch_windows):
                idx = perm[start : start + self.batch_windows]
                w = int(width[idx].max())  # padding is at the end and attention causal
                x, y = x_all[idx, :w].to(device), y_all[idx, :w].to(device)
                real = y != IGNORE
                loss = torch.nn.functional.cross_entropy(_forward(torch, net, x, real), y[real])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
        net.eval()
        return model


class BatchedFits(FastPath):
    """Fit the scenarios of one base training set together, stacked along a scenario axis
    (see the module's docstring): each model equals its plain fit to float32 rounding."""

    def __init__(self, learner: TransformerLM, base: TokenFiles, device: str) -> None:
        self.learner = learner
        self.base = base
        self.device = device
        self.name = f"batched-torch-{device}"

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[Model]:
        trains = [delta.apply(self.base) for delta in deltas]
        if trains:
            yield from _fit_batched(self.learner, trains, self.device)


def _fit_batched(lm: TransformerLM, trains: list[TokenFiles], device_name: str) -> list:
    """One model per training set, fitted together: the same networks, windows, orders and
    steps as :meth:`TransformerLM.fit`, the steps of all scenarios run as one."""
    torch = _torch()
    from torch.func import grad, vmap

    device = torch.device(device_name)
    models, plans = [], []
    for train in trains:  # each scenario's network, windows and batches, as its plain fit's
        classes = Classes.learn(train, lm.vocab_cap)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(lm.seed)
            net = _network(torch, classes.k, lm.context, lm.d_model, lm.layers, lm.heads)
        net.to(device)
        model = TransformerModel(net, classes, train.vocab_size, lm.context)
        inputs, targets, _ = model._windows(train)
        steps = []
        if len(inputs):
            order = torch.Generator().manual_seed(lm.seed)
            for _ in range(lm.epochs):
                perm = torch.randperm(len(inputs), generator=order).numpy()
                steps += [
                    perm[a : a + lm.batch_windows] for a in range(0, len(perm), lm.batch_windows)
                ]
        width = (targets != IGNORE).sum(axis=1)
        models.append(model)
        plans.append((inputs, targets, width, steps))
    n_steps = np.array([len(p[3]) for p in plans])
    if not n_steps.any():
        for model in models:
            model.net.eval()
        return models

    k = len(models)
    rows = max(m.classes.k for m in models) + 2  # the stacked embedding table's rows
    template = models[0].net
    names = [name for name, _ in template.named_parameters()]
    params = {}
    for name in names:
        each = [dict(m.net.named_parameters())[name].detach() for m in models]
        if name == "embed.weight":  # each scenario's classes, then zero rows up to ``rows``
            each = [torch.nn.functional.pad(w, (0, 0, 0, rows - len(w))) for w in each]
        params[name] = torch.stack(each).clone()
    block = [n[len("blocks.layers.0.") :] for n in names if n.startswith("blocks.layers.0.")]
    # Each scenario's output classes: its own k + 1 (tokens and EOS), not BOS or padding.
    valid = torch.from_numpy(
        np.arange(rows - 1)[None, :] <= np.array([m.classes.k for m in models])[:, None]
    ).to(device)

    def loss(p: dict, x: Any, y: Any, ok: Any) -> Any:
        w = x.shape[-1]
        embed = p["embed.weight"]
        h = torch.nn.functional.embedding(x, embed) + p["position.weight"][:w]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(w, device=x.device)
        for i in range(lm.layers):
            h = _block(torch, {n: p[f"blocks.layers.{i}.{n}"] for n in block}, h, mask, lm.heads)
        h = torch.nn.functional.layer_norm(
            h, (h.shape[-1],), p["norm.weight"], p["norm.bias"], template["norm"].eps
        )
        logits = (h @ embed[: rows - 1].T).masked_fill(~ok, float("-inf"))
        real = y != IGNORE
        picked = torch.log_softmax(logits, dim=-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        return -(picked * real).sum() / real.sum().clamp(min=1)

    gradients = vmap(grad(loss))
    beta1, beta2, eps, decay = 0.9, 0.999, 1e-8, 1e-2  # AdamW's defaults, as the plain fit's
    avg = {n: torch.zeros_like(t) for n, t in params.items()}
    avg_sq = {n: torch.zeros_like(t) for n, t in params.items()}
    taken = np.zeros(k)
    b = lm.batch_windows
    for t in range(int(n_steps.max())):
        on = t < n_steps
        w = max(int(plans[s][2][plans[s][3][t]].max()) for s in np.flatnonzero(on))
        x = np.zeros((k, b, w), dtype=np.int64)
        y = np.full((k, b, w), IGNORE, dtype=np.int64)
        for s in np.flatnonzero(on):
            inputs, targets, _, steps = plans[s]
            idx = steps[t]
            x[s, : len(idx)], y[s, : len(idx)] = inputs[idx, :w], targets[idx, :w]
        g = gradients(params, torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), valid)
        with torch.no_grad():
            # clip_grad_norm_(…, 1.0) per scenario: the norm of the per-tensor norms.
            norms = torch.stack([g[n].flatten(1).norm(dim=1) for n in names]).norm(dim=0)
            clip = (1.0 / (norms + 1e-6)).clamp(max=1.0)
            taken += on
            step = np.maximum(taken, 1)
            step_size = torch.tensor(
                lm.lr / (1 - beta1**step), dtype=params[names[0]].dtype, device=device
            )
            root = torch.tensor(
                np.sqrt(1 - beta2**step), dtype=params[names[0]].dtype, device=device
            )
            live = torch.from_numpy(on).to(device)
            for n in names:
                shape = (k,) + (1,) * (params[n].dim() - 1)
                gn = g[n] * clip.view(shape)
                p = params[n] * (1 - lm.lr * decay)
                m = avg[n].lerp(gn, 1 - beta1)
                v = torch.addcmul(avg_sq[n] * beta2, gn, gn, value=1 - beta2)
                denom = v.sqrt() / root.view(shape) + eps
                p = p - step_size.view(shape) * (m / denom)  # as addcdiv_ rounds
                keep = live.view(shape)
                params[n] = torch.where(keep, p, params[n])
                avg[n] = torch.where(keep, m, avg[n])
                avg_sq[n] = torch.where(keep, v, avg_sq[n])
    with torch.no_grad():
        for s, model in enumerate(models):
            for name, weight in model.net.named_parameters():
                weight.copy_(params[name][s][: len(weight)])
            model.net.eval()
    return models


def _block(torch: Any, p: dict, h: Any, mask: Any, heads: int) -> Any:
    """One pre-norm block of :func:`_network` (``nn.TransformerEncoderLayer`` with
    ``norm_first``, ReLU, no dropout) on windows ``h`` of shape ``(windows, width, d)``, from
    its parameters ``p``: the same arithmetic, written with matrix products that
    ``torch.vmap`` batches (its attention kernels have no batching rule)."""
    f = torch.nn.functional
    n, w, d = h.shape
    x = f.layer_norm(h, (d,), p["norm1.weight"], p["norm1.bias"], 1e-5)
    q, k, v = f.linear(x, p["self_attn.in_proj_weight"], p["self_attn.in_proj_bias"]).chunk(3, -1)
    q, k, v = (t.reshape(n, w, heads, d // heads).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * (d // heads) ** -0.5 + mask
    a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, w, d)
    h = h + f.linear(a, p["self_attn.out_proj.weight"], p["self_attn.out_proj.bias"])
    x = f.layer_norm(h, (d,), p["norm2.weight"], p["norm2.bias"], 1e-5)
    x = f.relu(f.linear(x, p["linear1.weight"], p["linear1.bias"]))
    return h + f.linear(x, p["linear2.weight"], p["linear2.bias"])


class Classes:
    """Which class each code falls in: class 0 is ``<unk>``'s (shared by the codes without an
    embedding of their own), classes ``1 .. k - 1`` the kept codes in increasing code order,
    ``k`` EOS and ``k + 1`` BOS (input only). ``size[c]`` is how many codes share class ``c``
    (1 but for class 0), and ``unk`` lists class 0's codes in increasing order."""

    def __init__(self, kept: np.ndarray, vocab_size: int) -> None:
        kept = np.unique(np.concatenate([[0], kept])).astype(np.int64)
        self.k = len(kept)
        v = vocab_size
        self.code = np.concatenate([kept, [eos_code(v)]])  # each output class's lowest code
        self.of = np.zeros(v + 2, dtype=np.int64)  # each symbol's class (BOS included)
        self.of[kept] = np.arange(self.k)
        self.of[eos_code(v)], self.of[bos_code(v)] = self.k, self.k + 1
        self.unk = np.setdiff1d(np.arange(v, dtype=np.int64), kept[1:])
        self.size = np.ones(self.k + 1, dtype=np.int64)
        self.size[0] = len(self.unk)

    @classmethod
    def learn(cls, train: TokenFiles, cap: int | None) -> Classes:
        """The classes of a model fitted on ``train``: codes ranked by their count there."""
        v = train.vocab_size
        if cap is None or cap >= v:
            return cls(np.arange(v), v)
        counts = np.bincount(np.asarray(train.tokens, dtype=np.int64), minlength=v)[1:]
        best = np.lexsort((np.arange(1, v), -counts))[: cap - 1] + 1
        return cls(best, v)


def _network(torch: Any, k: int, context: int, d: int, layers: int, heads: int) -> Any:
    """The network's modules (a ``ModuleDict``, so a model pickles without a class of its
    own): embeddings of the ``k + 2`` input classes, learned positions, pre-norm blocks."""
    nn = torch.nn
    block = nn.TransformerEncoderLayer(
        d, heads, dim_feedforward=4 * d, dropout=0.0, batch_first=True, norm_first=True
    )
    net = nn.ModuleDict(
        {
            "embed": nn.Embedding(k + 2, d),
            "position": nn.Embedding(context, d),
            "blocks": nn.TransformerEncoder(block, layers, enable_nested_tensor=False),
            "norm": nn.LayerNorm(d),
        }
    )
    nn.init.normal_(net["embed"].weight, std=0.02)  # small, as tied output logits start flat
    nn.init.normal_(net["position"].weight, std=0.02)
    return net


def _forward(torch: Any, net: Any, x: Any, real: Any) -> Any:
    """Logits over the ``k + 1`` output classes (tokens and EOS) at the positions ``real``
    (a mask) of the windows ``x`` (input classes, shape ``(windows, width)``), row-major: the
    output layer, the costliest on a large vocabulary, skips the padding."""
    width = x.shape[1]
    h = net["embed"](x) + net["position"](torch.arange(width, device=x.device))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(width, device=x.device)
    h = net["norm"](net["blocks"](h, mask=mask, is_causal=True)[real])
    embed = net["embed"].weight
    return h @ embed[: embed.shape[0] - 1].T


class TransformerModel(Model):
    """A fitted transformer: the same interface as :class:`~datalever.tasks.code.ngram.
    NgramModel` (rows are each file's tokens then its EOS, in file order)."""

    def __init__(self, net: Any, classes: Classes, vocab_size: int, context: int) -> None:
        self.net = net
        self.classes = classes
        self.vocab_size = vocab_size
        self.context = context

    @property
    def eos(self) -> int:
        return eos_code(self.vocab_size)

    @property
    def bos(self) -> int:
        return bos_code(self.vocab_size)

    def targets(self, files: TokenFiles) -> tuple[np.ndarray, np.ndarray]:
        """The code predicted at each position (each file's tokens, then EOS) and the index
        of its file: the rows of :meth:`log2_prob` and :meth:`top_k`."""
        lengths = np.diff(np.asarray(files.offsets, dtype=np.int64))
        symbols, _ = self._symbols(files)
        return symbols[1], np.repeat(np.arange(len(files), dtype=np.int64), lengths + 1)

    def prob(self, files: TokenFiles) -> np.ndarray:
        """The probability of every predicted symbol given its window's history."""
        symbols, _ = self._symbols(files)
        target = self.classes.of[symbols[1]]
        out = np.empty(len(target))
        torch = _torch()
        for at, p in self._class_probs(files):
            t = torch.from_numpy(target[at]).to(p.device)
            out[at] = p.gather(1, t[:, None])[:, 0].double().cpu().numpy()
        return out / self.classes.size[target]

    def log2_prob(self, files: TokenFiles) -> np.ndarray:
        """``log2`` of :meth:`prob`: minus the mean over a file is its cross-entropy in bits
        per token (EOS included)."""
        return np.log2(self.prob(files))

    def distribution(self, files: TokenFiles) -> np.ndarray:
        """Every predicted symbol's probability at every position: shape ``(positions,
        V + 1)``, columns the codes (EOS last), each row summing to 1. Dense: for small
        vocabularies and checks."""
        symbol = self.classes.of[: self.vocab_size + 1]
        out = np.empty((len(self._symbols(files)[0][1]), self.vocab_size + 1))
        for at, p in self._class_probs(files):
            out[at] = p.double().cpu().numpy()[:, symbol] / self.classes.size[symbol]
        return out

    def top_k(self, files: TokenFiles, k: int) -> np.ndarray:
        """The ``k`` most probable next symbols (tokens or EOS, never BOS) at each predicted
        position, most probable first, ties by the lower code: shape ``(positions, k)``.

        Ranked by the values :meth:`prob` gives. The candidates are the classes as probable
        as the ``k``-th best or nearly (see :data:`NEAR_TIE`), found on the device;
        ``<unk>``'s class stands for its ``g`` codes, which all have ``p / g``, so only its
        ``k`` lowest can make the list. The few candidates are then ranked exactly."""
        if not 1 <= k <= self.vocab_size + 1:
            raise ValueError(f"k must be from 1 to {self.vocab_size + 1} (tokens and EOS)")
        torch = _torch()
        c = self.classes
        out = np.empty((len(self._symbols(files)[0][1]), k), dtype=np.int64)
        unk, share = c.unk[:k], float(c.size[0])
        for at, p in self._class_probs(files):
            # Shortlist in float32, where only <unk>'s p / g is rounded (by at most 2^-24):
            # a margin of NEAR_TIE keeps every class that could rank among the k best.
            unk_p = p[:, 0].double().cpu().numpy() / share  # as prob gives it
            p[:, 0] /= share  # in place: p is this loop's own
            kth = torch.topk(p, min(k, c.k + 1), dim=1).values[:, -1:]
            rows, cls = torch.nonzero(p >= kth * (1 - NEAR_TIE), as_tuple=True)
            value = p[rows, cls].double().cpu().numpy()
            rows, cls = rows.cpu().numpy(), cls.cpu().numpy()
            value[cls == 0] = unk_p[rows[cls == 0]]
            many = np.where(cls == 0, len(unk), 1)
            rows, value, code = np.repeat(rows, many), np.repeat(value, many), c.code[cls]
            code = np.repeat(code, many)
            code[np.repeat(cls == 0, many)] = np.tile(unk, int(np.count_nonzero(cls == 0)))
            best = np.lexsort((code, -value, rows))
            rows, code = rows[best], code[best]
            rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
            out[at] = code[rank < k].reshape(-1, k)
        return out

    def _symbols(self, files: TokenFiles) -> tuple[np.ndarray, np.ndarray]:
        """Each predicted position's input and target symbol (rows 0 and 1: ``BOS`` or the
        token before, and the token or ``EOS``) and its position within its file."""
        v = self.vocab_size
        offsets = np.asarray(files.offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        tokens = np.asarray(files.tokens[offsets[0] : offsets[-1]], dtype=np.int64)
        if len(tokens) and (int(tokens.min()) < 0 or int(tokens.max()) >= v):
            raise ValueError(
                f"token codes must lie in 0..{v - 1} (the model's vocabulary), "
                f"got {int(tokens.min())}..{int(tokens.max())}"
            )
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths + 1, out=starts[1:])
        local = np.arange(starts[-1]) - np.repeat(starts[:-1], lengths + 1)
        symbols = np.empty((2, starts[-1]), dtype=np.int64)
        symbols[0] = bos_code(v)
        symbols[0, local > 0] = tokens  # each file's tokens follow its BOS
        symbols[1] = eos_code(v)
        symbols[1, local < np.repeat(lengths, lengths + 1)] = tokens
        return symbols, local

    def _windows(self, files: TokenFiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The windows of ``files`` (see the module's docstring): input classes and target
        classes, shape ``(windows, context)``, targets :data:`IGNORE` after a file's end,
        and the flat index (``window × context + column``) of each predicted position."""
        c = self.context
        symbols, local = self._symbols(files)
        per_file = np.diff(np.asarray(files.offsets, dtype=np.int64)) + 1  # predictions
        n_windows = -(-per_file // c)
        window_start = np.concatenate([[0], np.cumsum(n_windows)])[:-1]
        window = np.repeat(window_start, per_file) + local // c
        flat = window * c + local % c
        inputs = np.zeros(int(n_windows.sum()) * c, dtype=np.int64)
        targets = np.full(len(inputs), IGNORE, dtype=np.int64)
        inputs[flat] = self.classes.of[symbols[0]]
        targets[flat] = self.classes.of[symbols[1]]
        return inputs.reshape(-1, c), targets.reshape(-1, c), flat

    def _class_probs(self, files: TokenFiles):
        """For batches of windows in order: the rows they predict and, for each, the float32
        softmax over the ``k + 1`` output classes (on the model's device). The batches depend
        only on the model, so every method sees the same numbers."""
        torch = _torch()
        inputs, targets, flat = self._windows(files)
        c = self.context
        row_of = np.full(targets.size, -1, dtype=np.int64)
        row_of[flat] = np.arange(len(flat))
        per_batch = max(1, EVAL_ELEMENTS // (c * (self.classes.k + 1)))
        device = next(self.net.parameters()).device
        with torch.no_grad():
            for start in range(0, len(inputs), per_batch):
                stop = min(start + per_batch, len(inputs))
                rows = row_of[start * c : stop * c].reshape(stop - start, c)
                width = int((rows >= 0).sum(axis=1).max())
                x = torch.from_numpy(inputs[start:stop, :width]).to(device)
                real = rows[:, :width] >= 0
                logits = _forward(torch, self.net, x, torch.from_numpy(real).to(device))
                yield rows[:, :width][real], torch.softmax(logits.float(), dim=-1)
