"""Bad inputs of consent: the ``optout`` lever in a spec, ``consent filter`` and
``registry account`` / ``registry token``.

The same :class:`~tests.fuzz.cases.Case` as the rest of the suite (one command line with its
files, run through the real command line by :mod:`tests.fuzz.harness`). A registry is a
database a user points at by a path or a URL, so every command meets the same broken
registries: a folder, a missing file, an empty file, a text file, a results store, another
app's database, a truncated or damaged copy, one a newer datalever wrote, a PostgreSQL server
that is not there. Beside them: the lever's parameters of the wrong type or out of range,
registries that do not know the dataset or reserve nobody, ``consent filter`` outputs that
must never be written (a file, an existing filtered copy, an unwritable place), lists of works
that are binary, empty, non-UTF-8 or one huge line, a served registry without a token or on a
closed port, timeouts that are no time, and account names and token scopes of every odd kind.

A refused command must leave every file that was there as it was: a registry's bytes (so its
events), a results store, a filtered copy already written. Every case names its registry and
runs with the registry and token variables unset, so no case can touch a real registry.
"""

from __future__ import annotations

import copy
import functools
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import tomli_w

from tests.fuzz.cases import STORE, Case, _sqlite

#: Nothing from the environment reaches a case: no registry, no token. (The user data
#: folder's registry, the default, is tried by tests/test_consent_fuzz.py alone, under a
#: data folder of its own.)
ENV = {"DATALEVER_REGISTRY": None, "DATALEVER_TOKEN": None}
#: A port nobody listens on (connections to it are refused at once).
CLOSED = "127.0.0.1:9"
REG = "reg.sqlite"

#: A tiny ratings table; its contributors are users 1 to 8 and its own name is "r".
RATINGS = (
    "user,item,rating\n"
    + "".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(1, 9) for i in (1, 2, 3))
).encode()
LIST = b"https://example.com/a\nhttps://example.com/b\nnot a work\n"


def _registry(reserve: bool) -> bytes:
    """A registry's bytes: the datasets these cases use, declared opt-out, and (``reserve``)
    a few contributors and one URL reserved for AI training."""
    from datalever.registry import Registry
    from datalever.registry.contributors import contributor_work

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / REG
        with Registry(path) as reg:
            for dataset in ("movielens-100k", "r", "list", "works"):
                reg.set_dataset_policy(dataset, "opt-out")
            if reserve:
                for dataset, ids in (("movielens-100k", [1, 2, 3]), ("r", [1, 2])):
                    for ident in ids:
                        account = reg.create_account(f"user {ident}")
                        reg.register_work(account, contributor_work(dataset, ident))
                        reg.set_preference(account, "train-ai", "reserved")
                account = reg.create_account("a site")
                reg.register_work(account, "https://example.com/a")
                reg.set_preference(account, "train-ai", "reserved")
        return path.read_bytes()


def _newer(blob: bytes) -> bytes:
    """``blob`` with its schema revision one this release does not know (a newer one's)."""
    from datalever.registry.schema import VERSION_TABLE

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / REG
        path.write_bytes(blob)
        conn = sqlite3.connect(path)
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffffffffffff'")
        conn.commit()
        conn.close()
        return path.read_bytes()


def _damaged(blob: bytes, offset: int, length: int) -> bytes:
    out = bytearray(blob)
    for i in range(offset, min(offset + length, len(out))):
        out[i] = (0xA5 ^ i) & 0xFF
    return bytes(out)


