"""The code task family: per-contributor splits, metrics worked by hand, the memorisation
probe, and strikes through the engine on real standard-library code (fast paths equal plain
fits)."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.core.delta import Delta
from datalever.errors import DataleverError
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from datalever.tasks import task_of_data
from datalever.tasks.code.files import TokenFiles
from datalever.tasks.code.judge import CodeJudge, distinctive_ends
from datalever.tasks.code.protocols import contributor_holdout, contributor_kfold
from datalever.tasks.code.unigram import FrequencyModel, Unigram
from tests.conftest import run_fast_and_plain


def files(seqs: list[list[int]], owners: list[int], vocab: int = 6) -> TokenFiles:
    return TokenFiles.from_sequences([np.array(s) for s in seqs], np.array(owners), vocab)


def test_holdout_keeps_a_share_of_each_contributors_files_and_single_files_in_training():
    owners = np.array([0] * 10 + [1] * 2 + [2] + [3] * 5)
    (fold,) = contributor_holdout(owners, 0.2, seed=3)
    held = np.bincount(owners[fold.test], minlength=4)
    np.testing.assert_array_equal(held, [2, 1, 0, 1])
    assert sorted(np.concatenate([fold.train, fold.test])) == list(range(len(owners)))
    again = contributor_holdout(owners, 0.2, seed=3)[0]
    np.testing.assert_array_equal(again.test, fold.test)


def test_kfold_partitions_files_and_deals_each_contributor_evenly():
    owners = np.array([0] * 10 + [1] * 3 + [2] * 7)
    folds = contributor_kfold(owners, 5, seed=0)
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests) == list(range(len(owners)))
    for c in range(3):
        per_fold = [int((owners[f.test] == c).sum()) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1


def test_metrics_by_hand():
    # Vocabulary of 2 tokens (codes 0, 1) and end of file (2). The model predicts
    # p = (0.5, 0.25, 0.25) everywhere; its first guesses are 0, then 1, then 2.
    model = FrequencyModel(np.array([0.5, 0.25, 0.25]))
    test = files([[0, 1], [1]], [0, 1], vocab=2)
    judge = CodeJudge(test, test, ["bits_per_token", "perplexity", "top1", "top5"], 2)
    out = judge.evaluate(model, Unigram())
    everyone, first = np.ones(2, dtype=bool), np.array([True, False])
    # contributor 0 predicts 0 (1 bit), 1 (2 bits), EOS (2 bits): 5 bits over 3 predictions;
    # contributor 1 predicts 1 (2 bits), EOS (2 bits).
    assert out["bits_per_token"].over(first, everyone) == pytest.approx(5 / 3)
    assert out["bits_per_token"].over(everyone, everyone) == pytest.approx(9 / 5)
    assert out["perplexity"].over(everyone, everyone) == pytest.approx(2 ** (9 / 5))
    assert out["top1"].over(first, everyone) == pytest.approx(1 / 3)  # only the 0 is guessed
    assert out["top5"].over(everyone, everyone) == 1.0  # k ≥ V + 1: everything is a guess
    assert np.isnan(out["top1"].over(np.zeros(2, dtype=bool), everyone))


def test_distinctive_4grams_are_a_contributors_own():
    train = files([[1, 2, 3, 4, 5], [2, 3, 4, 5], [1, 2, 3, 4]], [0, 1, 0])
    # contributor 0's "1 2 3 4" is theirs alone; "2 3 4 5" is shared with contributor 1.
    test = files([[1, 2, 3, 4, 5], [9, 1, 2, 3, 4]], [0, 1], vocab=10)
    ends = distinctive_ends(train, test)
    np.testing.assert_array_equal(ends, [3])  # test file 0's 4th token, and not file 1's


def test_memorisation_counts_4grams_completed_greedily():
    train = files([[1, 2, 3, 4]], [0])
    test = files([[1, 2, 3, 4, 1]], [0])

    class Guess(FrequencyModel):  # guesses each token right except the last
        def top_k(self, f, k):
            truth = f.predicted()
            return np.where(np.arange(len(truth)) < 3, truth, 0)[:, None]

    judge = CodeJudge(train, test, ["memorisation"], 1)
    out = judge.evaluate(Guess(np.full(7, 1 / 7)), Unigram())
    # The 4-gram 1 2 3 4 ends at row 3: rows 1-3 (tokens 2, 3, 4) must be first guesses;
    # row 3 is not, so nothing is memorised.
    assert out["memorisation"].over(np.ones(1, dtype=bool), None) == 0.0

    class Right(FrequencyModel):
        def top_k(self, f, k):
            return f.predicted()[:, None]

    out = judge.evaluate(Right(np.full(7, 1 / 7)), Unigram())
    assert out["memorisation"].over(np.ones(1, dtype=bool), None) == 1.0


def test_unigram_fast_path_equals_refits():
    base = files([[0, 1, 1], [2, 3], [4, 4, 4, 5]], [0, 1, 2])
    added = files([[5, 5, 0]], [3])
    fast = Unigram().fast_path(base)
    for delta in (Delta(np.array([1])), Delta(np.array([0, 2]), added), Delta(np.zeros(0, int))):
        (model,) = fast.fit_many([delta])
        np.testing.assert_allclose(model.p, Unigram().fit(delta.apply(base)).p, rtol=1e-15)


def test_code_data_is_recognised():
    assert task_of_data("python-stdlib", None) == "code"
    assert task_of_data("t.jsonl", {"contributor": "a", "path": "b", "text": "c"}) == "code"
    assert task_of_data("repos", None, "repositories") == "code"
    assert task_of_data("ratings.csv", {"user": "u", "item": "i", "rating": "r"}) != "code"


# ---------------------------------------------------------------------- through the engine

SPEC = """
name = "code strike"
seed = 5

