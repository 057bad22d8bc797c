"""Fuzzing the data files a user can give: tables, dataset folders, archives and group files.

:func:`data_file_cases` lists every bad (or merely odd) input: broken ratings, ids and
timestamps, ragged and binary tables, compression bombs, folders of junk, pipes, devices,
symlinks to secrets, absurd names. Each must load or be refused with a DataleverError: never
another exception, never a hang, never a message that echoes the file's contents, and a refused
fetch leaves nothing in the cache. Cases run in a child process under a memory limit, so a hang
or a runaway allocation fails the case instead of the test run.

The test samples a few dozen cases; ``python -m tests.test_data_fuzz`` runs all of them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import queue
import random
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Text planted in file contents; an error message that shows it echoes the file.
CANARY = "$6$s3cr3t$CANARY0123456789"
#: Seconds one case may take (they take milliseconds; the slowest build a small bomb).
TIME_LIMIT_S = 10.0
#: Address-space limit of the process that runs the cases.
MEMORY_LIMIT_BYTES = 3 << 30
#: Decompression cap the cases run under unless they set their own.
CASE_CAP_BYTES = 8 << 20
#: Cases the test samples (the whole list runs with ``python -m tests.test_data_fuzz``).
SAMPLE = 60

#: A file's bytes, or a function that makes them (for the big ones, made only when run).
Contents = bytes | Callable[[], bytes]

GOOD = b"user,item,rating,timestamp\n1,10,4,100\n1,11,3,101\n2,10,5,102\n3,12,1,103\n"


@dataclass
class DataCase:
    """One bad input. ``files`` are written under the case's folder; ``call`` says how it is
    loaded: "table" (``load_table(target, columns)``), "dataset" (``load_dataset`` of the
    path), "name" (``load_dataset(target)``, target used as given), "fetch"
    (``fetch_dataset(fetch_name, path=target)``) or "group" (the ``file:target`` group of a
    small dataset). ``expect``: "refused" (a DataleverError), or "either" (odd but legal)."""

    name: str
    files: dict[str, Contents] = field(default_factory=dict)
    call: str = "table"
    target: str = "data.csv"
    columns: dict[str, str] | None = None
    expect: str = "refused"
    env: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # link -> what it points to
    fifos: tuple[str, ...] = ()
    fetch_name: str = "movielens-latest-small"

    def cli_argv(self) -> list[str] | None:
        """The same input through the command line, or None when it has no CLI form."""
        if self.call in ("table", "dataset"):
            argv = ["data", "info", self.target]
            if self.columns:
                argv += ["--columns", ",".join(f"{k}={v}" for k, v in self.columns.items())]
            return argv
        if self.call == "name" and len(self.target) < 100_000:
            return ["data", "info", self.target]
        if self.call == "fetch":
            return ["data", "fetch", self.fetch_name, "--path", self.target]
        return None


def _table(rows: list[str], header: str = "user,item,rating,timestamp") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _zip_lying(declared: int) -> bytes:
    data = bytearray(_zip({"r.csv": GOOD}))
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


def _parquet(**columns) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0]}
    base.update(columns)
    table = pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in base.items()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _junk(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    return CANARY.encode() + bytes(rng.getrandbits(8) for _ in range(size))


def _bomb(megabytes: int) -> bytes:
    compressor = gzip.compress(b"user,item,rating\n" + b"1,2,3\n" * (megabytes * 174_763))
    return compressor


def _rating_cases() -> Iterator[DataCase]:
    bad = [
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "NaN",
        "",
        "1e308",
        "-1e308",
        "1e10",
        "great",
        "True",
        "false",
        "0x10",
        "3e",
        "--1",
        "null",
        "None",
        "1_000",
        "٣",
        CANARY,
        "1" * 400,
    ]
    for value in bad:
        body = _table(["1,10,4,100", f"2,11,{value},101"])
        # "٣" (Arabic-Indic three) and 1_000 may be read as numbers; that is fine.
        odd = value in ("٣", "1_000", "1e10")
        yield DataCase(
            f"rating {value[:20]!r}", {"data.csv": body}, expect="either" if odd else "refused"
        )
    yield DataCase(
        "rating column of booleans (parquet)",
        {"data.parquet": _parquet(rating=[True, False])},
        target="data.parquet",
    )
    yield DataCase(
        "rating column of text (parquet)",
        {"data.parquet": _parquet(rating=["a", "b"])},
        target="data.parquet",
    )
    yield DataCase(
        "rating column of lists (parquet)",
        {"data.parquet": _parquet(rating=[[1.0], [2.0]])},
        target="data.parquet",
    )
    yield DataCase(
        "rating column of bytes (parquet)",
        {"data.parquet": _parquet(rating=[b"1", b"2"])},
        target="data.parquet",
    )
    yield DataCase(
        "rating infinite (parquet)",
        {"data.parquet": _parquet(rating=[float("inf"), 1.0])},
        target="data.parquet",
    )


def _id_cases() -> Iterator[DataCase]:
    odd_ids = [
        ("empty user", "", "refused"),
        ("nan user", "nan", "refused"),
        ("huge user", "9" * 40, "either"),
        ("negative user", "-7", "either"),
        ("fractional user", "1.5", "either"),
        ("exponent user", "1e3", "either"),
        ("unicode user", "Zoë", "either"),
        ("emoji user", "🙂", "either"),
        ("long user", "u" * 10_000, "either"),
        ("quoted comma user", '"a,b"', "either"),
    ]
    for name, value, expect in odd_ids:
        yield DataCase(
            name, {"data.csv": _table([f"{value},10,4,100", "2,11,3,101"])}, expect=expect
        )
    for field_ in ("user", "item"):
        for label, values in (
            ("structs", [{"a": 1}, {"a": 2}]),
            ("lists", [[1], [2]]),
            ("bytes", [b"\x00\xff", b"b"]),
            ("booleans", [True, False]),
            ("nulls", [None, 1]),
            ("fractions", [1.5, 2.5]),
            ("infinities", [float("inf"), 1.0]),
        ):
            yield DataCase(
                f"{field_} ids of {label} (parquet)",
                {"data.parquet": _parquet(**{field_: values})},
                target="data.parquet",
            )


def _timestamp_cases() -> Iterator[DataCase]:
    for value, expect in (
        ("yesterday", "refused"),
        ("1e300", "refused"),
        ("inf", "refused"),
        ("", "refused"),
        ("2020-13-45", "refused"),
        ("-1", "either"),
        ("9999-12-31", "either"),
        ("2020-01-01T10:00:00+02:00", "either"),
        (CANARY, "refused"),
    ):
        yield DataCase(
            f"timestamp {value[:20]!r}",
            {"data.csv": _table(["1,10,4,100", f"2,11,3,{value}"])},
            expect=expect,
        )
    for label, values in (
        ("structs", [{"a": 1}, {"a": 2}]),
        ("booleans", [True, False]),
        ("text", ["a", "b"]),
        ("nulls", [None, 1.0]),
    ):
        yield DataCase(
            f"timestamps of {label} (parquet)",
            {"data.parquet": _parquet(timestamp=values)},
            target="data.parquet",
        )


def _structure_cases() -> Iterator[DataCase]:
    s = CANARY
    texts: list[tuple[str, bytes, str]] = [
        ("empty file", b"", "refused"),
        ("one newline", b"\n", "refused"),
        ("header only", b"user,item,rating\n", "refused"),
        ("header without newline", b"user,item,rating", "refused"),
        ("secret first line", f"root:{s}:19000:0:99999:7:::\nx:{s}\n".encode(), "refused"),
        ("secret as sole column", f"{s}\n{s}\n".encode(), "refused"),
        ("ragged longer row", _table(["1,10,4,100,9,9", "2,11,3,101"]), "refused"),
        ("ragged shorter row", _table(["1,10", "2,11,3,101"]), "refused"),
        ("unbalanced quote", _table(['1,10,"4,100', "2,11,3,101"]), "refused"),
        ("NUL bytes", _table(["1,10\x00,4,100"]), "refused"),
        ("CRLF line ends", GOOD.replace(b"\n", b"\r\n"), "either"),
        ("CR line ends", GOOD.replace(b"\n", b"\r"), "either"),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + GOOD, "either"),
        ("UTF-16", GOOD.decode().encode("utf-16"), "refused"),
        ("latin-1 ids", _table(["Jos\xe9,10,4,100"]).decode().encode("latin-1"), "refused"),
        ("semicolons", GOOD.replace(b",", b";"), "refused"),
        ("tabs in a .csv", GOOD.replace(b",", b"\t"), "refused"),
        ("spaces around header", b" user , item , rating \n1,2,3\n", "either"),
        ("duplicate header names", b"user,user,item,rating\n1,2,3,4\n", "either"),
        ("empty header names", b",,\n1,2,3\n", "refused"),
        ("thousand columns", (",".join(f"c{i}" for i in range(1000)) + "\n").encode(), "refused"),
        ("long header line", b"u" * (2 << 20) + b"\n1\n", "refused"),
        ("no line break at all", b"x" * (3 << 20), "refused"),
        ("duplicate records", _table(["1,10,4,100", "1,10,5,101", "1,10,2,99"]), "either"),
        ("only duplicates of one record", _table(["1,10,4,100"] * 50), "either"),
        ("markup in a column name", b"[/],[bold],rating\n1,2,3\n", "refused"),
    ]
    for name, data, expect in texts:
        yield DataCase(name, {"data.csv": data}, expect=expect)
    for seed, size in ((0, 10), (1, 1000), (2, 100_000), (3, 5)):
        yield DataCase(f"random bytes {size} (csv)", {"data.csv": _junk(seed, size)})
        yield DataCase(
            f"random bytes {size} (parquet)", {"d.parquet": _junk(seed, size)}, target="d.parquet"
        )
        yield DataCase(f"random bytes {size} (tsv)", {"d.tsv": _junk(seed, size)}, target="d.tsv")
        yield DataCase(f"random bytes {size} (txt)", {"d.txt": _junk(seed, size)}, target="d.txt")
    good_pq = _parquet()
    yield DataCase(
        "truncated parquet", {"d.parquet": good_pq[: len(good_pq) // 2]}, target="d.parquet"
    )
    yield DataCase("parquet with no rows", {"d.parquet": _empty_parquet()}, target="d.parquet")
    yield DataCase("csv named .parquet", {"d.parquet": GOOD}, target="d.parquet")
    yield DataCase("parquet named .csv", {"data.csv": good_pq})
    yield DataCase("unknown suffix", {"d.xlsx": GOOD}, target="d.xlsx")
    yield DataCase("no suffix", {"data": GOOD}, target="data")
    yield DataCase("zstd table", {"d.csv.zst": b"(\xb5/\xfd" + GOOD}, target="d.csv.zst")


def _empty_parquet() -> bytes:
    import pyarrow as pa

    return _parquet(
        user=pa.array([], pa.int64()),
        item=pa.array([], pa.int64()),
        rating=pa.array([], pa.float64()),
    )


def _mapping_cases() -> Iterator[DataCase]:
    table = {"data.csv": b"a,b,r,t\n1,2,3,4\n"}
    for name, columns in (
        ("a column mapped twice", {"user": "a", "item": "a", "rating": "r"}),
        ("rating mapped to the user column", {"user": "a", "item": "b", "rating": "a"}),
        (
            "timestamp mapped to the rating column",
            {"user": "a", "item": "b", "rating": "r", "timestamp": "r"},
        ),
        ("unknown field", {"user": "a", "item": "b", "rating": "r", "weight": "t"}),
        ("absent column", {"user": "who", "item": "b", "rating": "r"}),
        ("empty column name", {"user": "", "item": "b", "rating": "r"}),
        ("odd characters in a column name", {"user": "$x$\x1b[2J", "item": "b", "rating": "r"}),
        ("long column name", {"user": "x" * 100_000, "item": "b", "rating": "r"}),
        ("markup column name", {"user": "[/]", "item": "b", "rating": "r"}),
        ("only user mapped", {"user": "a"}),
    ):
        yield DataCase(name, table, columns=columns)


def _compression_cases() -> Iterator[DataCase]:
    cap = {"DATALEVER_MAX_DECOMPRESSED_BYTES": str(1 << 20)}
    yield DataCase("gzip bomb", {"d.csv.gz": lambda: _bomb(20)}, target="d.csv.gz", env=cap)
    yield DataCase(
        "gzip bomb without line breaks",
        {"d.csv.gz": lambda: _gz(b"0" * (20 << 20))},
        target="d.csv.gz",
        env=cap,
    )
    yield DataCase(
        "bzip2 bomb",
        {"d.csv.bz2": lambda: bz2.compress(b"0" * (20 << 20))},
        target="d.csv.bz2",
        env=cap,
    )
    yield DataCase(
        "xz bomb",
        {"d.csv.xz": lambda: lzma.compress(b"user,item,rating\n" + b"1,2,3\n" * 3_000_000)},
        target="d.csv.xz",
        env=cap,
    )
    yield DataCase(
        "zip bomb",
        {"d.csv.zip": lambda: _zip({"d.csv": b"user,item,rating\n" + b"1,2,3\n" * 3_000_000})},
        target="d.csv.zip",
        env=cap,
    )
    yield DataCase(
        "zip member lying about its size",
        {"d.csv.zip": _zip_lying(4_000_000_000)},
        target="d.csv.zip",
        env=cap,
    )
    yield DataCase("zip member lying small", {"d.csv.zip": _zip_lying(5)}, target="d.csv.zip")
    yield DataCase(
        "zip with two tables",
        {"d.csv.zip": _zip({"a.csv": GOOD, "b.csv": GOOD})},
        target="d.csv.zip",
    )
    yield DataCase("empty zip", {"d.csv.zip": _zip({})}, target="d.csv.zip")
    yield DataCase(
        "stored zip",
        {"d.csv.zip": _zip({"a.csv": GOOD}, zipfile.ZIP_STORED)},
        target="d.csv.zip",
        expect="either",
    )
    yield DataCase("gzip of junk", {"d.csv.gz": _junk(5, 500)}, target="d.csv.gz")
    yield DataCase(
        "truncated gzip",
        {"d.csv.gz": _gz(_table([f"{i},{i * 7 % 13},{i % 5},{i}" for i in range(3000)]))[:900]},
        target="d.csv.gz",
    )
    yield DataCase(
        "gzip of a plain table", {"d.csv.gz": _gz(GOOD)}, target="d.csv.gz", expect="either"
    )
    yield DataCase("plain text named .gz", {"d.csv.gz": GOOD}, target="d.csv.gz")
    yield DataCase("gzipped parquet", {"d.parquet.gz": _gz(_parquet())}, target="d.parquet.gz")
    yield DataCase(
        "bad cap setting",
        {"d.csv.gz": _gz(GOOD)},
        target="d.csv.gz",
        env={"DATALEVER_MAX_DECOMPRESSED_BYTES": "lots"},
    )
    yield DataCase(
        "negative cap setting",
        {"d.csv.gz": _gz(GOOD)},
        target="d.csv.gz",
        env={"DATALEVER_MAX_DECOMPRESSED_BYTES": "-1"},
    )


def _rle_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ones = pa.array([1.0] * 2_000_000)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"user": ones, "item": ones, "rating": ones}), buffer)
    return buffer.getvalue()


def _parquet_bomb_cases() -> Iterator[DataCase]:
    yield DataCase(
        "parquet of two million equal rows",
        {"d.parquet": _rle_parquet},
        target="d.parquet",
        env={"DATALEVER_MAX_DECOMPRESSED_BYTES": str(1 << 20)},
    )


def _path_cases() -> Iterator[DataCase]:
    yield DataCase("missing file", target="nope.csv")
    yield DataCase("missing dataset path", call="dataset", target="nope/ratings.csv")
    yield DataCase("a folder as a table", {"sub/x.txt": b"x"}, target="sub")
    yield DataCase("a pipe", fifos=("pipe.csv",), target="pipe.csv")
    yield DataCase("a pipe as a dataset", call="dataset", fifos=("pipe.csv",), target="pipe.csv")
    yield DataCase("link to /dev/zero", links={"zero.csv": "/dev/zero"}, target="zero.csv")
    yield DataCase(
        "link to /dev/zero as a dataset",
        call="dataset",
        links={"zero.csv": "/dev/zero"},
        target="zero.csv",
    )
    yield DataCase("link loop", links={"loop.csv": "loop.csv"}, target="loop.csv")
    yield DataCase("dangling link", links={"gone.csv": "/nonexistent/x.csv"}, target="gone.csv")
    yield DataCase(
        "secret through a link",
        {"shadow": f"root:{CANARY}:1::\n".encode()},
        links={"r.csv": "shadow"},
        target="r.csv",
    )
    yield DataCase("path under a file", {"f.csv": GOOD}, target="f.csv/x.csv")
    yield DataCase("unknown home folder", call="name", target="~nosuchuser-xyz/r.csv")
    for length in (300, 5000, 10_000_000):
        yield DataCase(f"name of {length:,} characters", call="name", target="x" * length)
        yield DataCase(
            f"path of {length:,} characters", call="name", target="d/" + "x" * length + ".csv"
        )
    yield DataCase("name with NUL", call="name", target="movielens\x00-100k")
    yield DataCase("name of spaces", call="name", target="   ")
    yield DataCase("empty name", call="name", target="")
    yield DataCase("markup name", call="name", target="[/]")
    yield DataCase("unknown dataset", call="name", target="netflix-prize")


ONE = b"1\t2\t3\t4\n"
ITEM = b"2|t|d||u|" + b"0|" * 18 + b"0\n"


def _folder_cases() -> Iterator[DataCase]:
    j = _junk(7, 300)
    folders: list[tuple[str, dict[str, bytes]]] = [
        ("empty folder", {"ds/.keep": b""}),
        ("folder of junk", {"ds/a.bin": j, "ds/b.txt": j, "ds/\x1b[2J.csv": j}),
        ("u.data of junk", {"ds/u.data": j}),
        ("u.data empty", {"ds/u.data": b""}),
        ("u.data with a header", {"ds/u.data": b"user\titem\trating\tts\n1\t2\t3\t4\n"}),
        ("u.data ragged", {"ds/u.data": b"1\t2\t3\t4\n1\t2\t3\t4\t5\t6\n"}),
        ("u.data 3 columns", {"ds/u.data": b"1\t2\t3\n"}),
        ("u.data infinite rating", {"ds/u.data": b"1\t2\tinf\t4\n"}),
        ("u.data huge rating", {"ds/u.data": b"1\t2\t1e308\t4\n"}),
        ("u.user of junk", {"ds/u.data": b"1\t2\t3\t4\n", "ds/u.user": j}),
        ("u.item of junk", {"ds/u.data": b"1\t2\t3\t4\n", "ds/u.item": j}),
        ("ratings.dat of junk", {"ds/ratings.dat": j}),
        ("ratings.dat with junk users", {"ds/ratings.dat": b"1::2::3::4\n", "ds/users.dat": j}),
        ("ratings.csv without columns", {"ds/ratings.csv": f"{CANARY}\n1\n".encode()}),
        (
            "ratings.csv with junk movies",
            {"ds/ratings.csv": b"userId,movieId,rating\n1,2,3\n", "ds/movies.csv": j},
        ),
        ("RecBole .inter of junk", {"ds/x.inter": j}),
        ("RecBole .inter without rating", {"ds/x.inter": b"user_id:token\titem_id:token\n1\t2\n"}),
        (
            "RecBole .user without user_id",
            {
                "ds/x.inter": b"user_id:token\titem_id:token\trating:float\n1\t2\t3\n",
                "ds/x.user": b"age:float\n3\n",
            },
        ),
        (
            "two datasets",
            {"ds/a/u.data": b"1\t2\t3\t4\n", "ds/b/ratings.csv": b"userId,movieId,rating\n1,2,3\n"},
        ),
        ("folder named like .inter", {"ds/x.inter/y": b""}),
        ("u.data rating beyond 1-5", {"ds/u.data": b"1\t2\t7\t4\n"}),
        ("u.user listing a user twice", {"ds/u.data": ONE, "ds/u.user": b"1|2|M|x|1\n1|3|F|y|2\n"}),
        ("u.item listing an item twice", {"ds/u.data": ONE, "ds/u.item": ITEM + ITEM}),
        (
            "movies.csv listing a movie twice",
            {
                "ds/ratings.csv": b"userId,movieId,rating\n1,2,3\n",
                "ds/movies.csv": b"movieId,title,genres\n2,a,Drama\n2,b,Drama\n",
            },
        ),
        (
            "RecBole .user listing a user twice",
            {
                "ds/x.inter": b"user_id:token\titem_id:token\trating:float\n1\t2\t3\n",
                "ds/x.user": b"user_id:token\tage:float\n1\t3\n1\t4\n",
            },
        ),
    ]
    for name, files in folders:
        yield DataCase(name, files, call="dataset", target="ds")
    yield DataCase(
        "u.user is a pipe",
        {"ds/u.data": b"1\t2\t3\t4\n"},
        call="dataset",
        target="ds",
        fifos=("ds/u.user",),
        expect="either",
    )
    yield DataCase(
        "u.data links to /dev/zero",
        call="dataset",
        target="ds",
        links={"ds/u.data": "/dev/zero"},
    )


def _fetch_cases() -> Iterator[DataCase]:
    j = _junk(9, 400)
    archives: list[tuple[str, Contents, dict[str, str]]] = [
        ("junk named .zip", j, {}),
        ("zip that is not MovieLens", _zip({"notes/readme.txt": b"hello"}), {}),
        ("empty zip", _zip({}), {}),
        ("zip of junk ratings", _zip({"ml/ratings.csv": j}), {}),
        (
            "zip bomb",
            lambda: _zip({"ml/ratings.csv": b"0" * (20 << 20)}),
            {"DATALEVER_MAX_DECOMPRESSED_BYTES": str(1 << 20)},
        ),
        (
            "zip lying about sizes",
            _zip_lying(4_000_000_000),
            {"DATALEVER_MAX_DECOMPRESSED_BYTES": str(1 << 20)},
        ),
        (
            "zip with path traversal",
            _zip({"../../evil/ratings.csv": b"userId,movieId,rating\n1,2,3\n"}),
            {},
        ),
        ("zip with 12,000 members", lambda: _zip({f"f{i}": b"" for i in range(12_000)}), {}),
    ]
    for name, data, env in archives:
        expect = "either" if "traversal" in name else "refused"
        yield DataCase(
            f"fetch: {name}", {"a.zip": data}, call="fetch", target="a.zip", env=env, expect=expect
        )
    yield DataCase("fetch: folder of junk", {"ds/x.bin": j}, call="fetch", target="ds")
    yield DataCase("fetch: missing path", call="fetch", target="nothing.zip")
    yield DataCase("fetch: a pipe", call="fetch", target="p.zip", fifos=("p.zip",))
    yield DataCase(
        "fetch: wrong checksum",
        {"a.zip": _zip({"ml-100k/u.data": b"1\t2\t3\t4\n"})},
        call="fetch",
        target="a.zip",
        fetch_name="movielens-100k",
    )
    yield DataCase(
        "fetch: unknown name", {"a.zip": j}, call="fetch", target="a.zip", fetch_name="x" * 100_000
    )


def _group_cases() -> Iterator[DataCase]:
    groups: list[tuple[str, bytes, str]] = [
        ("binary", _junk(11, 500), "refused"),
        ("NUL bytes", b"1\n\x00\n2\n", "refused"),
        ("latin-1", "1\nJos\xe9\n".encode("latin-1"), "refused"),
        ("UTF-16", "1\n2\n".encode("utf-16"), "refused"),
        ("empty", b"", "refused"),
        ("blank lines", b"\n  \n\t\n", "refused"),
        ("ids of nobody", b"999\n998\n", "refused"),
        ("secret ids", f"{CANARY}\n".encode(), "refused"),
        ("UTF-8 BOM", b"\xef\xbb\xbf1\n2\n", "either"),
        ("CRLF", b"1\r\n2\r\n", "either"),
        ("some unknown", b"1\n999\n", "either"),
    ]
    for name, data, expect in groups:
        yield DataCase(
            f"group file: {name}", {"ids.txt": data}, call="group", target="ids.txt", expect=expect
        )
    yield DataCase("group file: missing", call="group", target="none.txt")
    yield DataCase("group file: a folder", {"ids/x": b"1"}, call="group", target="ids")
    yield DataCase("group file: a pipe", call="group", target="p.txt", fifos=("p.txt",))
    yield DataCase(
        "group file: /dev/zero", call="group", target="z.txt", links={"z.txt": "/dev/zero"}
    )
    yield DataCase("group file: long path", call="group", target="y" * 5000)
    yield DataCase(
        "group file: huge", call="group", target="big.txt", files={"big.txt": b"SPARSE:70000000"}
    )


def data_file_cases() -> list[DataCase]:
    """Every data-file case, in a fixed order (the fuzz script runs them all)."""
    return [
        *_rating_cases(),
        *_id_cases(),
        *_timestamp_cases(),
        *_structure_cases(),
        *_mapping_cases(),
        *_compression_cases(),
        *_parquet_bomb_cases(),
        *_path_cases(),
        *_folder_cases(),
        *_fetch_cases(),
        *_group_cases(),
    ]


# ----------------------------------------------------------------------------- running a case


def build(case: DataCase, folder: Path) -> None:
    """Write the case's files, links and pipes under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, contents in case.files.items():
        data = contents() if callable(contents) else contents
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data.startswith(b"SPARSE:"):
            with open(path, "wb") as f:
                f.truncate(int(data.split(b":")[1]))
        else:
            path.write_bytes(data)
    for rel, target in case.links.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, folder / rel)
    for rel in case.fifos:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(folder / rel)


