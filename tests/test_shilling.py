"""Shilling: fake profiles as new contributors, their ratings by attack method, the target
item's measures through the engine, and refusals of parameters that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.collectives import Collective, draw
from datalever.errors import DataleverError
from datalever.levers import Poison
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC, run_fast_and_plain

#: Push a little-known film with fake profiles (average attack).
PUSH = SMALL_SPEC.replace(
    '[lever]\nkind = "strike"',
    '[lever]\nkind = "poison"\nattack = "shilling"\ntarget = "1300"\nmethod = "average"\n'
    "profiles = 2",
)


def _item(data, item_id: str) -> int:
    return int(np.flatnonzero(np.asarray(data.item_ids).astype(str) == item_id)[0])


def test_profiles_are_new_contributors_rating_the_target_and_their_filler(ml100k):
    d = draw(Collective("random", size=0.05), ml100k, 0, seed=0)
    lever = Poison(attack="shilling", target="50", intent="nuke", method="bandwagon", filler=0.02)
    delta = lever.delta(ml100k, d.participants, np.random.default_rng(1), np.arange(len(ml100k)))
    fake = delta.added
    n = len(d.participants)
    assert len(delta.removed) == 0 and fake.n_users == ml100k.n_contributors + n
    assert set(np.unique(fake.users)) == set(
        range(ml100k.n_contributors, ml100k.n_contributors + n)
    )
    target = _item(ml100k, "50")
    assert (fake.ratings[fake.items == target] == 1).all()  # nuked: the lowest rating
    assert (fake.items == target).sum() == n
    per_profile = np.bincount(fake.users - ml100k.n_contributors)
    filler = round(0.02 * (ml100k.n_items - 1))
    assert (per_profile == filler + 3 + 1).all()  # filler, 3 popular items, the target
    values = set(np.unique(ml100k.records["rating"]))
    assert set(np.unique(fake.ratings)) <= values


def test_average_filler_follows_each_items_own_mean(ml100k):
    d = draw(Collective("random", size=0.5), ml100k, 0, seed=0)
    lever = Poison(attack="shilling", target="50", method="average", filler=0.2)
    fake = lever.delta(
        ml100k, d.participants, np.random.default_rng(2), np.arange(len(ml100k))
    ).added
    r = ml100k.records
    item_mean = r.groupby("item")["rating"].mean()
    filler = fake.items != _item(ml100k, "50")
    by_item = np.bincount(
        fake.items[filler], weights=fake.ratings[filler], minlength=ml100k.n_items
    )
    count = np.bincount(fake.items[filler], minlength=ml100k.n_items)
    often = count >= 30
    drawn = by_item[often] / count[often]
    assert np.corrcoef(drawn, item_mean.reindex(np.flatnonzero(often)).to_numpy())[0, 1] > 0.8


def test_pushing_a_film_raises_its_predictions_and_fast_paths_equal_plain_fits(tmp_path, ml100k):
    spec = parse_spec(PUSH)
    store = ResultsStore(tmp_path / "r.sqlite")
    fast = run_fast_and_plain(spec, store, ml100k, rtol=1e-6, atol=1e-9)
    shift = fast[(fast.metric == "target_score") & (fast.eval_group == "everyone")]
    shift = shift[shift.lever != "none"]
    assert len(shift) and (shift.value > shift.baseline).all()  # pushed up for everyone
    hits = fast[(fast.metric == "target_hit@10") & (fast.lever != "none")]
    assert hits.value.between(0, 1).all()


def test_a_question_about_the_shilled_item_is_accepted():
    """``target_score`` is measured by poison (shilling) and by plant: either lever will do."""
    spec = parse_spec(PUSH + '\n[question]\nmetric = "target_score"\ndelta = "+0.5"\n')
    assert spec.question.metric == "target_score"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"attack": "shilling"}, "needs a target item"),
        ({"attack": "shilling", "target": "no-such-film"}, "has no item 'no-such-film'"),
        ({"attack": "shilling", "target": "50", "fraction": 0.5}, "takes no fraction"),
        ({"attack": "shilling", "target": "50", "selected": 2}, "Only the bandwagon"),
        ({"attack": "vandalism", "profiles": 2}, "takes no profiles"),
        ({"attack": "shilling", "target": "50", "filler": 0.0}, "filler"),
    ],
)
def test_bad_shilling_parameters_are_refused(params, needle, ml100k):
    with pytest.raises(DataleverError, match=needle):
        Poison(**params).check(ml100k)