[data]
dataset = "{path}"
columns = {{ contributor = "repo", path = "path", text = "text" }}

[protocol]
kind = "holdout"

[[learners]]
name = "kneser_ney"
order = 3

[[learners]]
name = "unigram"

[collectives]
counts = [2, 4]
samples = 2

[evaluation]
metrics = ["bits_per_token", "top1", "memorisation"]
groups = ["everyone", "participants", "non-participants"]
"""


def test_a_strike_costs_the_participants_their_own_style(tmp_path, code_table):
    from datalever.tasks import load_data

    spec = parse_spec(SPEC.format(path=code_table))
    assert spec.task == "code" and spec.evaluation.reference == "unigram"
    data = load_data(spec)
    store = ResultsStore(tmp_path / "r.sqlite")
    results = run_fast_and_plain(spec, store, data, rtol=1e-9, atol=1e-12)
    ngram = results[(results.learner == "kneser_ney") & (results.lever != "none")]
    own = ngram[(ngram.eval_group == "participants") & (ngram.metric == "bits_per_token")]
    assert (own.value > own.baseline).all()  # their code is predicted worse without it
    kept = ngram[(ngram.eval_group == "participants") & (ngram.metric == "memorisation")]
    assert (kept.value < 0.5 * kept.baseline).all()  # their distinctive code is forgotten
    others = ngram[(ngram.eval_group == "non-participants") & (ngram.metric == "bits_per_token")]
    assert (others.value - others.baseline).abs().max() < (own.value - own.baseline).min()


def test_bad_code_data_is_refused(tmp_path):
    with pytest.raises(DataleverError, match="token scheme"):
        parse_spec('name = "x"\n[data]\ndataset = "python-stdlib"\ntokens = "words"\n')
    with pytest.raises(DataleverError, match="layout"):
        parse_spec('name = "x"\n[data]\ndataset = "repos"\nlayout = "flat"\n')


def test_the_code_demo_spec_and_its_side_by_side_table(tmp_path, code_table):
    import io
    from importlib import resources

    from rich.console import Console

    from datalever.analysis import summarise
    from datalever.report.terminal import render_groups
    from datalever.tasks import load_data

    demo = parse_spec(resources.files("datalever").joinpath("specs/demo-code.toml").read_text())
    assert demo.task == "code" and demo.data.dataset == "python-stdlib"
    spec = parse_spec(SPEC.format(path=code_table))
    store = ResultsStore(tmp_path / "r.sqlite")
    from datalever.engine import run_spec

    results = store.results(run_spec(spec, store, data=load_data(spec)).run_id)
    out = io.StringIO()
    render_groups(
        summarise(results), Console(file=out, width=200), "top1", ("everyone", "participants")
    )
    text = out.getvalue()
    assert "everyone" in text and "participants" in text and "0 (no action)" in text
    assert text.count("kneser_ney") >= 1 and "[" in text  # intervals of the change


def test_the_code_demo_runs_from_the_command_line_and_reports(tmp_path):
    """The embedded code demo: an opt-out sweep on the standard library, nothing downloaded,
    the change for everyone beside the participants' own; the report draws every group and
    the memorisation probe."""
    from tests.test_cli import datalever

    store = str(tmp_path / "demo.sqlite")
    done = datalever("demo", "--dataset", "python-stdlib", "--store", store, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "top1, kneser_ney, strike" in out and "memorisation, kneser_ney, strike" in out
    assert "participants" in out and "everyone" in out
    report = datalever("report", "--store", store, "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "memorisation for participants" in html and "% of contributors acting" in html
    info = datalever("data", "info", "python-stdlib")
    assert "contributors:" in info.stdout and "tokens:" in info.stdout