def _cache_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def run_case(case: DataCase, folder: Path) -> str | None:
    """Build and load one case in this process; None when it behaved, else the problem."""
    from datalever.collectives import group_members
    from datalever.data.registry import fetch_dataset, load_dataset
    from datalever.data.tabular import load_table
    from datalever.errors import DataleverError

    build(case, folder)
    cache = folder / "_cache"
    env = {"DATALEVER_CACHE": str(cache), "DATALEVER_MAX_DECOMPRESSED_BYTES": str(CASE_CAP_BYTES)}
    env.update(case.env)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    target = case.target if case.call == "name" else str(folder / case.target)
    try:
        if case.call == "table":
            load_table(target, case.columns)
        elif case.call in ("dataset", "name"):
            load_dataset(target)
        elif case.call == "fetch":
            fetch_dataset(case.fetch_name, path=Path(target), progress=False)
        elif case.call == "_sleep":  # only for checking the harness
            time.sleep(float(case.target))
        elif case.call == "group":
            good = folder / "_good.csv"
            good.write_bytes(GOOD)
            group_members(load_table(good), f"file:{target}")
        else:
            raise ValueError(f"unknown call {case.call!r}")
    except DataleverError as exc:
        text = str(exc)
        if "CANARY" in text:
            return f"the message echoes the file's contents: {text[:300]}"
        if len(text) > 2000:
            return f"a message of {len(text)} characters"
        if case.call == "fetch" and _cache_files(cache):
            return f"a refused fetch left files in the cache: {_cache_files(cache)[:3]}"
        return None
    except BaseException as exc:  # noqa: BLE001 - any other exception is the finding
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if case.expect == "refused":
        return "accepted, but should have been refused"
    return None


