"""The temporal and leave-one-out protocols: worked examples by hand, typed errors, the spec's
options, and end-to-end runs on MovieLens-100K through the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from datalever.data.contributions import Contributions
from datalever.errors import DataleverError
from datalever.protocols import LeaveOneOutProtocol, TemporalProtocol, cutoff_seconds
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from tests.test_cli import assert_clear_error, datalever

#: Seven records of three users (record index: user, item, rating, time).
#: 0: a x 5 @10   1: a y 3 @20   2: a z 4 @30   3: b x 2 @15   4: b w 5 @40
#: 5: c y 1 @35   6: c z 4 @50
RECORDS = pd.DataFrame(
    {
        "user": ["a", "a", "a", "b", "b", "c", "c"],
        "item": ["x", "y", "z", "x", "w", "y", "z"],
        "rating": [5, 3, 4, 2, 5, 1, 4],
        "timestamp": [10, 20, 30, 15, 40, 35, 50],
    }
)


def _data(frame: pd.DataFrame = RECORDS) -> Contributions:
    return Contributions.from_frames("toy", frame)


def _split(protocol, data: Contributions, seed: int = 0) -> tuple[list[int], list[int]]:
    (fold,) = protocol.folds(data, seed)
    assert sorted([*fold.train, *fold.test]) == list(range(len(data)))  # a partition
    return sorted(fold.train.tolist()), sorted(fold.test.tolist())


# ----------------------------------------------------------------------------- temporal


def test_temporal_cutoff_holds_out_records_at_or_after_it():
    # Records at times 30, 40, 35 and 50 are at or after 30; user c has none before it and
    # stays in the test set as a cold-start user.
    assert _split(TemporalProtocol(cutoff=30), _data()) == ([0, 1, 3], [2, 4, 5, 6])
    assert _split(TemporalProtocol(cutoff=30.5), _data()) == ([0, 1, 2, 3], [4, 5, 6])
    assert _split(TemporalProtocol(cutoff=50), _data()) == ([0, 1, 2, 3, 4, 5], [6])


def test_temporal_quantile_is_a_timestamp_of_the_data():
    # Sorted times 10 15 20 30 35 40 50 (positions 0-6): the 0.5 quantile is position 3, 30;
    # 0.8 is position 4.8, between 35 and 40, and takes the higher, 40; 0.1 is position 0.6,
    # between 10 and 15, and takes 15.
    assert _split(TemporalProtocol(quantile=0.5), _data()) == ([0, 1, 3], [2, 4, 5, 6])
    assert _split(TemporalProtocol(quantile=0.8), _data()) == ([0, 1, 2, 3, 5], [4, 6])
    assert _split(TemporalProtocol(quantile=0.1), _data()) == ([0], [1, 2, 3, 4, 5, 6])
    assert TemporalProtocol(quantile=0.5).cutoff_time(_data()) == 30.0


def test_temporal_cutoff_as_a_date():
    assert cutoff_seconds("1970-01-01T00:00:30") == 30.0
    assert cutoff_seconds("1998-03-01") == 888710400.0
    assert cutoff_seconds("1998-03-01T01:00:00+01:00") == 888710400.0
    assert _split(TemporalProtocol(cutoff="1970-01-01 00:00:35"), _data()) == (
        [0, 1, 2, 3],
        [4, 5, 6],
    )
    with pytest.raises(DataleverError, match="not a date or a number"):
        cutoff_seconds("next tuesday-ish")


def test_temporal_dates_in_the_data():
    frame = RECORDS.assign(timestamp=pd.to_datetime(RECORDS["timestamp"], unit="D"))
    data = _data(frame)  # loaded as seconds since 1970
    assert _split(TemporalProtocol(cutoff="1970-01-31"), data) == ([0, 1, 3], [2, 4, 5, 6])


def test_temporal_cutoff_outside_the_data_is_a_clear_error():
    with pytest.raises(DataleverError) as err:
        TemporalProtocol(cutoff=10).check(_data())
    assert "at or before the first record, so nothing would train" in err.value.problem
    assert "run from 1970-01-01 00:00:10 UTC (10) to 1970-01-01 00:00:50 UTC (50)" in str(err.value)
    with pytest.raises(DataleverError, match="after the last record, so nothing would be held"):
        TemporalProtocol(cutoff="2030-01-01").folds(_data(), 0)
    same = RECORDS.assign(timestamp=7)
    with pytest.raises(DataleverError, match="quantile of toy's timestamps.*nothing would train"):
        TemporalProtocol(quantile=0.5).check(_data(same))


def test_time_protocols_need_timestamps():
    data = _data(RECORDS.drop(columns="timestamp"))
    for protocol in (TemporalProtocol(cutoff=30), LeaveOneOutProtocol()):
        with pytest.raises(DataleverError) as err:
            protocol.folds(data, 0)
        assert "splits records by time, but toy has no timestamps" in err.value.problem
        assert "timestamp" in err.value.fix and "holdout" in err.value.fix
        with pytest.raises(DataleverError, match="no timestamps"):
            protocol.check(data)


# ----------------------------------------------------------------------------- leave-one-out


def test_leave_one_out_holds_out_each_users_latest():
    # a's latest is record 2 (@30), b's record 4 (@40), c's record 6 (@50).
    assert _split(LeaveOneOutProtocol(), _data()) == ([0, 1, 3, 5], [2, 4, 6])


def test_leave_one_out_keeps_single_record_users_in_training():
    frame = pd.concat(
        [RECORDS, pd.DataFrame({"user": ["d"], "item": ["x"], "rating": [3], "timestamp": [99]})]
    )
    train, test = _split(LeaveOneOutProtocol(), _data(frame))
    assert 7 in train and test == [2, 4, 6]


def test_leave_one_out_ties_follow_the_seed():
    # User e has two records at the same latest time: which one is held out is the seed's
    # choice, the same for the same seed, and each is chosen for some seed.
    frame = pd.DataFrame(
        {
            "user": ["e", "e", "e"],
            "item": ["p", "q", "r"],
            "rating": [1, 2, 3],
            "timestamp": [5, 9, 9],
        }
    )
    data = _data(frame)
    held = {seed: _split(LeaveOneOutProtocol(), data, seed)[1] for seed in range(40)}
    assert all(h in ([1], [2]) for h in held.values())
    assert {tuple(h) for h in held.values()} == {(1,), (2,)}
    assert all(_split(LeaveOneOutProtocol(), data, s)[1] == held[s] for s in range(40))


def test_leave_one_out_with_no_repeat_user_is_a_clear_error():
    frame = RECORDS.drop_duplicates("user")
    with pytest.raises(DataleverError, match="No user of toy has two or more records"):
        LeaveOneOutProtocol().check(_data(frame))


# ----------------------------------------------------------------------------- the spec

SPEC = """
name = "t"
[data]
dataset = "movielens-100k"
[protocol]
{protocol}
[[learners]]
name = "popularity"
[collectives]
sizes = [0.0, 0.1]
samples = 1
[evaluation]
metrics = ["ndcg@10"]
"""


def _spec(protocol: str):
    return parse_spec(SPEC.format(protocol=protocol))


def test_spec_options_of_the_temporal_protocol():
    assert _spec('kind = "temporal"').protocol.quantile is None
    assert _spec('kind = "temporal"\nquantile = 0.9').protocol.quantile == 0.9
    assert _spec('kind = "temporal"\ncutoff = "1998-03-01"').protocol.cutoff == "1998-03-01"
    assert _spec('kind = "temporal"\ncutoff = 888710400').protocol.cutoff == 888710400
    assert _spec('kind = "leave-one-out"').protocol.top_n
    for bad, needle in [
        ('kind = "temporal"\ncutoff = "1998-03-01"\nquantile = 0.5', "not both"),
        ('kind = "holdout"\ncutoff = 10', "belong to the temporal protocol"),
        ('kind = "leave-one-out"\nquantile = 0.5', "belong to the temporal protocol"),
        ('kind = "temporal"\nquantile = 1.0', "quantile"),
        ('kind = "temporal"\ncutoff = "soonish"', "not a date or a number"),
        ('kind = "temporal"\ncutoff = true', "cutoff"),
        ('kind = "temporal"\ncutoff = nan', "cutoff"),
        ('kind = "sliding"', "kind"),
    ]:
        with pytest.raises(DataleverError, match=needle):
            _spec(bad)


def test_old_specs_keep_their_run_ids():
    # The new options are left out of a spec's content when not given.
    content = _spec('kind = "holdout"').model_dump(mode="json")["protocol"]
    assert "cutoff" not in content and "quantile" not in content


# ----------------------------------------------------------------------------- end to end

RUN_SPEC = """
name = "{name}"
seed = 4

