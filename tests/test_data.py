"""Loaders for every supported format, the catalogue and the cache, on tiny files written here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalever.data import registry
from datalever.data.movielens import (
    detect_format,
    load_movielens,
    load_recbole_atomic,
)
from datalever.data.tabular import load_table
from datalever.errors import DataleverError

# ----------------------------------------------------------------------------- tiny files


def _flags(*genres: str) -> str:
    order = [
        "unknown",
        "Action",
        "Adventure",
        "Animation",
        "Children's",
        "Comedy",
        "Crime",
        "Documentary",
        "Drama",
        "Fantasy",
        "Film-Noir",
        "Horror",
        "Musical",
        "Mystery",
        "Romance",
        "Sci-Fi",
        "Thriller",
        "War",
        "Western",
    ]
    return "|".join("1" if g in genres else "0" for g in order)


def write_100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(
        "196\t242\t3\t881250949\n"
        "186\t302\t3\t891717742\n"
        "22\t377\t1\t878887116\n"
        "196\t377\t5\t881251000\n"
        "22\t242\t4\t878887200\n"
    )
    (folder / "u.user").write_text(
        "22|25|M|writer|40206\n186|39|F|executive|00000\n196|49|M|writer|55105\n"
    )
    (folder / "u.item").write_bytes(
        (
            f"242|Kolya (1996)|24-Jan-1997||http://x|{_flags('Comedy')}\n"
            f"302|L.A. Confidential (1997)|01-Jan-1997||http://y|"
            f"{_flags('Crime', 'Film-Noir', 'Mystery', 'Thriller')}\n"
            f'377|Café "Noir" (1995)|01-Jan-1995||http://z|'
            + _flags("Animation", "Children's", "Comedy")
            + "\n"
        ).encode("latin-1")
    )
    return folder


def write_1m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
        "3::2355::2::978297867\n"
    )
    (folder / "users.dat").write_text(
        "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::0::55117\n"
    )
    (folder / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "2355::Star Wars: Episode IV - Pokémon (1977)::Action|Sci-Fi\n".encode("latin-1")
    )
    return folder


def write_10m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text(
        "1::122::5::838985046\n1::185::4.5::838983525\n7::122::0.5::838983392\n"
    )
    (folder / "movies.dat").write_text(
        "122::Boomerang (1992)::Comedy|Romance\n185::Net, The: Redux (1995)::(no genres listed)\n",
        encoding="utf-8",
    )
    return folder


def write_csv_release(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n"
        "2,1,0.5,964982224\n3,6,5.0,964983815\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"American President, The (1995)",Comedy|Drama|Romance\n'
        "6,Heat (1995),(no genres listed)\n"
    )
    return folder


RECBOLE_INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t1\t1\t878887116\n"
)
RECBOLE_USER = (
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "196\t49\tM\twriter\t55105\n186\t39\tF\texecutive\t00000\n22\t25\tM\twriter\t40206\n"
)
RECBOLE_ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "242\tKolya\t1996\tComedy\n"
    "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
)


def write_recbole(folder: Path, stem: str = "ml-tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.inter").write_text(RECBOLE_INTER)
    (folder / f"{stem}.user").write_text(RECBOLE_USER)
    (folder / f"{stem}.item").write_text(RECBOLE_ITEM)
    return folder


def zip_folder(folder: Path, archive: Path, inner: str) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{inner}/{f.name}")
    return archive


def attrs(c, user_id) -> pd.Series:
    """The attribute row of the contributor with source id ``user_id``."""
    code = int(np.flatnonzero(c.contributor_ids == user_id)[0])
    return c.contributors.iloc[code]


def meta(c, item_id) -> pd.Series:
    code = int(np.flatnonzero(c.item_ids == item_id)[0])
    return c.items.iloc[code]


# ----------------------------------------------------------------------------- MovieLens


def test_100k(tmp_path):
    c = load_movielens(write_100k(tmp_path / "ml-100k"), "ml-100k")
    assert (len(c), c.n_contributors, c.n_items) == (5, 3, 3)
    assert c.rating_scale == (1.0, 5.0)
    assert list(c.contributor_ids) == [22, 186, 196]
    assert list(c.item_ids) == [242, 302, 377]
    assert list(c.records["contributor"]) == [2, 1, 0, 2, 0]
    assert list(c.records["item"]) == [0, 1, 2, 2, 0]
    assert "timestamp" in c.records
    u = attrs(c, 186)
    assert (u["gender"], int(u["age"]), u["occupation"]) == ("F", 39, "executive")
    assert c.contributors["age"].dtype.kind == "i"
    assert meta(c, 302)["genres"] == "Crime|Film-Noir|Mystery|Thriller"
    assert meta(c, 377)["genres"] == "Animation|Children's|Comedy"
    assert meta(c, 377)["title"] == 'Café "Noir" (1995)'
    assert set(c.genres()) == {
        "Comedy",
        "Crime",
        "Film-Noir",
        "Mystery",
        "Thriller",
        "Animation",
        "Children's",
    }


def test_100k_one_folder_down_as_unzipped(tmp_path):
    write_100k(tmp_path / "download" / "ml-100k")
    assert detect_format(tmp_path / "download") == ("movielens-100k", tmp_path / "download/ml-100k")
    c = load_movielens(tmp_path / "download")
    assert len(c) == 5
    assert c.name == "download"


def test_1m(tmp_path):
    c = load_movielens(write_1m(tmp_path), "ml-1m")
    assert (len(c), c.n_contributors, c.n_items) == (4, 3, 3)
    assert c.rating_scale == (1.0, 5.0)
    assert [attrs(c, u)["occupation"] for u in (1, 2, 3)] == [
        "K-12 student",
        "self-employed",
        "other",
    ]
    assert [attrs(c, u)["gender"] for u in (1, 2, 3)] == ["F", "M", "M"]
    assert [int(attrs(c, u)["age"]) for u in (1, 2, 3)] == [1, 56, 25]
    assert meta(c, 661)["genres"] == "Animation|Children's|Musical"
    assert meta(c, 2355)["title"] == "Star Wars: Episode IV - Pokémon (1977)"
    assert c.records["rating"].tolist() == [5.0, 3.0, 4.0, 2.0]


def test_1m_bad_occupation_code(tmp_path):
    write_1m(tmp_path)
    (tmp_path / "users.dat").write_text("1::F::1::21::48067\n")
    with pytest.raises(DataleverError, match="occupation code"):
        load_movielens(tmp_path)


def test_10m(tmp_path):
    c = load_movielens(write_10m(tmp_path / "ml-10M100K"))
    assert (len(c), c.n_contributors, c.n_items) == (3, 2, 2)
    assert c.rating_scale == (0.5, 5.0)
    assert c.records["rating"].tolist() == [5.0, 4.5, 0.5]
    assert c.contributors.shape == (2, 0)
    assert meta(c, 122)["genres"] == "Comedy|Romance"
    assert meta(c, 185)["genres"] == ""
    assert meta(c, 185)["title"] == "Net, The: Redux (1995)"


def test_csv_release(tmp_path):
    c = load_movielens(write_csv_release(tmp_path / "ml-latest-small"))
    assert (len(c), c.n_contributors, c.n_items) == (4, 3, 3)
    assert c.rating_scale == (0.5, 5.0)
    assert list(c.item_ids) == [1, 3, 6]
    assert meta(c, 3)["title"] == "American President, The (1995)"
    assert meta(c, 1)["genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert meta(c, 6)["genres"] == ""
    assert c.records["timestamp"].iloc[0] == 964982703


def test_no_dataset_in_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataleverError, match=r"No MovieLens or RecBole files.*notes\.txt"):
        load_movielens(tmp_path)


def test_two_datasets_in_one_folder(tmp_path):
    write_100k(tmp_path / "a")
    write_1m(tmp_path / "b")
    with pytest.raises(DataleverError, match="several datasets"):
        load_movielens(tmp_path)


def test_non_numeric_rating_in_movielens(tmp_path):
    write_100k(tmp_path)
    (tmp_path / "u.data").write_text("1\t2\tgood\t881250949\n1\t3\t4\t881250949\n")
    with pytest.raises(DataleverError, match="non-numeric.*'good'"):
        load_movielens(tmp_path)


def test_empty_movielens_ratings(tmp_path):
    write_100k(tmp_path)
    (tmp_path / "u.data").write_text("")
    with pytest.raises(DataleverError, match="empty"):
        load_movielens(tmp_path)


def test_malformed_movielens_ids(tmp_path):
    write_1m(tmp_path)
    (tmp_path / "ratings.dat").write_text("x::1193::5::978300760\n")
    with pytest.raises(DataleverError, match="non-integer"):
        load_movielens(tmp_path)


# ----------------------------------------------------------------------------- RecBole


def test_recbole_atomic(tmp_path):
    c = load_recbole_atomic(write_recbole(tmp_path), "tiny")
    assert (len(c), c.n_contributors, c.n_items) == (3, 3, 3)
    assert c.name == "tiny"
    # Integer ids become ints, in ratings and attribute tables alike, so they join.
    assert list(c.contributor_ids) == [22, 186, 196]
    assert list(c.item_ids) == [1, 242, 302]
    assert c.contributors["gender"].notna().all()
    u = attrs(c, 186)
    assert (u["gender"], int(u["age"]), u["occupation"]) == ("F", 39, "executive")
    assert meta(c, 1)["genres"] == "Animation|Children's|Comedy"
    assert meta(c, 302)["genres"] == "Crime|Film-Noir|Mystery|Thriller"
    assert meta(c, 1)["title"] == "Toy Story"
    assert c.rating_scale == (1.0, 3.0)  # taken from the data: atomic files do not state it


def test_recbole_string_ids_stay_strings_and_join(tmp_path):
    tmp_path.joinpath("x.inter").write_text(
        "user_id:token\titem_id:token\trating:float\nu1\t1\t4\nu2\t2\t5\n"
    )
    tmp_path.joinpath("x.user").write_text(
        "user_id:token\tage:token\tgender:token\nu1\t30\tF\nu2\t40\tM\n"
    )
    c = load_movielens(tmp_path)
    assert list(c.contributor_ids) == ["u1", "u2"]
    assert list(c.item_ids) == [1, 2]
    assert c.contributors["gender"].tolist() == ["F", "M"]


def test_recbole_missing_inter(tmp_path):
    with pytest.raises(DataleverError, match=r"\*\.inter"):
        load_recbole_atomic(tmp_path, "x")


def test_recbole_bad_rating(tmp_path):
    tmp_path.joinpath("x.inter").write_text(
        "user_id:token\titem_id:token\trating:float\n1\t1\tfour\n"
    )
    with pytest.raises(DataleverError, match="non-numeric"):
        load_recbole_atomic(tmp_path, "x")


# ----------------------------------------------------------------------------- tables


def test_csv_with_mapping(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("who,what,stars,when\na,x,1,10\nb,x,7,11\na,y,3,12\n")
    c = load_table(path, {"user": "who", "item": "what", "rating": "stars", "timestamp": "when"})
    assert (len(c), c.n_contributors, c.n_items) == (3, 2, 2)
    assert c.name == "events"
    assert c.rating_scale == (1.0, 7.0)
    assert c.records["timestamp"].tolist() == [10, 11, 12]
    assert list(c.contributor_ids) == ["a", "b"]


def test_csv_common_names_need_no_mapping(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating\n1,5,4\n2,5,3\n")
    c = load_table(path, rating_scale=(1.0, 5.0))
    assert (len(c), c.n_contributors, c.n_items, c.rating_scale) == (2, 2, 1, (1.0, 5.0))


def test_tsv(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("u\ti\tr\n1\t5\t4\n")
    c = load_table(path, {"user": "u", "item": "i", "rating": "r"})
    assert len(c) == 1


def test_parquet_with_mapping(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame(
        {"uid": [1, 1, 2, 3], "iid": [10, 11, 10, 12], "score": [0.5, 1.0, 0.0, 0.25]}
    ).to_parquet(path)
    c = load_table(path, {"user": "uid", "item": "iid", "rating": "score"}, name="p")
    assert (len(c), c.n_contributors, c.n_items) == (4, 3, 3)
    assert c.name == "p"
    assert c.records["rating"].tolist() == [0.5, 1.0, 0.0, 0.25]


def test_table_missing_file(tmp_path):
    with pytest.raises(DataleverError, match="does not exist"):
        load_table(tmp_path / "nope.csv")


def test_table_unknown_format(tmp_path):
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataleverError, match=r"\.parquet"):
        load_table(path)


def test_table_misnamed_columns_name_what_was_found(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("person,thing,grade\n1,2,3\n")
    with pytest.raises(DataleverError) as err:
        load_table(path)
    text = str(err.value)
    assert "person, thing, grade" in text
    assert 'columns = {user = "person", item = "thing", rating = "grade"}' in text


def test_table_mapping_to_absent_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("person,thing,grade\n1,2,3\n")
    with pytest.raises(DataleverError, match=r"user='who'.*columns found: person, thing, grade"):
        load_table(path, {"user": "who", "item": "thing", "rating": "grade"})


def test_table_unknown_field_in_mapping(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("u,i,r\n1,2,3\n")
    with pytest.raises(DataleverError, match="unknown field"):
        load_table(path, {"user": "u", "item": "i", "rating": "r", "weight": "r"})


def test_table_non_numeric_ratings(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n1,2,3\n1,3,great\n")
    with pytest.raises(DataleverError, match="non-numeric.*'great'"):
        load_table(path)


def test_table_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataleverError, match="empty"):
        load_table(empty)
    header = tmp_path / "header.csv"
    header.write_text("user,item,rating\n")
    with pytest.raises(DataleverError, match="no records"):
        load_table(header)


# ----------------------------------------------------------------------------- catalogue, cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("DATALEVER_CACHE", str(root))
    return root


def _cache_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_cache_dir_from_environment(cache):
    assert registry.cache_dir() == cache
    assert registry.dataset_dir("ml-100k") == cache / "movielens-100k"


def test_catalogue_entries():
    assert set(registry.CATALOGUE) == {
        "movielens-100k",
        "movielens-1m",
        "movielens-10m",
        "movielens-20m",
        "movielens-25m",
        "movielens-latest-small",
    }
    for info in registry.CATALOGUE.values():
        assert info.url.startswith("https://files.grouplens.org/datasets/movielens/ml-")
        assert info.md5 is None or len(info.md5) == 32
    assert registry.CATALOGUE["movielens-100k"].rating_scale == (1.0, 5.0)
    assert registry.CATALOGUE["movielens-25m"].rating_scale == (0.5, 5.0)


def test_unknown_name_lists_known_names(cache):
    with pytest.raises(DataleverError, match="movielens-100k, movielens-1m"):
        registry.load_dataset("netflix-prize")
    with pytest.raises(DataleverError, match="movielens-latest-small"):
        registry.fetch_dataset("netflix-prize")


def test_not_fetched_and_fetch_disallowed(cache):
    with pytest.raises(DataleverError, match="datalever data fetch movielens-1m"):
        registry.load_dataset("movielens-1m", fetch=False)


def test_checksum_mismatch_of_local_zip(tmp_path, cache):
    archive = zip_folder(write_100k(tmp_path / "src"), tmp_path / "ml-100k.zip", "ml-100k")
    with pytest.raises(DataleverError, match="MD5"):
        registry.fetch_dataset("movielens-100k", path=archive, progress=False)
    assert _cache_files(cache) == []
    assert archive.exists()  # the user's own copy is never deleted


def test_local_zip_without_pinned_checksum(tmp_path, cache):
    archive = zip_folder(write_csv_release(tmp_path / "src"), tmp_path / "s.zip", "ml-latest-small")
    folder = registry.fetch_dataset("movielens-latest-small", path=archive, progress=False)
    assert registry.cached_source("latest-small") == "local"
    assert len(load_movielens(folder)) == 4


def test_local_folder_is_validated_and_copied(tmp_path, cache):
    src = write_10m(tmp_path / "ml-10M100K")
    with pytest.raises(DataleverError, match="look like movielens-10m"):
        registry.fetch_dataset("movielens-1m", path=src, progress=False)
    assert _cache_files(cache) == []
    registry.fetch_dataset("movielens-10m", path=tmp_path, progress=False)
    c = registry.load_dataset("movielens-10m", fetch=False)
    assert (len(c), c.rating_scale) == (3, (0.5, 5.0))


def test_not_a_zip(tmp_path, cache):
    bogus = tmp_path / "ml-1m.zip"
    bogus.write_text("not a zip")
    with pytest.raises(DataleverError, match="neither a folder nor a zip"):
        registry.fetch_dataset("movielens-1m", path=bogus)


def test_bad_source(cache):
    with pytest.raises(DataleverError, match="Unknown source"):
        registry.fetch_dataset("movielens-100k", source="kaggle")
    with pytest.raises(DataleverError, match="only provides movielens-100k"):
        registry.fetch_dataset("movielens-1m", source="recbole")


def test_load_dataset_by_path(tmp_path, cache):
    assert len(registry.load_dataset(str(write_1m(tmp_path / "m")))) == 4
    table = tmp_path / "t.csv"
    table.write_text("user,item,rating\n1,1,2\n")
    assert len(registry.load_dataset(str(table))) == 1
    with pytest.raises(DataleverError, match="no file or folder"):
        registry.load_dataset(str(tmp_path / "missing.csv"))


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="session")
def real_100k_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATALEVER_CACHE", str(root))
        try:
            registry.fetch_dataset("movielens-100k", source="recbole", progress=False)
        except DataleverError as err:
            if "with pip" in err.problem:
                pytest.skip(f"PyPI not reachable: {err.problem}")
            raise
    return root


def test_real_movielens_100k_via_recbole(real_100k_cache, monkeypatch):
    monkeypatch.setenv("DATALEVER_CACHE", str(real_100k_cache))
    assert registry.cached_source("movielens-100k") == "recbole"
    c = registry.load_dataset("movielens-100k", fetch=False)
    assert (c.n_contributors, c.n_items, len(c)) == (943, 1682, 100_000)
    assert c.rating_scale == (1.0, 5.0)
    assert c.contributors["gender"].value_counts().to_dict() == {"M": 670, "F": 273}
    assert c.contributors["age"].dtype.kind == "i"
    assert c.contributors["occupation"].nunique() == 21
    assert meta(c, 1)["genres"] == "Animation|Children's|Comedy"
    assert len(c.genres()) == 19
    assert list(c.contributor_ids[:3]) == [1, 2, 3]


# ----------------------------------------------------------------------------- bad input


def _table(tmp_path, text: str, name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("inf", "infinite"),
        ("-inf", "infinite"),
        ("1e308", "beyond"),
        ("", "is empty in"),
        ("nan", "is empty in"),
        ("great", "non-numeric"),
        ("1" * 400, "infinite"),
    ],
)
def test_bad_ratings_are_refused_naming_file_column_and_rows(tmp_path, value, problem):
    path = _table(tmp_path, f"who,what,stars\n1,2,3\n1,3,{value}\n2,3,{value}\n2,4,1\n")
    with pytest.raises(DataleverError) as err:
        load_table(path, {"user": "who", "item": "what", "rating": "stars"})
    text = str(err.value)
    assert problem in text
    assert "rating column ('stars')" in text and str(path) in text
    assert "2 rows (first: data row 2)" in text


def test_boolean_ratings_are_refused(tmp_path):
    path = _table(tmp_path, "user,item,rating\n1,2,True\n1,3,False\n")
    with pytest.raises(DataleverError, match="rating column of .*true/false"):
        load_table(path)
    pq_path = tmp_path / "b.parquet"
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [True, False]}).to_parquet(pq_path)
    with pytest.raises(DataleverError, match="true/false"):
        load_table(pq_path)


def test_text_and_mixed_ratings_from_python_are_refused():
    from datalever.data.contributions import Contributions

    frame = pd.DataFrame(
        {"user": [1, 2], "item": [1, 1], "rating": pd.Series([4, True], dtype=object)}
    )
    with pytest.raises(DataleverError, match="non-numeric"):
        Contributions.from_frames("py", frame)
    frame["rating"] = pd.Series([b"4", b"5"], dtype=object)
    with pytest.raises(DataleverError, match="not numbers"):
        Contributions.from_frames("py", frame)


@pytest.mark.parametrize(
    "mapping",
    [
        {"user": "a", "item": "a", "rating": "r"},
        {"user": "a", "item": "b", "rating": "a"},
    ],
)
def test_column_mapped_twice(tmp_path, mapping):
    path = _table(tmp_path, "a,b,r\n1,2,3\n")
    with pytest.raises(DataleverError, match="to the same column \\('a'\\)"):
        load_table(path, mapping)


def _parquet(path: Path, **columns) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0]}
    base.update(columns)
    pq.write_table(pa.table({k: pa.array(v) for k, v in base.items()}), path)
    return path


@pytest.mark.parametrize(
    ("field", "values", "what"),
    [
        ("user", [{"a": 1}, {"a": 2}], "lists, records"),
        ("item", [[1], [2]], "lists, records"),
        ("user", [b"\x00\xff", b"b"], "raw bytes"),
        ("item", [True, False], "true/false"),
        ("user", [1.5, 2.0], "fractions"),
    ],
)
def test_parquet_ids_must_be_integers_or_text(tmp_path, field, values, what):
    path = _parquet(tmp_path / "ids.parquet", **{field: values})
    with pytest.raises(DataleverError, match=f"The {field} column of .*{what}.*integers or text"):
        load_table(path)


def test_parquet_whole_float_ids_become_integers(tmp_path):
    path = _parquet(tmp_path / "f.parquet", user=[1.0, 2.0])
    assert list(load_table(path).contributor_ids) == [1, 2]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ([{"a": 1}, {"a": 2}], "neither numbers nor dates"),
        ([float("inf"), 1.0], "impossibly large"),
        ([1e300, 1.0], "impossibly large"),
        ([True, False], "true/false"),
        ([None, 1.0], "is empty in 1 row"),
        (["yesterday", "2020-01-01"], "neither numbers nor dates in 1 row"),
    ],
)
def test_bad_timestamps_are_refused(tmp_path, values, problem):
    path = _parquet(tmp_path / "ts.parquet", timestamp=values)
    with pytest.raises(DataleverError, match=problem):
        load_table(path)


def test_date_timestamps_become_seconds_since_1970(tmp_path):
    # pandas 3 parses dates to microseconds: dividing by 1e9 as before gave 1577836 here.
    path = _table(tmp_path, "user,item,rating,timestamp\n1,2,3,2020-01-01\n1,3,4,2020-01-02\n")
    assert load_table(path).records["timestamp"].tolist() == [1577836800, 1577923200]
    pq_path = tmp_path / "d.parquet"
    frame = pd.DataFrame({"user": [1], "item": [1], "rating": [1.0]})
    frame["timestamp"] = pd.to_datetime(["2020-01-01T00:00:10"])
    frame.to_parquet(pq_path)
    assert load_table(pq_path).records["timestamp"].tolist() == [1577836810]


def test_huge_and_negative_ids_are_kept_as_given(tmp_path):
    path = _table(tmp_path, "user,item,rating\n99999999999999999999999999,-2,3\n1,-2,4\n")
    c = load_table(path)
    assert sorted(c.contributor_ids) == ["1", "99999999999999999999999999"]
    assert list(c.item_ids) == [-2]


def test_duplicates_keep_the_latest_by_timestamp_and_say_so(tmp_path, caplog):
    path = _table(
        tmp_path,
        "user,item,rating,timestamp\n1,5,1,10\n1,5,2,30\n2,5,3,5\n1,5,4,20\n1,6,5,1\n2,5,1,5\n",
    )
    with caplog.at_level("WARNING", logger="datalever.data"):
        c = load_table(path)
    r = c.records
    assert list(zip(r["contributor"], r["item"], r["rating"], strict=True)) == [
        (0, 0, 2.0),  # user 1, item 5: the rating at time 30
        (0, 1, 5.0),
        (1, 0, 1.0),  # user 2, item 5: equal times, the last in the file
    ]
    assert c.notes == [
        f"{path} has 3 duplicate (user, item) records: kept the latest of each by timestamp "
        "(the last in file order among equal times) and dropped 3."
    ]
    assert c.notes[0] in caplog.text


def test_duplicates_without_timestamps_keep_the_last_in_file_order(tmp_path):
    path = _table(tmp_path, "user,item,rating\n1,5,1\n1,5,2\n2,5,3\n")
    c = load_table(path)
    assert c.records["rating"].tolist() == [2.0, 3.0]
    assert c.rating_scale == (2.0, 3.0)  # the dropped rating does not widen the scale
    assert "kept the last of each in file order and dropped 1" in c.notes[0]


def test_movielens_has_no_duplicates(ml100k):
    assert (len(ml100k), ml100k.notes) == (100_000, [])


def test_error_messages_do_not_echo_file_contents(tmp_path):
    secret = "root:$6$Zq9x7Hsalt$LongSecretHashValue:19000:0:99999:7:::"
    target = tmp_path / "shadow"
    target.write_text(secret + "\ndaemon:*:19000:0:99999:7:::\n")
    link = tmp_path / "ratings.csv"
    link.symlink_to(target)
    for call in (lambda: load_table(link), lambda: load_table(link, {"user": "u", "item": "i"})):
        with pytest.raises(DataleverError) as err:
            call()
        text = str(err.value)
        assert "$6$" not in text and "Secret" not in text and "root" not in text
        assert "1 column found: 1 column not shown" in text or "not shown" in text
    values = tmp_path / "v.csv"
    values.write_text(f"user,item,rating\n1,2,{secret.replace(':', ';')}\n")
    with pytest.raises(DataleverError, match="a 57-character value") as err:
        load_table(values)
    assert "Secret" not in str(err.value)


def test_column_preview_shows_identifiers_only():
    from datalever.data.guard import column_preview

    assert column_preview(["user_id:token", "rating"]) == "user_id:token, rating"
    assert column_preview(["a b"] + ["x" * 50]) == "a b, " + "x" * 40 + "…"
    assert column_preview(["ok", "$6$abc", "name\x1b[31m"]) == "ok, 2 others not shown"
    many = column_preview([f"c{i}" for i in range(25)])
    assert many.endswith("c9, 15 others not shown")
    assert column_preview([]) == "none"


def test_rows_with_more_fields_than_the_header(tmp_path):
    path = _table(tmp_path, "user,item,rating\n1,2,3,4,5\n1,3,3\n")
    with pytest.raises(DataleverError, match="more fields than its header has columns \\(3\\)"):
        load_table(path)
    short = _table(tmp_path, "user,item,rating\n1,2,3\n1\n", "short.csv")
    with pytest.raises(DataleverError, match="rating column of .* is empty in 1 row"):
        load_table(short)


def test_binary_and_non_utf8_tables(tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataleverError, match="NUL bytes, so it is binary"):
        load_table(junk)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("user,item,rating\nJosé,2,3\n".encode("latin-1"))
    with pytest.raises(DataleverError, match="is not UTF-8 text"):
        load_table(latin)


def test_a_header_line_without_end_is_not_read_whole(tmp_path):
    path = tmp_path / "oneline.csv"
    path.write_bytes(b"x" * (3 << 20))
    with pytest.raises(DataleverError, match="first line .* longer than"):
        load_table(path)


def test_pipes_devices_and_folders_are_refused(tmp_path):
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataleverError, match="not a regular file"):
        load_table(fifo)  # opening a FIFO would wait forever for a writer
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    with pytest.raises(DataleverError, match="not a regular file"):
        registry.load_dataset(str(zero))
    with pytest.raises(DataleverError, match="is a folder"):
        load_table(tmp_path)


@pytest.mark.parametrize("length", [10_000_000, 5000])
def test_absurdly_long_names_are_refused_quickly(tmp_path, cache, length):
    import time

    name = "x" * length
    start = time.perf_counter()
    for call in (
        lambda: registry.load_dataset(name),
        lambda: registry.load_dataset("data/" + name + ".csv"),
        lambda: load_table(name),
        lambda: registry.fetch_dataset(name),
        lambda: registry.fetch_dataset("movielens-100k", path=Path(name)),
    ):
        with pytest.raises(DataleverError) as err:
            call()
        assert len(str(err.value)) < 600
    assert time.perf_counter() - start < 5


def test_names_with_nul_or_overlong_components(tmp_path):
    with pytest.raises(DataleverError, match="NUL"):
        registry.load_dataset("ratings\x00.csv")
    with pytest.raises(DataleverError, match="component of 300 characters"):
        registry.load_dataset(str(tmp_path / ("y" * 300)))


# ----------------------------------------------------------------------------- compression bombs


def _gzip_bomb(path: Path, megabytes: int = 50) -> Path:
    import gzip

    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"user,item,rating\n")
        block = b"1,2,3\n" * (1 << 16)
        for _ in range(megabytes * (1 << 20) // len(block)):
            f.write(block)
    return path


def test_gzip_bomb_stops_at_the_cap(tmp_path, monkeypatch):
    import time

    bomb = _gzip_bomb(tmp_path / "bomb.csv.gz")
    assert bomb.stat().st_size < 1 << 20  # 50 MB of rows, highly compressible
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", str(5 << 20))
    start = time.perf_counter()
    with pytest.raises(DataleverError, match="decompresses to more than 5,242,880 bytes"):
        load_table(bomb)
    assert time.perf_counter() - start < 5


def test_small_compressed_tables_load(tmp_path, monkeypatch):
    import bz2
    import gzip
    import lzma

    text = b"user,item,rating\n1,2,3\n2,2,4\n"
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", "1000")
    for suffix, compress in (
        (".gz", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
    ):
        path = tmp_path / f"r.csv{suffix}"
        path.write_bytes(compress(text))
        assert len(load_table(path)) == 2
    path = tmp_path / "r.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("r.csv", text)
    assert len(load_table(path)) == 2


def test_bad_cap_setting(tmp_path, monkeypatch):
    path = tmp_path / "r.csv.gz"
    path.write_bytes(b"")
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", "lots")
    with pytest.raises(DataleverError, match="DATALEVER_MAX_DECOMPRESSED_BYTES"):
        load_table(path)


def _zip_with_lying_size(path: Path, declared: int) -> Path:
    """A zip whose one member claims ``declared`` bytes (its header rewritten after writing)."""
    import struct

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("r.csv", "user,item,rating\n1,2,3\n")
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)  # uncompressed size
    path.write_bytes(bytes(data))
    return path


def test_zip_members_declaring_huge_sizes_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", str(1 << 20))
    path = _zip_with_lying_size(tmp_path / "r.csv.zip", 4_000_000_000)
    with pytest.raises(DataleverError, match="decompresses to more than"):
        load_table(path)
    several = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(several, "w") as zf:
        zf.writestr("a.csv", "user,item,rating\n1,2,3\n")
        zf.writestr("b.csv", "user,item,rating\n1,2,3\n")
    with pytest.raises(DataleverError, match="holds 2 files"):
        load_table(several)


def test_zip_bomb_given_to_fetch_is_refused_before_extracting(tmp_path, cache, monkeypatch):
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-latest-small/ratings.csv", b"0" * (20 << 20))
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", str(1 << 20))
    with pytest.raises(DataleverError, match="decompresses to more than 1,048,576 bytes"):
        registry.fetch_dataset("movielens-latest-small", path=archive, progress=False)
    assert [p for p in _cache_files(cache) if p.is_file()] == []


def test_zip_that_is_not_movielens(tmp_path, cache):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("notes/readme.txt", "hello")
    with pytest.raises(DataleverError, match="hold no MovieLens or RecBole dataset"):
        registry.fetch_dataset("movielens-latest-small", path=archive, progress=False)
    assert [p for p in _cache_files(cache) if p.is_file()] == []


def test_parquet_declaring_more_than_the_cap(tmp_path, monkeypatch):
    path = _parquet(tmp_path / "big.parquet", user=list(range(2)))
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", "10")
    with pytest.raises(DataleverError, match="declares .* bytes of data"):
        load_table(path)


def test_folder_listing_in_errors_is_sanitised(tmp_path):
    (tmp_path / "evil\x1b[2J.txt").write_text("x")
    with pytest.raises(DataleverError) as err:
        load_movielens(tmp_path)
    assert "\x1b" not in str(err.value) and "evil?[2J.txt" in str(err.value)


def test_header_names_match_past_surrounding_spaces(tmp_path):
    path = _table(tmp_path, " userId , movieId , rating \n1,2,3\n")
    assert len(load_table(path)) == 1


def test_timestamps_mixing_numbers_and_dates(tmp_path):
    path = _table(tmp_path, "user,item,rating,timestamp\n1,2,3,100\n1,3,4,2020-01-01\n")
    with pytest.raises(DataleverError, match="mixes numbers and dates \\(first date: data row 2"):
        load_table(path)


def test_empty_dataset_name(cache):
    for name in ("", "   "):
        with pytest.raises(DataleverError, match="is empty.*catalogue dataset"):
            registry.load_dataset(name)


def test_fetch_validates_the_records_before_installing(tmp_path, cache):
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating\n1,2,inf\n")
    with pytest.raises(DataleverError, match="not a usable dataset.*s.zip/ml-latest-small/ratings"):
        registry.fetch_dataset("movielens-latest-small", path=archive, progress=False)
    assert [p for p in _cache_files(cache) if p.is_file()] == []


def test_attribute_files_listing_an_id_twice(tmp_path):
    folder = write_100k(tmp_path / "ml")
    with open(folder / "u.user", "a") as f:
        f.write("22|30|F|writer|12345\n")
    with pytest.raises(DataleverError, match="user attributes .* list 1 user id.* \\(first: 22\\)"):
        load_movielens(folder)


def test_ratings_outside_the_stated_scale(tmp_path):
    path = _table(tmp_path, "user,item,rating\n1,2,3\n1,3,7\n")
    with pytest.raises(DataleverError, match="outside the scale 1–5 in 1 row \\(first: data row 2"):
        load_table(path, rating_scale=(1.0, 5.0))
    with pytest.raises(DataleverError, match="not a range"):
        load_table(path, rating_scale=(5.0, float("nan")))


def test_txt_tables_split_on_separators_only(tmp_path):
    for sep in (",", "\t", ";", "|", " "):
        path = _table(tmp_path, f"user{sep}item{sep}rating\n1{sep}2{sep}3\n", "r.txt")
        assert len(load_table(path)) == 1
    path = _table(tmp_path, "abc\n1\n", "one.txt")  # the sniffer once split on the letter c
    with pytest.raises(DataleverError, match="1 column found: abc\\)"):
        load_table(path)


def test_an_archive_named_only_zip(tmp_path):
    path = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
    with pytest.raises(DataleverError, match="archive .* data fetch NAME --path"):
        registry.load_dataset(str(path))


def test_parquet_of_run_length_encoded_rows_is_bounded_by_its_row_count(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 2_000_000  # equal values: a few KB on disk, 48 MB once read
    path = tmp_path / "rle.parquet"
    table = pa.table({c: pa.array(np.ones(n)) for c in ("user", "item", "rating")})
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 1 << 20
    monkeypatch.setenv("DATALEVER_MAX_DECOMPRESSED_BYTES", str(10 << 20))
    with pytest.raises(DataleverError, match="declares 48,000,000 bytes"):
        load_table(path)


def test_column_mapping_of_other_types():
    from datalever.data.tabular import _resolve

    with pytest.raises(DataleverError, match="both as text"):
        _resolve({"user": ["a"], "item": "b"}, ["a", "b"], Path("r.csv"))  # type: ignore[dict-item]