def _child(indices: list[int], root: str, factory: str) -> None:
    """Run cases one by one, announcing each, under a memory limit (the parent times them)."""
    import importlib
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    module, _, function = factory.partition(":")
    cases = getattr(importlib.import_module(module), function)()
    for i in indices:
        print(json.dumps({"start": i}), flush=True)
        problem = run_case(cases[i], Path(root) / f"case{i}")
        print(json.dumps({"done": i, "problem": problem}), flush=True)


def run_cases(
    indices: list[int],
    root: Path,
    time_limit: float = TIME_LIMIT_S,
    factory: str = "tests.test_data_fuzz:data_file_cases",
) -> dict[int, str | None]:
    """Run the cases at ``indices`` (of the list ``factory``, "module:function", returns) in a
    child process, from the repository root; a case that takes longer than ``time_limit`` is a
    hang: the child is killed and the rest run in a new one."""
    results: dict[int, str | None] = {}
    pending = list(indices)
    repo = Path(__file__).resolve().parents[1]
    while pending:
        code = (
            "from tests.test_data_fuzz import _child; "
            f"_child({pending!r}, {str(root)!r}, {factory!r})"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=repo,
            stdout=subprocess.PIPE,
            text=True,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream=child.stdout, sink=lines) -> None:
            for line in stream:
                sink.put(line)
            sink.put(None)

        threading.Thread(target=pump, daemon=True).start()
        current: int | None = None
        deadline = time.monotonic() + 60  # the child's start (imports) gets longer
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                child.kill()
                if current is None:
                    raise RuntimeError("the fuzz child did not start") from None
                results[current] = f"no answer within {time_limit:g} s (a hang)"
                break
            if line is None:  # the child ended
                child.wait()
                if current is not None and current not in results:
                    results[current] = f"the process died (exit {child.returncode})"
                break
            message = json.loads(line)
            if "start" in message:
                current = message["start"]
                deadline = time.monotonic() + time_limit
            else:
                results[message["done"]] = message["problem"]
                current = None
        child.wait()
        pending = [i for i in pending if i not in results]
    return results