@functools.cache
def registries() -> dict[str, tuple[bytes, str]]:
    """Each registry a user could point at by mistake, and whether reading consent from it
    must be refused (``"refused"``) or may work (``"either"``)."""
    good = _registry(reserve=True)
    return {
        "a text file": (b"hello\n" * 100, "refused"),
        "an empty file": (b"", "refused"),
        "another app's database": (
            _sqlite(["CREATE TABLE notes (id INTEGER, body TEXT)"]),
            "refused",
        ),
        "truncated": (good[: len(good) // 2], "refused"),
        "a damaged header": (_damaged(good, 0, 100), "refused"),
        "a damaged schema page": (_damaged(good, 100, 4000), "refused"),
        "one byte changed": (_damaged(good, len(good) // 2, 1), "either"),
        "from a newer datalever": (_newer(good), "refused"),
    }


@functools.cache
def seeded() -> bytes:
    return _registry(reserve=True)


@functools.cache
def unreserved() -> bytes:
    return _registry(reserve=False)


def _case(
    name: str,
    argv: list[str],
    files: dict[str, bytes] | None = None,
    expect: str = "refused",
    env: dict[str, str | None] | None = None,
) -> Case:
    """A case run with nothing of the environment's registry, token or data folder."""
    return Case(name, argv, dict(files or {}), expect, env=dict(env or ENV))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the lever

#: A valid spec with the lever that runs in about a second; its registry lies beside it.
OPTOUT_SPEC: dict = {
    "name": "fuzz optout",
    "seed": 1,
    "data": {"dataset": "movielens-100k"},
    "protocol": {"kind": "data-strikes", "folds": 5, "run_folds": 1},
    "learners": [{"name": "item_mean"}],
    "levers": [{"kind": "optout", "registry": REG}],
    "collectives": {"samples": 1},
    "evaluation": {"metrics": ["ndcg@10"], "groups": ["everyone"]},
}


def _lever(**params: object) -> dict:
    spec = copy.deepcopy(OPTOUT_SPEC)
    spec["levers"][0].update(params)
    return spec


def _run(
    name: str, spec: dict, files: dict[str, bytes] | None = None, expect: str = "refused"
) -> Case:
    registry = {REG: seeded()} if files is None else files
    blob = tomli_w.dumps(spec).encode()
    argv = ["run", "spec.toml", "--store", STORE, "--jobs", "1"]
    return _case(f"optout: {name}", argv, {"spec.toml": blob, **registry}, expect)


def lever_cases() -> Iterator[Case]:
    for key, values in {
        "purpose": [1, True, "", "painting", "TRAIN-AI", "train-ai ", ["train-ai"]],
        "as_of": [5, "", "yesterday", "2026-13-01", "2026-01-01T00:00:00+25:00", "x" * 100],
        "matched": ["yes", 2, 0.5, []],
        "dataset": [5, "x" * 300, "nope", "[/]"],
        "registry": [5, "", "   ", ".", "missing.sqlite", "a\x00b", "x" * 5000 + ".sqlite"],
        "colour": ["red"],
    }.items():
        for value in values:
            yield _run(f"{key} = {value!r:.40}", _lever(**{key: value}))
    yield _run("dataset = '' (the data's own name)", _lever(dataset=""), expect="either")
    yield _run("as_of before the policy", _lever(as_of="2000-01-01"))
    yield _run("as_of far ahead (legal)", _lever(as_of="9999-12-31T23:59:59"), expect="either")
    yield _run("a registry that reserves nobody", _lever(), {REG: unreserved()})
    yield _run("a registry that does not know the data", _lever(dataset="unknown-data"))
    yield _run("registry is the results store", _lever(registry="store.sqlite"), {})
    yield _run("registry under a file", _lever(registry="afile/reg.sqlite"), {"afile": b"x"})
    yield _run("registry postgresql closed", _lever(registry=f"postgresql://u@{CLOSED}/db"), {})
    yield _run("registry http", _lever(registry=f"http://{CLOSED}"), {})
    yield _run("registry sqlite:///:memory:", _lever(registry="sqlite:///:memory:"), {})
    yield _run("registry mysql", _lever(registry="mysql://u@localhost/db"), {})
    for name in ("a text file", "truncated", "from a newer datalever"):
        blob, _ = registries()[name]
        yield _run(f"registry is {name}", _lever(), {REG: blob})
    twice = copy.deepcopy(OPTOUT_SPEC)
    twice["levers"] *= 2
    yield _run("the lever twice", twice, expect="either")
    sized = _lever()
    sized["collectives"] = {"sizes": [0.5], "samples": 1}
    yield _run("with collective sizes", sized, expect="either")


# ----------------------------------------------------------------------------- consent filter

FILTER = ["consent", "filter"]


def _list(
    name: str, args: list[str], files: dict[str, bytes] | None = None, expect: str = "refused"
) -> Case:
    """``consent filter list.txt --list`` against the seeded registry, with ``args``."""
    base = {"list.txt": LIST, REG: seeded()}
    argv = [*FILTER, "list.txt", "--list", "--registry", REG, "--out", "out", *args]
    return _case(f"consent filter {name}", argv, {**base, **(files or {})}, expect)


def filter_cases() -> Iterator[Case]:
    for purpose in ["", "painting", "TRAIN-AI", "train-ai ", "x" * 10_000, "\x1b[2J"]:
        yield _list(f"--purpose {purpose!r:.30}", ["--purpose", purpose])
    for as_of in [
        "yesterday",
        "2026-13-01",
        "",
        "nan",
        "99999-01-01",
        "1900-01-01",
        "\x1b]0;t\x07",
    ]:
        yield _list(f"--as-of {as_of!r:.30}", ["--as-of", as_of])
    for name in ["nope", "[/]", "x" * 100_000, "\x1b[2J"]:
        yield _list(f"--name {name!r:.30}", ["--name", name])
    yield _list("--name '' (the list's own)", ["--name", ""], expect="either")
    # where the filtered copy goes: never over anything
    copy_done = {"out/manifest.json": b'{"kind": "list"}\n', "out/kept.txt": b"kept\n"}
    yield _list("--out an existing filtered copy", [], copy_done)
    yield _list("--out a file", ["--out", "afile"], {"afile": b"x"})
    yield _list("--out under a file", ["--out", "afile/out"], {"afile": b"x"})
    yield _list("--out the list", ["--out", "list.txt"])
    yield _list("--out the registry", ["--out", REG])
    yield _list("--out the results store", ["--out", STORE])
    yield _list("--out /dev/full", ["--out", "/dev/full"])
    yield _list("--out under /proc", ["--out", "/proc/datalever-out"])
    yield _list("--out a long name", ["--out", "o" * 5000])
    yield _case(
        "consent filter: the default out holds a filtered copy",
        [*FILTER, "list.txt", "--list", "--registry", REG],
        {"list.txt": LIST, REG: seeded(), "list-consented/manifest.json": b"{}\n"},
    )
    # the list itself
    lists = {
        "binary": (bytes(range(256)) * 4, "refused"),
        "empty": (b"", "either"),
        "one huge line": (b"a" * 3_000_000 + b"\n", "either"),
        "non-UTF-8": ("https://example.com/caf\xe9\n\xff\xfe\n".encode("latin-1"), "either"),
        "control characters": (b"https://example.com/\x1b[2J\n\x07bell\n", "either"),
        "lines naming devices": (b"/dev/zero\n/dev/null\n/proc/self/mem\n.\n", "either"),
        "a byte-order mark": (b"\xef\xbb\xbf" + LIST, "either"),
    }
    for name, (blob, expect) in lists.items():
        yield _list(f"--list {name}", [], {"list.txt": blob}, expect)
    yield _case(
        "consent filter --list missing",
        [*FILTER, "none.txt", "--list", "--registry", REG, "--out", "out"],
        {REG: seeded()},
    )
    yield _case(
        "consent filter --list a folder",
        [*FILTER, ".", "--list", "--registry", REG, "--out", "out"],
        {REG: seeded()},
    )
    yield _list("--list with --columns (unused)", ["--columns", "user=u"], expect="either")
    # the registry
    for location in [
        "",
        "   ",
        ".",
        "missing.sqlite",
        "afile/reg.sqlite",
        "sqlite://",
        "sqlite:///:memory:",
        "mysql://u@localhost/db",
        "ftp://x",
        f"postgresql://u@{CLOSED}/db",
        "r" * 5000 + ".sqlite",
    ]:
        files = {"afile": b"x"} if location.startswith("afile") else {}
        yield _list(f"--registry {location!r:.40}", ["--registry", location], files)
    yield _list("--registry the results store", ["--registry", STORE])
    yield _list("--registry the list itself", ["--registry", "list.txt"])
    for name, (blob, expect) in registries().items():
        yield _list(f"--registry is {name}", [], {REG: blob}, expect)
    yield _list("a registry that reserves nobody", [], {REG: unreserved()}, expect="either")
    yield _case(
        "consent filter: DATALEVER_REGISTRY a text file",
        [*FILTER, "list.txt", "--list", "--out", "out"],
        {"list.txt": LIST, "notes.txt": b"hello\n"},
        env={**ENV, "DATALEVER_REGISTRY": "notes.txt"},
    )
    # a served registry
    served = ["--registry", f"http://{CLOSED}"]
    yield _list("http registry without --token", served)
    yield _case(
        "consent filter: http registry with an empty DATALEVER_TOKEN",
        [*FILTER, "list.txt", "--list", *served, "--out", "out"],
        {"list.txt": LIST},
        env={**ENV, "DATALEVER_TOKEN": ""},
    )
    for timeout in ["0", "-1", "nan", "inf", "-inf", "1e308", "soon"]:
        yield _list(f"--timeout {timeout}", [*served, "--token", "t", "--timeout", timeout])
    # Unreachable: everything dropped (fail closed), exit 0, a note; tests/test_consent_fuzz.py
    # checks the exit code, the note and the manifest.
    yield _list("http registry on a closed port", [*served, "--token", "t"], expect="either")
    yield _list(
        "https registry on a closed port",
        ["--registry", f"https://{CLOSED}", "--token", "t", "--timeout", "2"],
        expect="either",
    )
    # a dataset, not a list
    table = {"r.csv": RATINGS, REG: seeded()}
    data = [*FILTER, "r.csv", "--registry", REG, "--out", "out"]
    yield _case("consent filter a table (legal)", data, table, "either")
    yield _case("consent filter a table: unknown --name", [*data, "--name", "nope"], table)
    yield _case("consent filter a table: --columns junk", [*data, "--columns", "user"], table)
    yield _case("consent filter a table: --layout", [*data, "--layout", "owners"], table)
    yield _case(
        "consent filter a table: --vectoriser", [*data, "--vectoriser", "x"], table, "either"
    )
    yield _case(
        "consent filter a table: --out an existing copy",
        data,
        {**table, "out/manifest.json": b"{}\n", "out/ratings.csv": RATINGS},
    )
    yield _case(
        "consent filter a missing dataset",
        [*FILTER, "no-such-data", "--registry", REG, "--out", "out"],
        {REG: seeded()},
    )
    yield _case(
        "consent filter a binary table",
        [*FILTER, "r.csv", "--registry", REG, "--out", "out"],
        {"r.csv": bytes(range(256)) * 4, REG: seeded()},
    )


# ----------------------------------------------------------------------------- registry commands


def registry_cases() -> Iterator[Case]:
    account = ["registry", "account"]
    for name in ["", " ", "x" * 201, "x" * 1_000_000, "\x1b[2J", "a\nb", "a\x00b"]:
        yield _case(
            f"registry account {name!r:.30}", [*account, name, "--url", REG], {REG: seeded()}
        )
    for name in ["[/] [bold]x", "Zoë Ångström", "\u202egnp.exe"]:
        yield _case(
            f"registry account {name!r:.30} (legal)",
            [*account, name, "--url", REG],
            {REG: seeded()},
            "either",
        )
    token = ["registry", "token"]
    for scope in ["root", "", "ADMIN", "admin ", "\x1b[2J", "x" * 10_000]:
        yield _case(f"registry token {scope!r:.30}", [*token, scope, "--url", REG], {REG: seeded()})
    for args in (
        ["contributor"],
        ["contributor", "--account", "999"],
        ["contributor", "--account", "0"],
        ["contributor", "--account", "-1"],
        ["contributor", "--account", str(2**63)],
        ["contributor", "--account", str(10**30)],
        ["contributor", "--account", "one"],
        ["contributor", "--account", "1.5"],
        ["pipeline", "--account", "999"],
    ):
        yield _case(
            f"registry token {' '.join(args):.50}", [*token, *args, "--url", REG], {REG: seeded()}
        )
    # the registry they write to
    for location in [
        "",
        "   ",
        ".",
        "afile/reg.sqlite",
        "sqlite:///:memory:",
        "http://x",
        f"postgresql://u@{CLOSED}/db",
    ]:
        files = {"afile": b"x"} if location.startswith("afile") else {}
        yield _case(
            f"registry account --url {location!r:.40}", [*account, "bob", "--url", location], files
        )
    yield _case("registry account --url the results store", [*account, "bob", "--url", STORE])
    yield _case("registry token --url the results store", [*token, "admin", "--url", STORE])
    for name, (blob, expect) in registries().items():
        if name == "an empty file":
            expect = "either"  # an empty file is an empty database: a new registry
        yield _case(
            f"registry account --url {name}", [*account, "bob", "--url", REG], {REG: blob}, expect
        )
        yield _case(
            f"registry token --url {name}", [*token, "admin", "--url", REG], {REG: blob}, expect
        )


def consent_cases() -> list[Case]:
    """Every consent case, in a fixed order (names are unique)."""
    cases = [*lever_cases(), *filter_cases(), *registry_cases()]
    seen: set[str] = set()
    for case in cases:
        while case.name in seen:
            case.name += "'"
        seen.add(case.name)
    return cases
