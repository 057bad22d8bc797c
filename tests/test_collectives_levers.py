"""Collectives (who acts), levers (what they withhold) and the split protocols, on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datalever.collectives import Collective, draw, group_members
from datalever.data.contributions import Contributions, TrainingSet
from datalever.errors import DataleverError
from datalever.learners.base import Delta
from datalever.levers import Boycott, Strike, make_lever
from datalever.protocols import DataStrikesProtocol, HoldoutProtocol

# ----------------------------------------------------------------------------- tiny data
#
# 20 users with ids 101..120 (codes 0..19 after factorising); the user with code k has k + 1
# ratings, on items 0..k, so 1 + 2 + ... + 20 = 210 records.
# gender: F for even codes (10 users); occupation cycles student/engineer/artist/writer.

AGES = [17, 18, 24, 25, 35, 45, 50, 56, 18, 22, 30, 33, 40, 19, 25, 26, 60, 21, 24, 17]
OCCUPATIONS = ["student", "engineer", "artist", "writer"]


def make_data() -> Contributions:
    rows = [
        (101 + k, i, float((k + i) % 5 + 1), 1000 * k + i) for k in range(20) for i in range(k + 1)
    ]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    users = pd.DataFrame(
        {
            "gender": ["F" if k % 2 == 0 else "M" for k in range(20)],
            "age": AGES,
            "occupation": [OCCUPATIONS[k % 4] for k in range(20)],
        },
        index=pd.Index(range(101, 121), name="user"),
    )
    return Contributions.from_frames("tiny", ratings, users=users, rating_scale=(1.0, 5.0))


@pytest.fixture(scope="module")
def data() -> Contributions:
    return make_data()


def codes(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()


def per_user_counts(data: Contributions, mask: np.ndarray) -> np.ndarray:
    users = data.records["contributor"].to_numpy()
    return np.bincount(users[mask], minlength=data.n_contributors)


def test_tiny_data_is_as_described(data):
    assert data.n_contributors == 20
    assert len(data) == 210
    assert np.bincount(data.records["contributor"]).tolist() == list(range(1, 21))


# ----------------------------------------------------------------------- random collectives


@pytest.mark.parametrize(
    ("collective", "size"),
    [
        (Collective("random", size=0.25), 5),  # round(0.25 * 20) = 5
        (Collective("random", size=0.1), 2),  # round(0.1 * 20) = 2
        (Collective("random", size=1.0), 20),
        (Collective("random", count=7), 7),
        (Collective("random", count=0), 0),
    ],
)
def test_random_collective_sizes(data, collective, size):
    d = draw(collective, data, sample=0, seed=1)
    assert len(d.participants) == size
    assert len(np.unique(d.participants)) == size  # no one drawn twice
    assert d.participants.tolist() == sorted(d.participants.tolist())
    assert ((d.participants >= 0) & (d.participants < 20)).all()
    assert d.group_members is None


def test_random_collective_reproducible_and_varies_by_sample(data):
    c = Collective("random", size=0.25)
    first = draw(c, data, sample=0, seed=1).participants
    np.testing.assert_array_equal(first, draw(c, data, sample=0, seed=1).participants)
    samples = [tuple(draw(c, data, sample=s, seed=1).participants) for s in range(5)]
    assert len(set(samples)) == 5
    assert tuple(draw(c, data, sample=0, seed=2).participants) != samples[0]


def test_random_collective_independent_of_other_collectives(data):
    c = Collective("random", size=0.25)
    alone = draw(c, data, sample=3, seed=1).participants
    for other in (Collective("random", count=9), Collective("group", group="gender:F")):
        draw(other, data, sample=3, seed=1)
    np.testing.assert_array_equal(alone, draw(c, data, sample=3, seed=1).participants)
    # two collectives of the same size are drawn from different streams
    same_size = draw(Collective("random", count=5), data, sample=3, seed=1).participants
    assert tuple(same_size) != tuple(alone)


def test_random_collective_larger_than_population(data):
    with pytest.raises(DataleverError, match="21 users"):
        draw(Collective("random", count=21), data, sample=0, seed=1)


def test_no_collective_draws_nobody(data):
    assert len(draw(Collective("none"), data, sample=0, seed=1).participants) == 0


# ------------------------------------------------------------------------ groups


def test_gender_group(data):
    assert codes(group_members(data, "gender:F")) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert codes(group_members(data, "gender:f")) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]


def test_age_groups(data):
    # ages 18..24 inclusive: codes 1 (18), 2 (24), 8 (18), 9 (22), 13 (19), 17 (21), 18 (24)
    assert codes(group_members(data, "age:18-24")) == [1, 2, 8, 9, 13, 17, 18]
    # one value: codes 3 and 14 are 25
    assert codes(group_members(data, "age:25")) == [3, 14]
    with pytest.raises(DataleverError, match="age range"):
        group_members(data, "age:young")


def test_occupation_group(data):
    assert codes(group_members(data, "occupation:student")) == [0, 4, 8, 12, 16]
    assert codes(group_members(data, "occupation:Writer")) == [3, 7, 11, 15, 19]


def test_activity_groups(data):
    # counts are 1..20. 90th percentile (linear): position 0.9 * 19 = 17.1 between the
    # sorted values 18 and 19 -> 18.1; counts >= 18.1 are 19 and 20 -> codes 18, 19
    assert codes(group_members(data, "top-10%")) == [18, 19]
    # 10th percentile: position 1.9 -> 2 + 0.9 * 1 = 2.9; counts <= 2.9 -> codes 0, 1
    assert codes(group_members(data, "bottom-10%")) == [0, 1]
    # 50th percentile: 10.5 -> counts 11..20
    assert codes(group_members(data, "top-50%")) == list(range(10, 20))


def test_file_group(data, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("101\n  105 \n\n999\n120\n")  # 999 is not a contributor: ignored
    assert codes(group_members(data, f"file:{path}")) == [0, 4, 19]
    with pytest.raises(DataleverError, match="does not exist"):
        group_members(data, f"file:{tmp_path / 'missing.txt'}")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"101\n\x00\x01\x02\n", "is binary"),
        ("101\nJos\xe9\n".encode("latin-1"), "is not UTF-8 text \\(byte 7"),
        ("101\n105\n".encode("utf-16"), "is binary"),
        (b"", "lists no ids"),
        (b"\n  \n\t\n", "lists no ids"),
        (b"999\n998\n", "None of the 2 ids .* is a contributor of .*ids look like 101, 102"),
        (b"999\n", "The 1 id .* is not a contributor"),
    ],
)
def test_bad_group_files(data, tmp_path, content, problem):
    path = tmp_path / "ids.txt"
    path.write_bytes(content)
    with pytest.raises(DataleverError, match=problem):
        group_members(data, f"file:{path}")


def test_group_file_with_bom_and_crlf(data, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_bytes(b"\xef\xbb\xbf101\r\n105\r\n")
    assert codes(group_members(data, f"file:{path}")) == [0, 4]


def test_group_file_that_is_a_folder_pipe_device_or_huge(data, tmp_path):
    import os

    with pytest.raises(DataleverError, match="is a folder"):
        group_members(data, f"file:{tmp_path}")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DataleverError, match="not a regular file"):
        group_members(data, f"file:{tmp_path / 'pipe'}")  # reading would wait for a writer
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(DataleverError, match="not a regular file"):
        group_members(data, f"file:{tmp_path / 'zero'}")
    with open(tmp_path / "huge", "wb") as f:
        f.truncate(100 << 20)
    with pytest.raises(DataleverError, match="104,857,600 bytes"):
        group_members(data, f"file:{tmp_path / 'huge'}")
    with pytest.raises(DataleverError, match="characters long"):
        group_members(data, "file:" + "y" * 10_000_000)


def test_group_selecting_nobody(data):
    with pytest.raises(DataleverError, match="selects nobody"):
        group_members(data, "gender:X")
    with pytest.raises(DataleverError, match="selects nobody"):
        group_members(data, "age:90-99")


def test_unknown_attribute_and_unreadable_group(data):
    with pytest.raises(DataleverError, match="no contributor attribute 'zodiac'") as err:
        group_members(data, "zodiac:leo")
    assert "gender" in err.value.problem  # lists the attributes there are
    with pytest.raises(DataleverError, match="Cannot read the group"):
        group_members(data, "students")


@pytest.mark.parametrize(("participation", "expected"), [(0.5, 5), (1.0, 10), (0.3, 3)])
def test_participation_rate(data, participation, expected):
    c = Collective("group", group="gender:F", participation=participation)
    d = draw(c, data, sample=0, seed=4)
    assert d.group_members.tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert len(d.participants) == expected  # round(participation * 10)
    assert set(d.participants.tolist()) <= set(d.group_members.tolist())
    np.testing.assert_array_equal(d.participants, draw(c, data, sample=0, seed=4).participants)


def test_group_draw_varies_by_sample(data):
    c = Collective("group", group="gender:F", participation=0.5)
    samples = {tuple(draw(c, data, sample=s, seed=4).participants) for s in range(5)}
    assert len(samples) > 1


def test_group_collective_selecting_nobody_raises(data):
    with pytest.raises(DataleverError, match="selects nobody"):
        draw(Collective("group", group="occupation:astronaut"), data, sample=0, seed=1)


# ---------------------------------------------------------------------- genre fans
#
# Items 0..11 are Horror (item 0 also Thriller), items 12..14 Comedy.
# u1: 10 Horror ratings of 5                        -> 10 ratings, not more than 10: out
# u2: 11 Horror ratings of 4                        -> mean 4.0 >= 4: in
# u3: 10 Horror ratings of 4 and one of 3           -> mean 43/11 = 3.909 < 4: out
# u4: 11 Horror ratings of 5 and 3 Comedy ratings 1 -> Horror mean 5 (Comedy ignored): in
# u5: 3 Comedy ratings of 5                         -> no Horror: out


def make_genre_data() -> Contributions:
    rows = [("u1", i, 5.0) for i in range(10)]
    rows += [("u2", i, 4.0) for i in range(11)]
    rows += [("u3", i, 4.0) for i in range(10)] + [("u3", 10, 3.0)]
    rows += [("u4", i, 5.0) for i in range(11)] + [("u4", i, 1.0) for i in (12, 13, 14)]
    rows += [("u5", i, 5.0) for i in (12, 13, 14)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating"])
    genres = ["Horror|Thriller"] + ["Horror"] * 11 + ["Comedy"] * 3
    items = pd.DataFrame({"genres": genres}, index=range(15))
    return Contributions.from_frames("genres", ratings, items=items)


def test_genre_fans():
    data = make_genre_data()
    assert data.contributor_ids.tolist() == ["u1", "u2", "u3", "u4", "u5"]
    assert codes(group_members(data, "genre-fans:Horror")) == [1, 3]
    assert codes(group_members(data, "genre-fans:horror")) == [1, 3]
    # item 0 is the only Thriller: u1..u4 have one Thriller rating each, far from 11
    with pytest.raises(DataleverError, match="selects nobody"):
        group_members(data, "genre-fans:Thriller")
    with pytest.raises(DataleverError, match="no genre 'Western'") as err:
        group_members(data, "genre-fans:Western")
    assert "Horror" in err.value.fix


def test_genre_fans_without_genres(data):
    with pytest.raises(DataleverError, match="no genre"):
        group_members(data, "genre-fans:Horror")


# ---------------------------------------------------------------------------- levers


def test_full_strike_withholds_all_participant_records(data):
    participants = np.array([2, 5, 19])
    withheld = Strike().withheld(data, participants, np.random.default_rng(0))
    users = data.records["contributor"].to_numpy()
    np.testing.assert_array_equal(withheld, np.isin(users, participants))
    # counts 3 + 6 + 20 = 29 records
    assert withheld.sum() == 29


def test_partial_strike_withholds_half_of_each_participant(data):
    # participants 2, 3, 4, 9 have 3, 4, 5, 10 records; round() is Python's (half to even):
    # round(1.5) = 2, round(2.0) = 2, round(2.5) = 2, round(5.0) = 5
    participants = np.array([2, 3, 4, 9])
    lever = Strike(0.5)
    withheld = lever.withheld(data, participants, np.random.default_rng(0))
    counts = per_user_counts(data, withheld)
    expected = np.zeros(20, dtype=int)
    expected[[2, 3, 4, 9]] = [2, 2, 2, 5]
    assert counts.tolist() == expected.tolist()
    assert [round(0.5 * n) for n in (3, 4, 5, 10)] == [2, 2, 2, 5]
    # reproducible from the generator; another generator withholds other records
    again = lever.withheld(data, participants, np.random.default_rng(0))
    np.testing.assert_array_equal(withheld, again)
    other = lever.withheld(data, participants, np.random.default_rng(1))
    assert not np.array_equal(withheld, other)
    assert per_user_counts(data, other).tolist() == expected.tolist()


def test_partial_strike_quota_matches_round_for_every_participant(data):
    participants = np.arange(20)
    for fraction in (0.1, 0.3, 0.75):
        withheld = Strike(fraction).withheld(data, participants, np.random.default_rng(5))
        counts = per_user_counts(data, withheld)
        assert counts.tolist() == [round(fraction * n) for n in range(1, 21)]


def test_boycott_leaves_service():
    assert Boycott().leaves_service
    assert not Strike().leaves_service
    assert not Strike(0.5).leaves_service
    assert Strike(0.5).label == "strike 0.5"
    assert Boycott().label == "boycott"


def test_boycott_withholds_like_a_strike(data):
    participants = np.array([1, 7])
    rng = np.random.default_rng
    np.testing.assert_array_equal(
        Boycott().withheld(data, participants, rng(0)),
        Strike().withheld(data, participants, rng(0)),
    )


@pytest.mark.parametrize(
    ("kind", "fraction", "message"),
    [
        ("flood", 1.0, "Unknown lever 'flood'"),
        ("strike", 0.0, "fraction"),
        ("strike", 1.5, "fraction"),
        ("boycott", -0.2, "fraction"),
    ],
)
def test_invalid_levers(kind, fraction, message):
    with pytest.raises(DataleverError, match=message):
        make_lever(kind, {"fraction": fraction})


def test_delta_apply_equals_manual_filter(data):
    fold = DataStrikesProtocol(n_folds=5).folds(data, seed=3)[1]
    base = data.training_set(fold.train)
    participants = draw(Collective("random", size=0.3), data, sample=0, seed=3).participants
    for lever in (Strike(), Strike(0.5)):
        withheld = lever.withheld(data, participants, np.random.default_rng(9))
        delta = lever.delta(data, participants, np.random.default_rng(9), fold.train)
        got = delta.apply(base)
        manual = data.training_set(fold.train[~withheld[fold.train]])
        for field in ("users", "items", "ratings"):
            np.testing.assert_array_equal(getattr(got, field), getattr(manual, field))
        assert (got.n_users, got.n_items) == (base.n_users, base.n_items)
        # no participant's withheld record is left; everything else is
        assert len(got) == len(base) - withheld[fold.train].sum()


def test_delta_with_added_records():
    base = TrainingSet(np.array([0, 1, 2]), np.array([0, 0, 1]), np.array([1.0, 2, 3]), 3, 2)
    added = TrainingSet(np.array([2]), np.array([0]), np.array([5.0]), 3, 2)
    got = Delta(np.array([1]), added).apply(base)
    assert got.users.tolist() == [0, 2, 2]
    assert got.items.tolist() == [0, 1, 0]
    assert got.ratings.tolist() == [1, 3, 5]
    assert len(Delta(np.zeros(0, dtype=np.int64)).apply(base)) == 3


# ------------------------------------------------------------------------- protocols


def test_data_strikes_folds_partition_records(data):
    folds = DataStrikesProtocol(n_folds=5).folds(data, seed=3)
    assert [f.index for f in folds] == [0, 1, 2, 3, 4]
    every_test = np.concatenate([f.test for f in folds])
    # each record is in exactly one test fold
    assert sorted(every_test.tolist()) == list(range(210))
    for f in folds:
        assert len(f.test) == 42  # 210 / 5
        assert sorted(np.concatenate([f.train, f.test]).tolist()) == list(range(210))
        assert not np.intersect1d(f.train, f.test).size


def test_data_strikes_folds_reproducible_by_seed(data):
    a = DataStrikesProtocol().folds(data, seed=3)
    b = DataStrikesProtocol().folds(data, seed=3)
    c = DataStrikesProtocol().folds(data, seed=4)
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa.test, fb.test)
        np.testing.assert_array_equal(fa.train, fb.train)
    assert not np.array_equal(a[0].test, c[0].test)


def test_data_strikes_uneven_folds():
    # 7 records in 3 folds: sizes 3, 2, 2
    ratings = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3], "item": range(7), "rating": 3.0})
    folds = DataStrikesProtocol(n_folds=3).folds(Contributions.from_frames("x", ratings), 0)
    assert [len(f.test) for f in folds] == [3, 2, 2]


def test_holdout_holds_out_a_fifth_per_user(data):
    (fold,) = HoldoutProtocol(test_fraction=0.2).folds(data, seed=3)
    assert fold.index == 0
    assert sorted(np.concatenate([fold.train, fold.test]).tolist()) == list(range(210))
    users = data.records["contributor"].to_numpy()
    held = np.bincount(users[fold.test], minlength=20)
    # n records -> max(1, round(0.2 n)) for n >= 2, none for n = 1:
    # 1:0  2:1 (0.4)  3:1 (0.6)  4:1 (0.8)  5:1  6:1 (1.2)  7:1 (1.4)  8:2 (1.6)  9:2 (1.8)
    # 10:2  11:2 (2.2)  12:2 (2.4)  13:3 (2.6)  14:3 (2.8)  15:3  16:3 (3.2)  17:3 (3.4)
    # 18:4 (3.6)  19:4 (3.8)  20:4
    assert held.tolist() == [0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4]
    # everyone keeps at least one training record
    assert (np.bincount(users[fold.train], minlength=20) >= 1).all()


def test_holdout_reproducible_by_seed(data):
    a = HoldoutProtocol().folds(data, seed=3)[0]
    b = HoldoutProtocol().folds(data, seed=3)[0]
    c = HoldoutProtocol().folds(data, seed=8)[0]
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