# ----------------------------------------------------------------------------- the tests

CASES = data_file_cases()
SAMPLED = sorted(random.Random(9).sample(range(len(CASES)), min(SAMPLE, len(CASES))))


@pytest.fixture(scope="module")
def sampled_results(tmp_path_factory) -> dict[int, str | None]:
    return run_cases(SAMPLED, tmp_path_factory.mktemp("data-fuzz"))


@pytest.mark.parametrize("index", SAMPLED, ids=[CASES[i].name[:60] for i in SAMPLED])
def test_bad_data_file_is_loaded_or_refused_cleanly(index, sampled_results):
    assert sampled_results[index] is None, f"{CASES[index].name}: {sampled_results[index]}"


def test_the_harness_catches_hangs_tracebacks_and_echoes(tmp_path, monkeypatch):
    """The judge itself: accepted garbage, echoed contents and hangs are all caught."""
    accepted = DataCase("valid table", {"data.csv": GOOD})
    assert run_case(accepted, tmp_path / "a") == "accepted, but should have been refused"
    assert run_case(DataCase("valid", {"data.csv": GOOD}, expect="either"), tmp_path / "b") is None
    echo = DataCase("echo", {"data.csv": _table([f"1,2,{CANARY},4"])})
    import datalever.data.contributions as contributions

    monkeypatch.setattr(contributions, "value_preview", repr)
    assert "echoes the file's contents" in (run_case(echo, tmp_path / "c") or "")
    crash = DataCase("crash", {"data.csv": GOOD}, columns={"user": 3})  # type: ignore[dict-item]
    monkeypatch.setattr(
        "datalever.data.tabular._resolve", lambda *a: (_ for _ in ()).throw(KeyError("x"))
    )
    assert run_case(crash, tmp_path / "d") == "KeyError: 'x'"


def _sleeper_cases() -> list[DataCase]:
    return [
        DataCase("sleeps", call="_sleep", target="60", expect="either"),
        DataCase("then a valid table", {"data.csv": GOOD}, expect="either"),
    ]


def test_a_hang_is_reported_not_waited_for(tmp_path):
    start = time.monotonic()
    results = run_cases([0, 1], tmp_path, 1.0, "tests.test_data_fuzz:_sleeper_cases")
    assert results == {0: "no answer within 1 s (a hang)", 1: None}  # the rest still ran
    assert time.monotonic() - start < 30


def main() -> int:
    """Run every case; print the failures; exit 1 when any case fails."""
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_cases(list(range(len(CASES))), Path(tmp))
    failures = {i: p for i, p in results.items() if p is not None}
    for i, problem in sorted(failures.items()):
        print(f"FAIL {CASES[i].name[:80]}: {problem}")
    seconds = time.perf_counter() - started
    print(
        f"{len(CASES) - len(failures)} of {len(CASES)} data-file cases passed in {seconds:.0f} s."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
