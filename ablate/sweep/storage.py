"""Where an Optuna study lives: a storage URL, checked before any worker starts.

The embedded default is Optuna's journal file (``JournalStorage`` + ``JournalFileBackend``) in
the sweep dir: several processes on one machine, or jobs on a shared file system, can work it
without a server. Any Optuna RDB URL (SQLite, PostgreSQL, MySQL) works too.

Accepted forms::

    null                                  -> journal:///<paths.sweeps_dir>/<sweep>/optuna.journal
    journal:///abs/path/study.journal     a journal file (also: any path ending in .journal)
    sqlite:///abs/path/study.db
    postgresql://user:pass@host:5432/db   (postgresql+psycopg2://, +psycopg:// too)
    mysql://user:pass@host:3306/db        (mysql+pymysql:// etc.)

Optuna's own tools take the same storage in their own forms (``optuna_cli_command``): the
``optuna`` CLI reads a journal file as ``--storage PATH --storage-class JournalFileBackend`` (its
``--storage`` is a DB URL or a file path, not ``journal://``) and an RDB by its URL;
``optuna-dashboard PATH`` opens a journal file.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from typing import Optional

from ablate.errors import ConfigError

ALLOWED = ("journal:///PATH", "PATH.journal", "sqlite:///PATH", "postgresql://USER:PASS@HOST:PORT/DB",
           "mysql://USER:PASS@HOST:PORT/DB")
_RDB = re.compile(r"^(sqlite|postgresql|mysql)(\+[a-z0-9_]+)?://")
JOURNAL_FILE = "optuna.journal"


def check_storage_url(url: Optional[str]) -> None:
    """Raise a one-line ValueError unless ``url`` is a storage form ablate can open."""
    if url is None:
        return
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"bad storage URL {url!r}; allowed: null (journal in the sweep dir), {', '.join(ALLOWED)}")
    if url.startswith("journal://"):
        if not url[len("journal://"):].strip("/"):
            raise ConfigError(f"bad storage URL {url!r}: no file path; allowed: {', '.join(ALLOWED)}")
        return
    if "://" not in url and url.endswith(".journal"):
        return
    m = _RDB.match(url)
    if not m:
        raise ConfigError(f"bad storage URL {url!r}; allowed: null (journal in the sweep dir), {', '.join(ALLOWED)}")
    if m.group(1) == "sqlite" and not url.startswith("sqlite:///"):
        raise ConfigError(f"bad storage URL {url!r}: sqlite needs three slashes (sqlite:///PATH)")
    if m.group(1) != "sqlite" and not re.match(r"^[^:]+://[^/]*[^/:@]+", url):
        raise ConfigError(f"bad storage URL {url!r}: no host; allowed: {', '.join(ALLOWED)}")


def resolve_storage_url(url: Optional[str], sweep_dir: str | Path) -> str:
    """The URL every worker gets: null -> absolute journal file; plain paths made absolute."""
    check_storage_url(url)
    if url is None:
        return f"journal://{Path(sweep_dir).resolve() / JOURNAL_FILE}"
    if url.startswith("journal://"):
        return f"journal://{Path(url[len('journal://'):]).resolve()}"
    if "://" not in url:
        return f"journal://{Path(url).resolve()}"
    if url.startswith("postgresql://"):
        # SQLAlchemy 2.1 defaults postgresql:// to psycopg (v3); pin what is installed.
        for driver in ("psycopg2", "psycopg"):
            if importlib.util.find_spec(driver) is not None:
                return f"postgresql+{driver}://" + url[len("postgresql://"):]
        raise ConfigError(f"storage {redact(url)} needs a PostgreSQL driver (psycopg2 or psycopg); "
                          "allowed: pip install 'ablate[cluster]', or a journal/sqlite storage")
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(url: str, create: bool = True):
    """An Optuna storage for a resolved URL; a storage that cannot be opened is a ConfigError.

    ``create=False`` (readers such as ``ablate status``): a journal file that does not exist is
    an error, not a new empty study.
    """
    import optuna

    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal://"):])
        if not create and not path.is_file():
            raise ConfigError(f"study journal {path} not found; allowed: the storage the study was launched with (--storage URL)")
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    try:
        # pool_pre_ping: long trials outlive idle DB connections (server-side timeouts).
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as exc:  # noqa: BLE001 - driver missing, auth, refused: all one-line errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot open storage {redact(url)!r}: {type(exc).__name__}: {first}") from None


def optuna_cli_command(study_name: str, url: str) -> str:
    """The ``optuna trials`` command that reads this study (a resolved URL; the password of an
    RDB URL stays out: ``***``, to be filled in)."""
    if url.startswith("journal://"):
        storage = f"--storage {shlex.quote(url[len('journal://'):])} --storage-class JournalFileBackend"
    else:
        storage = f"--storage {shlex.quote(redact(url))}"
    return f"optuna trials --study-name {shlex.quote(study_name)} {storage}"
