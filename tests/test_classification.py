"""Classification as a task family: digits through the spec, the engine, the store and the
levers, with every fast path checked against plain fits of the same scenarios."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.collectives import Collective, draw
from datalever.core.delta import Delta
from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.levers import Boycott, Poison, Strike
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from datalever.tasks import load_data, make_learner
from datalever.tasks.classify import load_digits_dataset
from tests.conftest import run_fast_and_plain

DIGITS = """
name = "digits test"
seed = 3

[data]
dataset = "digits"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "gaussian_nb"

[[learners]]
name = "ridge"

[[levers]]
kind = "strike"

[[levers]]
kind = "boycott"

[[levers]]
kind = "poison"
attack = "label_flip"

[[levers]]
kind = "poison"
attack = "junk"
examples = 2

[collectives]
sizes = [0.2, 0.6]
samples = 2
groups = ["label:7"]
"""


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_a_digits_spec_takes_the_classification_defaults():
    spec = parse_spec(DIGITS)
    assert spec.task == "classification"
    assert spec.evaluation.metrics == ["accuracy", "macro_f1", "log_loss"]
    assert spec.evaluation.reference == "prior"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (('name = "ridge"', 'name = "biased_mf"'), "biased_mf' is a recommendation learner"),
        (("[collectives]", '[evaluation]\nmetrics = ["ndcg@10"]\n\n[collectives]'), "judges"),
        (('name = "ridge"', 'name = "lda"\nshrinkage = 2.0'), "shrinkage"),
        (
            ("[collectives]", '[evaluation]\nmetrics = ["log_loss"]\n\n[collectives]'),
            None,  # gaussian_nb gives probabilities: fine
        ),
    ],
)
def test_learners_and_metrics_of_another_family_are_refused(change, needle):
    text = DIGITS.replace(*change)
    if needle is None:
        parse_spec(text)
        return
    with pytest.raises(DataleverError) as refused:
        parse_spec(text)
    assert needle in str(refused.value)


def test_log_loss_needs_a_probabilistic_learner():
    text = DIGITS.replace('name = "gaussian_nb"\n', 'name = "ridge"\n', 1).replace(
        '[[learners]]\nname = "ridge"\n\n[[levers]]', "[[levers]]", 1
    )
    text = text.replace("[collectives]", '[evaluation]\nmetrics = ["log_loss"]\n\n[collectives]')
    with pytest.raises(DataleverError, match="class probabilities"):
        parse_spec(text)


def test_a_recommendation_spec_is_untouched_by_the_task_defaults():
    from tests.conftest import SMALL_SPEC

    spec = parse_spec(SMALL_SPEC)
    assert spec.task == "recommendation"
    assert spec.evaluation.reference == "item_mean"


def test_bad_poison_parameters_are_refused_before_anything_runs(tmp_path, digits):
    bad_target = parse_spec(
        DIGITS.replace('attack = "label_flip"', 'attack = "label_flip"\ntarget = "11"')
    )
    with pytest.raises(DataleverError, match="no class '11'"):
        run_spec(bad_target, ResultsStore(tmp_path / "r.sqlite"), data=digits)
    vandal = parse_spec(DIGITS.replace('attack = "label_flip"', 'attack = "vandalism"'))
    with pytest.raises(DataleverError, match="alters recommendation or code data"):
        run_spec(vandal, ResultsStore(tmp_path / "r.sqlite"), data=digits)
    with pytest.raises(DataleverError, match="takes no target"):
        Poison(attack="junk", target="3")
    assert not (tmp_path / "r.sqlite").exists() or ResultsStore(tmp_path / "r.sqlite").runs().empty


def test_a_digits_sweep_runs_and_every_fast_path_equals_plain_fits(tmp_path, digits):
    spec = parse_spec(DIGITS)
    store = ResultsStore(tmp_path / "r.sqlite")
    fast = run_fast_and_plain(spec, store, digits)
    assert set(fast["lever"]) == {"none", "strike", "boycott", "poison label_flip", "poison junk 2"}
    assert set(fast["path"]) == {"sufficient-statistics"}
    # Flipping 60 % of the labels costs far more than withholding them (a strike of 60 % can
    # even help Gaussian naive Bayes on one fold: fewer examples, tighter variances).
    acc = fast[(fast.metric == "accuracy") & (fast.eval_group == "everyone")]
    change = acc.assign(d=acc.value - acc.baseline).groupby(["lever", "collective"]).d.mean()
    assert change[("poison label_flip", "random 0.6")] < -0.05
    assert change[("poison label_flip", "random 0.6")] < change[("strike", "random 0.6")] - 0.05
    # A boycott's participants leave evaluation; a strike's stay.
    groups = fast.groupby("lever").eval_group.unique()
    assert "participants" not in groups["boycott"] and "participants" in groups["strike"]


def test_label_flips_change_labels_only_and_junk_only_adds(digits):
    from datalever.tasks import TASKS

    spec = parse_spec(DIGITS)
    fold = TASKS["classification"].folds(spec, digits)[0]
    d = draw(Collective("random", size=0.3), digits, 0, seed=1)
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    flip = Poison(attack="label_flip").delta(digits, d.participants, rng(), fold.train)
    base = digits.training_set(fold.train)
    np.testing.assert_array_equal(flip.added.X, base.X[flip.removed])
    assert (flip.added.y != base.y[flip.removed]).all()  # every flipped label is another class
    mine = np.isin(base.contributors, d.participants)
    assert set(flip.removed) == set(np.flatnonzero(mine))
    to_seven = Poison(attack="label_flip", target="7").delta(
        digits, d.participants, rng(), fold.train
    )
    assert (to_seven.added.y == 7).all()
    assert (base.y[to_seven.removed] != 7).all()  # sevens already are sevens: left alone
    junk = Poison(attack="junk", examples=3).delta(digits, d.participants, rng(), fold.train)
    assert len(junk.removed) == 0 and len(junk.added) == 3 * len(d.participants)
    assert (digits.features.min(0) <= junk.added.X).all()
    assert (digits.features.max(0) >= junk.added.X).all()
    assert set(np.unique(junk.added.contributors)) == set(d.participants)


@pytest.mark.parametrize(
    "lever",
    [
        Strike(),
        Strike(0.5),
        Boycott(),
        Poison(attack="label_flip"),
        Poison(attack="label_flip", target="0"),
        Poison(attack="junk", examples=4),
    ],
    ids=repr,
)
@pytest.mark.parametrize("name", ["prior", "gaussian_nb", "multinomial_nb", "ridge", "lda"])
def test_every_fast_path_equals_a_plain_fit_for_every_lever(name, lever, digits):
    from datalever.core.learner import fit_scenarios
    from datalever.tasks import TASKS

    spec = parse_spec(DIGITS)
    fold = TASKS["classification"].folds(spec, digits)[1]
    base = digits.training_set(fold.train)
    learner = make_learner(name)
    deltas = []
    for sample, size in enumerate([0.05, 0.4, 1.0]):
        d = draw(Collective("random", size=size), digits, sample, seed=2)
        deltas.append(
            lever.delta(digits, d.participants, np.random.default_rng(sample), fold.train)
        )
    deltas.append(Delta(np.zeros(0, dtype=np.int64)))
    test_X = digits.features[fold.test]
    fast = list(fit_scenarios(learner, base, deltas, learner.fast_path(base)))
    for delta, model in zip(deltas, fast, strict=True):
        plain = learner.fit(delta.apply(base))
        np.testing.assert_allclose(model.scores(test_X), plain.scores(test_X), rtol=1e-7, atol=1e-9)


def test_load_data_reads_a_labelled_table_with_contributors(tmp_path):
    digits = load_digits_dataset()
    rows = ["writer,digit," + ",".join(f"p{i}" for i in range(64))]
    for i in range(300):
        rows.append(
            f"w{i % 40},{digits.class_names[digits.labels[i]]},"
            + ",".join(f"{v:g}" for v in digits.features[i])
        )
    (tmp_path / "digits.csv").write_text("\n".join(rows) + "\n")
    spec = parse_spec(
        DIGITS.replace(
            'dataset = "digits"',
            'dataset = "digits.csv"\ncolumns = {label = "digit", contributor = "writer"}',
        ).replace('groups = ["label:7"]', "")
    )
    spec.folder = str(tmp_path)
    assert spec.task == "classification"
    data = load_data(spec)
    assert (len(data), data.n_contributors, data.n_features, data.n_classes) == (300, 40, 64, 10)
    np.testing.assert_array_equal(data.features, digits.features[:300])


def test_the_digits_demo_runs_from_the_command_line_and_reports(tmp_path):
    from tests.test_cli import datalever

    store = str(tmp_path / "demo.sqlite")
    done = datalever("demo", "--dataset", "digits", "--store", store, "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert "accuracy for everyone, poison label_flip" in " ".join(done.stdout.split())
    report = datalever("report", "--store", store, "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "digits" in html and html.count("<svg") >= 6
    info = datalever("data", "info", "digits")
    assert "examples:     1,797" in info.stdout and "classes:      10" in info.stdout
