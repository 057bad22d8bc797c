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

PyTorch is optional: ``pip install 'datalever[gpu]'`` (or ``pip install torch``).
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from datalever.core.config import MAX_SEED, LearnerConfig
from datalever.core.learner import Learner, Model
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
    cross-entropy. Plain fits only: each scenario trains a model from scratch."""

    name = "transformer"
    task: ClassVar[str] = "code"
    version = "1"

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
