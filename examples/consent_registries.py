"""Write the example consent registries that `optout-ml100k.toml` and `optout-stdlib.toml` read.

Nobody has recorded real consent for MovieLens raters or standard-library packages, so these
registries are illustrations, made by a stated rule rather than at random, because real
opt-outs are not random:

- ``consent-ml100k.sqlite``: the MovieLens-100K raters whose occupation is artist, writer or
  entertainment (creative workers, the people who ask most for opt-outs) reserve AI training
  on 2026-03-01, each for their whole account; the dataset is opt-out. Ten more raters, the
  first ten educators, reserve it on 2026-09-01, after the as-of time the example reads.
- ``consent-stdlib.sqlite``: the standard library's contributors (packages or module
  families) in the top tenth by number of files reserve generative AI training on
  2026-03-01: the most prolific authors leave. The dataset (named ``python-stdlib`` in the
  registry, whatever the Python version) is opt-out.

Run from the repository root: ``python examples/consent_registries.py`` (it replaces the two
files). Every event gets a fixed time, so the same data gives the same registries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from datalever.data.registry import load_dataset
from datalever.registry import Registry
from datalever.registry.contributors import contributor_work
from datalever.tasks.code.corpus import load_stdlib

HERE = Path(__file__).parent
CREATIVE = ("artist", "writer", "entertainment")


class FixedClock:
    """Events at a set time: the example registries do not depend on when they were made."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


def reserve(reg: Registry, dataset: str, ids: list[str], purpose: str) -> None:
    for ident in ids:
        account = reg.create_account(f"{dataset} contributor {ident}")
        reg.register_work(account, contributor_work(dataset, ident))
        reg.set_preference(account, purpose, "reserved")


def fresh(path: Path, clock: FixedClock) -> Registry:
    path.unlink(missing_ok=True)
    return Registry(path, clock=clock)


def movielens(path: Path) -> int:
    data = load_dataset("movielens-100k")
    occupation = data.contributors["occupation"].astype(str).str.lower()
    ids = data.contributor_ids.astype(str)
    creative = ids[occupation.isin(CREATIVE).to_numpy()].tolist()
    educators = ids[(occupation == "educator").to_numpy()][:10].tolist()
    clock = FixedClock(datetime(2026, 1, 15, tzinfo=UTC))
    with fresh(path, clock) as reg:
        reg.set_dataset_policy("movielens-100k", "opt-out")
        clock.now = datetime(2026, 3, 1, tzinfo=UTC)
        reserve(reg, "movielens-100k", creative, "train-ai")
        clock.now = datetime(2026, 9, 1, tzinfo=UTC)
        reserve(reg, "movielens-100k", educators, "train-ai")
    return len(creative)


def stdlib(path: Path) -> int:
    corpus = load_stdlib()
    files = corpus.contributors["files"].to_numpy()
    prolific = files >= np.quantile(files, 0.9)
    names = [str(n) for n in corpus.contributor_ids[prolific]]
    clock = FixedClock(datetime(2026, 1, 15, tzinfo=UTC))
    with fresh(path, clock) as reg:
        reg.set_dataset_policy("python-stdlib", "opt-out")
        clock.now = datetime(2026, 3, 1, tzinfo=UTC)
        reserve(reg, "python-stdlib", names, "train-genai")
    return len(names)


if __name__ == "__main__":
    n = movielens(HERE / "consent-ml100k.sqlite")
    print(f"consent-ml100k.sqlite: {n} raters reserve train-ai as of 2026-06-01")
    n = stdlib(HERE / "consent-stdlib.sqlite")
    print(f"consent-stdlib.sqlite: {n} contributors reserve train-genai")
