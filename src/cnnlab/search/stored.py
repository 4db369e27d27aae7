"""Reading a study's storage without changing it.

``search report`` only reads: opening an SQLite URL with Optuna creates the file, its directory
and Optuna's tables, so a mistyped URL, an empty file or another program's database would be
written into. ``check_storage`` looks first (read-only) and says in one line what is there
instead of a study: no file, not an SQLite file, no Optuna tables, an unknown kind of URL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import optuna

OPTUNA_TABLES = ("studies", "trials", "version_info")
KINDS = "sqlite:///FILE, postgresql://..., mysql://... or journal:PATH"


def journal_path(url: str) -> Path:
    return Path(url[len("journal:") :].removeprefix("//"))


def check_storage(url: str) -> None:
    """Raise (one line) unless ``url`` names an existing Optuna storage; creates and writes nothing."""
    if url.startswith("journal:"):
        path = journal_path(url)
        if not path.is_file():
            raise FileNotFoundError(f"no journal file {path} (from {url!r}); give the storage URL the search used")
        return
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError):
        kind = url.split("://", 1)[0] if "://" in url else url
        raise ValueError(f"unknown database kind {kind!r} in {url!r}; a study's storage is {KINDS}") from None
    except ImportError as error:  # e.g. psycopg2 missing for postgresql://
        raise ValueError(f"cannot read storage {url!r}: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        where, tables = _sqlite_tables(parsed.database, url)
    else:
        where, tables = parsed.render_as_string(hide_password=True), _server_tables(url)
    missing = [t for t in OPTUNA_TABLES if t not in tables]
    if missing:
        raise ValueError(
            f"{where} is not an Optuna study database (it has no {', '.join(missing)} table); "
            "give the study directory, or the storage URL the search used"
        )


def _sqlite_tables(database: str | None, url: str) -> tuple[str, set[str]]:
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError(f"{url!r} names no SQLite file; a study's storage is {KINDS}")
    path = Path(database)
    if not path.is_file():
        raise FileNotFoundError(
            f"no SQLite file {path} (from {url!r}); give the study directory, or the storage URL the search used"
        )
    try:
        with sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True) as db:  # read-only: never writes
            names = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{path} is not an SQLite database ({error})") from None
    return str(path), names


def _server_tables(url: str) -> set[str]:
    import sqlalchemy
    import sqlalchemy.exc

    from .study import _postgres_driver

    try:
        engine = sqlalchemy.create_engine(_postgres_driver(url))
        try:
            return set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except ImportError as error:
        raise ValueError(
            f"cannot read storage {url!r}: {error} (pip install cnnlab[postgres] for PostgreSQL)"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ValueError(f"cannot read storage {url!r}: {reason}") from None


def read_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage of an existing study database, checked first (``check_storage``)."""
    from .study import open_storage

    check_storage(url)
    if not url.startswith("journal:"):
        return open_storage(url)
    try:  # a journal is read (replayed) when opened: a file that is no journal fails here
        storage = open_storage(url)
        storage.get_all_studies()
    except Exception as error:  # noqa: BLE001 -- whatever the replay tripped on, the file is not a journal
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"{journal_path(url)} is not an Optuna journal file ({type(error).__name__}: {reason})"
        ) from None
    return storage


def stored_study_names(url: str) -> list[str]:
    """The studies ``url`` holds (checked, read-only)."""
    return [s.study_name for s in optuna.get_all_study_summaries(read_storage(url), include_best_trial=False)]
