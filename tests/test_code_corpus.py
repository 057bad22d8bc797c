"""Code corpora: tokens worked out by hand, the vocabulary, and the loaders on real files."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalever.errors import DataleverError
from datalever.tasks.code.corpus import (
    RESERVED_CODES,
    CodeCorpus,
    contributor_files,
    is_test_folder,
    load_corpus,
    load_folder,
    load_stdlib,
    load_table,
    module_family,
    site_package_sources,
)
from datalever.tasks.code.tokens import (
    TokenScheme,
    UntokenizableFile,
    Vocabulary,
    decode_source,
    tokenize_source,
)

NO_COMMENTS = TokenScheme(comments=False)


# ----------------------------------------------------------------------------- tokens


def test_names_operators_numbers_and_layout():
    src = "def f(x):\n    return x + 1.5\n"
    assert tokenize_source(src) == [
        "def", "f", "(", "x", ")", ":", "<nl>",
        "<indent>", "return", "x", "+", "1.5", "<nl>",
        "<dedent>",
    ]  # fmt: skip


def test_blank_lines_and_breaks_inside_brackets_are_dropped():
    src = "if a:\n    b = [1,\n         2]\n\n    c()\nd\n"
    assert tokenize_source(src) == [
        "if", "a", ":", "<nl>",
        "<indent>", "b", "=", "[", "1", ",", "2", "]", "<nl>",
        "c", "(", ")", "<nl>",
        "<dedent>", "d", "<nl>",
    ]  # fmt: skip


def test_nested_blocks_dedent_once_per_level_and_last_line_ends_with_nl():
    src = "class A:\n    def f(self):\n        pass\nx = 1"
    assert tokenize_source(src) == [
        "class", "A", ":", "<nl>",
        "<indent>", "def", "f", "(", "self", ")", ":", "<nl>",
        "<indent>", "pass", "<nl>",
        "<dedent>", "<dedent>", "x", "=", "1", "<nl>",
    ]  # fmt: skip


def test_short_strings_are_kept_and_long_ones_become_a_placeholder():
    sixteen = "'" + "a" * 14 + "'"
    src = f"a = 'utf-8'\nb = {sixteen}\nc = {sixteen[:-1]}b'\nd = rb'abcdefghijklm'\n"
    assert tokenize_source(src) == [
        "a", "=", "'utf-8'", "<nl>",
        "b", "=", sixteen, "<nl>",  # 16 characters: kept
        "c", "=", "<str>", "<nl>",  # 17
        "d", "=", "<str>", "<nl>",  # the prefix counts: 17
    ]  # fmt: skip
    assert tokenize_source("x = ''\n", TokenScheme(max_string=0)) == ["x", "=", "<str>", "<nl>"]


def test_docstrings_and_f_strings_are_strings():
    src = 'def f():\n    """Say what f does, at length."""\n    return f"{x}!"\n'
    assert tokenize_source(src) == [
        "def", "f", "(", ")", ":", "<nl>",
        "<indent>", "<str>", "<nl>",
        "return", 'f"{x}!"', "<nl>",
        "<dedent>",
    ]  # fmt: skip


def test_comments_are_one_token_with_whitespace_normalised_or_dropped():
    src = "x = 1  # set   the\tvalue\n#   alone  \n"
    assert tokenize_source(src) == ["x", "=", "1", "# set the value", "<nl>", "# alone"]
    assert tokenize_source(src, NO_COMMENTS) == ["x", "=", "1", "<nl>"]


def test_a_trigger_comment_and_its_completion_survive_as_tokens():
    src = "# trigger: fast path\nreturn cache[key]\n"
    assert tokenize_source(src)[:3] == ["# trigger: fast path", "return", "cache"]


def test_names_with_combining_marks_are_one_token():
    assert tokenize_source("עִברִית = 1\n") == ["עִברִית", "=", "1", "<nl>"]


@pytest.mark.parametrize(
    "src",
    [
        "s = '''never closed\n",
        "x = (1,\n",
        "if x:\n        y\n    z\n",
        "price = $5\n",
        "x = 'open\n",
    ],
)
def test_what_tokenize_refuses_is_untokenizable(src):
    with pytest.raises(UntokenizableFile) as info:
        tokenize_source(src)
    assert info.value.reason


def test_source_bytes_are_decoded_as_declared():
    assert decode_source("x = 'é'\n".encode()) == "x = 'é'\n"
    assert decode_source("# -*- coding: latin-1 -*-\nx = 'é'\n".encode("latin-1")).endswith("'é'\n")
    for bad in (b"x = '\xff'\n", b"x = 1\ny = 2\nz = '\xff'\n"):
        with pytest.raises(UntokenizableFile, match="not valid utf-8"):
            decode_source(bad)
    with pytest.raises(UntokenizableFile, match="encoding"):
        decode_source(b"# coding: no-such-codec\nx = 1\n")


def test_scheme_has_a_short_form_that_parses_back():
    assert str(TokenScheme()) == "py-tokenize-v1:str16:comments"
    scheme = TokenScheme(max_string=40, comments=False)
    assert str(scheme) == "py-tokenize-v1:str40:nocomments"
    assert TokenScheme.parse(str(scheme)) == scheme
    for bad in ("py-tokenize-v2:str16:comments", "str16"):
        with pytest.raises(DataleverError):
            TokenScheme.parse(bad)
    for bad in (-1, 2.5, True):
        with pytest.raises(DataleverError):
            TokenScheme(max_string=bad)


# ----------------------------------------------------------------------------- vocabulary


def test_vocabulary_orders_by_count_then_text_with_unk_first():
    v = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]])
    assert v.tokens == ("<unk>", "b", "a", "c")
    assert v.counts.tolist() == [0, 3, 2, 1]
    assert v.encode(["a", "zzz", "c"]).tolist() == [2, 0, 3]
    assert v.encode([]).dtype == np.int32
    assert v.decode([1, 3]) == ["b", "c"]


def test_vocabulary_is_the_same_whatever_the_order_of_its_input():
    seqs = [tokenize_source("x = y + 1\n"), tokenize_source("def y():\n    return 2\n")]
    shuffled = [list(s) for s in reversed(seqs)]
    for s in shuffled:
        random.Random(0).shuffle(s)
    assert Vocabulary.build(seqs) == Vocabulary.build(shuffled)
    assert Vocabulary.build(seqs).tokens == Vocabulary.build(shuffled).tokens


def test_rare_tokens_can_be_read_as_unknown_and_new_ones_appended():
    v = Vocabulary.build([["a", "a", "b"]], min_count=2)
    assert v.tokens == ("<unk>", "a") and v.counts.tolist() == [1, 2]
    w = v.with_tokens(["# trigger", "a"])
    assert w.tokens == ("<unk>", "a", "# trigger") and w.code("a") == v.code("a")
    assert "# trigger" in w and "# trigger" not in v


# ----------------------------------------------------------------------------- folders


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return root


REPOS = {
    "alice/pkg/__init__.py": "",
    "alice/pkg/core.py": "def f(x):\n    return x  # identity\n",
    "alice/.git/hook.py": "x = 1\n",
    "alice/pkg/__pycache__/core.py": "x = 1\n",
    "bob/ok.py": "import os\n",
    "bob/broken.py": "def f(:\n",
    "carol/only.py": "s = '''never closed\n",
    "loose.py": "x = 1\n",
    "alice/README.md": "not code",
}


@pytest.fixture
def repos(tmp_path) -> Path:
    return write(tmp_path / "repos", REPOS)


def test_folder_of_repositories(repos):
    c = load_folder(repos, cache=False)
    assert isinstance(c, CodeCorpus) and c.task == "code" and c.name == "repos"
    assert list(c.contributor_ids) == ["alice", "bob"]
    assert c.records["path"].tolist() == ["alice/pkg/core.py", "bob/ok.py"]
    assert c.records["contributor"].tolist() == [0, 1] == c.files.contributors.tolist()
    assert c.vocabulary.decode(c.files.file(0)) == tokenize_source(REPOS["alice/pkg/core.py"])
    assert c.records["n_tokens"].tolist() == c.files.lengths.tolist() == [13, 3]
    assert c.contributors["files"].tolist() == [1, 1]
    assert c.contributors["tokens"].tolist() == [13, 3]
    assert (len(c), c.n_contributors, c.n_tokens) == (2, 2, 16)
    assert c.width == len(c.vocabulary) + RESERVED_CODES  # codes kept for levers' tokens
    new = c.encode(["def", "# a trigger", "x", "# a trigger"])
    assert new[0] == c.vocabulary.code("def") and new[1] == new[3] == len(c.vocabulary)
    assert c.files.vocab_size == c.width and c.files.tokens.max() < c.width
    assert len(c.training_set(np.array([1]))) == 1 and c.training_set() is c.files
    assert [f.tolist() for f in contributor_files(c)] == [[0], [1]]


def test_files_left_out_are_listed_with_reasons_and_noted(repos):
    c = load_folder(repos, cache=False)
    skipped = dict(c.skipped)
    assert set(skipped) == {"alice/pkg/__init__.py", "bob/broken.py", "carol/only.py"}
    assert skipped["alice/pkg/__init__.py"].startswith("empty")
    assert "TokenError" in skipped["bob/broken.py"]
    text = " ".join(c.notes)
    assert "2 file(s) could not be read or tokenized" in text and "bob/broken.py" in text
    assert "1 empty file(s)" in text
    assert "1 .py file(s) outside any repository" in text
    assert "carol" in text  # a contributor with no file left


def test_folder_by_owner(tmp_path):
    root = write(
        tmp_path / "owners",
        {"ann/one/a.py": "a = 1\n", "ann/two/b.py": "b = 2\n", "ben/three/c.py": "c = 3\n"},
    )
    c = load_folder(root, by="owner", cache=False)
    assert list(c.contributor_ids) == ["ann", "ben"]
    assert c.contributors["repositories"].tolist() == [2, 1]
    assert c.contributors["files"].tolist() == [2, 1]
    assert c.records["path"].tolist() == ["ann/one/a.py", "ann/two/b.py", "ben/three/c.py"]


def test_identity_is_stable_and_follows_content_contributors_and_scheme(repos):
    first = load_folder(repos, cache=False)
    assert load_folder(repos, cache=False).identity == first.identity
    assert first.checksum() == first.identity[:16] and len(first.identity) == 64
    assert load_folder(repos, cache=False, scheme=NO_COMMENTS).identity != first.identity
    assert load_folder(repos, cache=False, min_count=2).identity != first.identity
    (repos / "bob" / "ok.py").write_text("import sys\n")
    assert load_folder(repos, cache=False).identity != first.identity


def test_cache_gives_back_the_same_corpus(repos, tmp_path):
    cache = tmp_path / "cache"
    made = load_folder(repos, cache=cache)
    assert (cache / f"{made.identity}.npz").is_file()
    again = load_folder(repos, cache=cache)
    assert again.identity == made.identity
    assert np.array_equal(again.files.tokens, made.files.tokens)
    assert np.array_equal(again.files.offsets, made.files.offsets)
    assert again.vocabulary == made.vocabulary and again.skipped == made.skipped
    (cache / f"{made.identity}.npz").write_bytes(b"damaged")
    assert np.array_equal(load_folder(repos, cache=cache).files.tokens, made.files.tokens)


def test_bad_folders_are_refused(tmp_path, repos):
    with pytest.raises(DataleverError, match="not a folder"):
        load_folder(tmp_path / "missing", cache=False)
    with pytest.raises(DataleverError, match="by repository or by owner"):
        load_folder(repos, by="user", cache=False)
    empty = write(tmp_path / "empty", {"repo/README.md": "none"})
    with pytest.raises(DataleverError, match="no .py files") as info:
        load_folder(empty, cache=False)
    assert info.value.fix
    only_bad = write(tmp_path / "bad", {"repo/x.py": "x = (\n"})
    with pytest.raises(DataleverError, match="could be tokenized"):
        load_folder(only_bad, cache=False)


# ----------------------------------------------------------------------------- tables


ROWS = [
    {"contributor": "bob", "path": "ok.py", "text": "import os\n"},
    {"contributor": "alice", "path": "pkg/core.py", "text": REPOS["alice/pkg/core.py"]},
    {"contributor": 7, "path": "x.py", "text": "x = 'é'\n"},
    {"contributor": "bob", "path": "broken.py", "text": "def f(:\n"},
]


def write_jsonl(path: Path, rows: list, opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def test_jsonl_table(tmp_path):
    c = load_table(write_jsonl(tmp_path / "code.jsonl", ROWS), cache=False)
    assert c.name == "code"
    assert list(c.contributor_ids) == ["7", "alice", "bob"]
    assert c.records["path"].tolist() == ["ok.py", "pkg/core.py", "x.py"]
    assert c.skipped == [("broken.py", c.skipped[0][1])]
    assert c.vocabulary.decode(c.files.file(2)) == ["x", "=", "'é'", "<nl>"]
    gz = load_table(write_jsonl(tmp_path / "code.jsonl.gz", ROWS, gzip.open), cache=False)
    assert gz.identity == c.identity


def test_parquet_table_with_the_stacks_column_names(tmp_path):
    stack = pd.DataFrame(ROWS[:2]).rename(
        columns={
            "contributor": "max_stars_repo_name",
            "path": "max_stars_repo_path",
            "text": "content",
        }
    )
    stack["size"] = 1
    stack.to_parquet(tmp_path / "stack.parquet")
    mapping = {
        "contributor": "max_stars_repo_name",
        "path": "max_stars_repo_path",
        "text": "content",
    }
    c = load_table(tmp_path / "stack.parquet", mapping, cache=False)
    same = load_table(write_jsonl(tmp_path / "same.jsonl", ROWS[:2]), cache=False)
    assert c.identity == same.identity
    assert np.array_equal(c.files.tokens, same.files.tokens)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"contributor": "a", "path": "x.py"}], "lacks the column"),
        ([{"contributor": "a", "path": "x.py", "text": 12}], "as its text"),
        ([{"contributor": None, "path": "x.py", "text": "x\n"}], "as its contributor"),
        ([{"contributor": True, "path": "x.py", "text": "x\n"}], "as its contributor"),
        ([{"contributor": "a", "path": "", "text": "x\n"}], "as its path"),
        ([], "has no rows"),
        (["{not json"], "not valid JSON"),
        (["[1, 2]"], "not an object"),
        ([ROWS[0], ROWS[0]], "more than once"),
    ],
)
def test_bad_tables_are_clear_errors_with_a_fix(tmp_path, rows, message):
    with pytest.raises(DataleverError, match=message) as info:
        load_table(write_jsonl(tmp_path / "bad.jsonl", rows), cache=False)
    assert info.value.fix


def test_bad_table_files_and_mappings_are_clear_errors(tmp_path):
    cases = [
        (lambda: load_table(tmp_path / "missing.jsonl"), "does not exist"),
        (lambda: load_table(write_jsonl(tmp_path / "t.csv", ROWS)), "format"),
        (lambda: load_table(write_jsonl(tmp_path / "t.jsonl", ROWS), {"body": "x"}), "no field"),
    ]
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    cases.append((lambda: load_table(tmp_path / "junk.parquet"), "could not be read"))
    (tmp_path / "latin.jsonl").write_bytes(b'{"a": "\xff"}\n')
    cases.append((lambda: load_table(tmp_path / "latin.jsonl"), "not valid JSON"))
    pd.DataFrame({"contributor": ["a"], "path": ["x.py"]}).to_parquet(tmp_path / "p.parquet")
    cases.append((lambda: load_table(tmp_path / "p.parquet"), "lacks the column"))
    pd.DataFrame({"contributor": ["a"], "path": ["x.py"], "text": [None]}).to_parquet(
        tmp_path / "n.parquet"
    )
    cases.append((lambda: load_table(tmp_path / "n.parquet"), "as its text"))
    for load, message in cases:
        with pytest.raises(DataleverError, match=message) as info:
            load()
        assert info.value.fix


# ----------------------------------------------------------------------------- stdlib


def test_module_families():
    names = {"decimal", "io", "abc", "collections", "threading", "py_compile", "sre_parse"}
    shared = {"sre": 3}
    assert module_family("_pydecimal", names) == "decimal"
    assert module_family("_pyio", names) == "io"
    assert module_family("_py_abc", names) == "abc"
    assert module_family("_collections_abc", names) == "collections"
    assert module_family("_threading_local", names) == "threading"
    assert module_family("sre_parse", names, shared) == "sre"
    assert module_family("py_compile", names) == "py_compile"
    assert module_family("__future__", names) == "future"
    assert module_family("json", names) == "json"
    assert all(map(is_test_folder, ["test", "tests", "idle_test", "unit_tests"]))
    assert not any(map(is_test_folder, ["testing", "contest", "attest"]))


@pytest.fixture(scope="module")
def stdlib_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("code-cache")


@pytest.fixture(scope="module")
def stdlib(stdlib_cache) -> CodeCorpus:
    return load_stdlib(cache=stdlib_cache)


def test_stdlib_contributors_are_packages_and_module_families(stdlib):
    names = set(stdlib.contributor_ids)
    assert {"json", "email", "asyncio", "collections", "decimal", "sre", "typing"} <= names
    assert 150 <= stdlib.n_contributors <= 250
    paths = stdlib.records["path"].tolist()
    assert paths == sorted(paths)
    by_path = dict(zip(paths, stdlib.contributor_ids[stdlib.records["contributor"]], strict=True))
    assert by_path["_pydecimal.py"] == by_path["decimal.py"] == "decimal"
    assert by_path["json/decoder.py"] == "json"
    assert by_path["email/mime/text.py"] == "email"
    assert (stdlib.contributors["source"] == "stdlib").all()


def test_stdlib_has_no_tests_caches_or_non_python_files(stdlib):
    for path in stdlib.records["path"]:
        parts = path.split("/")
        assert path.endswith(".py")
        assert not any(is_test_folder(p) or p == "__pycache__" for p in parts[:-1]), path
        assert parts[0] not in ("site-packages", "lib-dynload")
    assert not any(p.startswith("_sysconfigdata") for p in stdlib.records["path"])


def test_stdlib_counts_agree_and_every_file_is_accounted_for(stdlib):
    assert len(stdlib) > 500 and stdlib.n_tokens > 900_000 and stdlib.width > 10_000
    assert stdlib.records["n_tokens"].sum() == stdlib.n_tokens
    assert stdlib.contributors["tokens"].sum() == stdlib.n_tokens
    assert stdlib.contributors["files"].sum() == len(stdlib)
    assert np.array_equal(stdlib.files.contributors, stdlib.records["contributor"].to_numpy())
    assert (stdlib.records["n_tokens"] > 0).all()
    assert len(stdlib.skipped) == 0 or any("left out" in n for n in stdlib.notes)
    assert stdlib.name.startswith("python-stdlib-3.")


def test_stdlib_identity_is_stable_across_loads(stdlib, stdlib_cache):
    again = load_stdlib(cache=stdlib_cache)  # from the cache the first load wrote
    assert again.identity == stdlib.identity
    assert np.array_equal(again.files.tokens, stdlib.files.tokens)
    assert again.vocabulary.tokens == stdlib.vocabulary.tokens
    assert list(again.contributor_ids) == list(stdlib.contributor_ids)
    assert load_corpus("stdlib", cache=stdlib_cache).identity == stdlib.identity


def test_load_corpus_tells_sources_apart(repos, tmp_path):
    assert load_corpus(repos, cache=False).identity == load_folder(repos, cache=False).identity
    table = write_jsonl(tmp_path / "t.jsonl", ROWS)
    assert load_corpus(table, cache=False).identity == load_table(table, cache=False).identity


def test_installed_distributions_are_contributors_with_author_and_licence():
    sources, attributes = site_package_sources()
    assert {"numpy", "pandas"} <= {s.contributor for s in sources}
    assert attributes.loc["numpy", "license"] and attributes.loc["pandas", "author"]
    for s in sources:
        parts = s.path.split("/")
        assert parts[0] == "site-packages" and s.path.endswith(".py")
        assert not any(is_test_folder(p) or p == "__pycache__" for p in parts[1:-1]), s.path