[data]
dataset = "movielens-100k"

[protocol]
{protocol}

[[learners]]
name = "biased_mf"
n_factors = 8
n_epochs = 3

[[learners]]
name = "ease"

[lever]
kind = "strike"

[collectives]
sizes = [0.0, 0.3]
samples = 2

[evaluation]
metrics = ["ndcg@10", "recall@10", "rmse"]
groups = ["everyone", "participants"]
"""


@pytest.mark.parametrize(
    "name, protocol",
    [
        ("temporal-quantile", 'kind = "temporal"\nquantile = 0.8'),
        ("temporal-date", 'kind = "temporal"\ncutoff = "1998-03-01"'),
        ("leave-one-out", 'kind = "leave-one-out"'),
    ],
)
def test_run_on_movielens_100k(name, protocol, tmp_path, ml100k):
    spec = tmp_path / "spec.toml"
    spec.write_text(RUN_SPEC.format(name=name, protocol=protocol))
    db = tmp_path / "r.sqlite"
    run = datalever("run", str(spec), "--store", str(db), "-q", "--jobs", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    out = datalever("results", "--store", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    by = {(r["learner"], r["metric"], r["eval_group"], r["collective"]): r for r in rows}
    none = [r for r in rows if r["eval_group"] == "everyone" and r["lever"] == "none"]
    metrics = {(r["learner"], r["metric"]) for r in none}
    # RMSE is scored for the rating learner on the later ratings, not for EASE (it ranks).
    assert ("biased_mf", "rmse") in metrics and ("ease", "rmse") not in metrics
    assert {("ease", "ndcg@10"), ("ease", "recall@10"), ("biased_mf", "ndcg@10")} <= metrics
    for r in none:
        assert np.isfinite(r["mean"]), r
        if r["metric"] != "rmse":
            assert 0.0 <= r["mean"] <= 1.0
    ease_ndcg = next(r["mean"] for r in none if r["learner"] == "ease" and "ndcg" in r["metric"])
    assert ease_ndcg > 0.01  # far above a random list of 10 among ~1,600 items
    assert by  # the strike rows are there too
    assert len({r["collective"] for r in rows}) == 2
    report = datalever("report", "--store", str(db), "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stdout + report.stderr
    assert (tmp_path / "r.html").stat().st_size > 1000
    store = ResultsStore(db)
    assert store.count(store.latest_run()) == 2 * (1 + 2)  # learners × scenarios


def test_run_refuses_a_cutoff_outside_the_data(tmp_path, ml100k):
    spec = tmp_path / "spec.toml"
    spec.write_text(RUN_SPEC.format(name="late", protocol='kind = "temporal"\ncutoff = 2e9'))
    db = tmp_path / "r.sqlite"
    result = datalever("run", str(spec), "--store", str(db), "-q")
    assert_clear_error(result, "after the last record, so nothing would be held out")
    assert not db.exists() or ResultsStore(db).runs().empty


def test_a_family_without_the_protocol_refuses_it(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "t"\n[data]\ndataset = "digits"\n[protocol]\nkind = "leave-one-out"\n'
        '[[learners]]\nname = "lda"\n[collectives]\nsizes = [0.5]\n'
    )
    result = datalever("run", str(spec), "--store", str(tmp_path / "r.sqlite"), "-q")
    assert_clear_error(result, "leave-one-out protocol", "classification", "data-strikes, holdout")
