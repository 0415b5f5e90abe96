"""Diamond's canonical ISPyB schema (the ispyb-database SQL) loaded into a local MariaDB, as its README says.

:func:`canonical_schema_dir` finds the SQL: ``TILTSTREAM_ISPYB_SCHEMA_DIR``, else ``shared/ispyb-database``
in the nearest ancestor of the repository (CI checks out the repository with ``shared/`` beside it).

:class:`CanonicalIspyb` builds a template database once (``tables.sql``, ``lookups.sql``, ``data.sql``,
``routines.sql``, then every ``updates/*.sql`` that ``SchemaStatus`` does not record as ``DONE``, in name
order, as ``build.sh`` does) and makes copies of it (a dump of the template, routines included, loaded
into a new database, then the grants). Accounts: the processing role of ``grants/ispyb_processing.sql``
for the sink, and ``grants/ispyb_ro_nopii.sql`` (read-only, no personal data) for readers, plus
:data:`READER_EXTRA_GRANTS`.

An update whose change the snapshot's ``tables.sql`` already holds fails with "Duplicate column"
(MariaDB error 1060): it is counted as applied and named in :attr:`CanonicalIspyb.already_applied`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tiltstream.localdb.common import LocalDatabaseError, find_binary
from tiltstream.localdb.mariadb import LocalMariaDB
from tiltstream.log import get_logger

__all__ = ["READER_EXTRA_GRANTS", "SCHEMA_DIR_ENV", "CanonicalIspyb", "IspybAccount", "canonical_schema_dir"]

_log = get_logger(__name__)

#: Environment variable naming the ispyb-database checkout (overrides the search).
SCHEMA_DIR_ENV = "TILTSTREAM_ISPYB_SCHEMA_DIR"

_BASE_FILES = ("tables.sql", "lookups.sql", "data.sql", "routines.sql")

#: What ``grants/ispyb_ro_nopii.sql`` of this snapshot lacks for the web view: the one table it does not
#: cover yet (ProcessedTomogram is newer than the grant file). A facility adds the same line.
READER_EXTRA_GRANTS = ("GRANT SELECT ON ProcessedTomogram TO ispyb_ro_nopii;",)
_ALREADY_THERE = ("ERROR 1060 ",)  # Duplicate column name: the snapshot's tables.sql holds the change


def canonical_schema_dir(repository: Path | None = None) -> Path:
    """The ispyb-database checkout (holding ``schemas/ispyb`` and ``grants``).

    Raises
    ------
    LocalDatabaseError
        When it is not found (naming where it was looked for).
    """
    override = os.environ.get(SCHEMA_DIR_ENV)
    if override:
        candidates = [Path(override)]
    else:
        root = (repository or Path(__file__).resolve().parents[2]).resolve()
        candidates = [folder / "shared" / "ispyb-database" for folder in (root, *root.parents)]
    for candidate in candidates:
        if (candidate / "schemas" / "ispyb" / "tables.sql").is_file():
            return candidate
    raise LocalDatabaseError(
        f"the canonical ISPyB schema is not at {', '.join(map(str, candidates[:3]))}: check out "
        f"ispyb-database as shared/ispyb-database beside the repository, or set {SCHEMA_DIR_ENV}"
    )


@dataclass(frozen=True)
class IspybAccount:
    """A database account holding one of the schema's roles."""

    user: str
    password: str
    role: str


class CanonicalIspyb:
    """Canonical-schema databases on a running :class:`LocalMariaDB`.

    Parameters
    ----------
    server
        A started server.
    source
        The ispyb-database checkout (default: :func:`canonical_schema_dir`).
    template
        Name of the template database.
    """

    def __init__(
        self, server: LocalMariaDB, source: Path | None = None, template: str = "ispyb_template"
    ) -> None:
        self.server = server
        self.source = source or canonical_schema_dir()
        self.template = template
        self.dump = server.state_dir / f"{template}.sql"
        self.already_applied: list[str] = []
        self.applied_updates: list[str] = []
        self.sink = IspybAccount("ispyb_sink", secrets.token_hex(12), "ispyb_processing")
        self.reader = IspybAccount("ispyb_reader", secrets.token_hex(12), "ispyb_ro_nopii")

    @property
    def schema_files(self) -> Path:
        """``schemas/ispyb`` of the checkout."""
        return self.source / "schemas" / "ispyb"

    def build_template(self) -> None:
        """Load the template database as the README says and dump it (once per server)."""
        server = self.server
        server.execute(f"DROP DATABASE IF EXISTS `{self.template}`; CREATE DATABASE `{self.template}`;")
        if server.execute("SELECT @@log_bin").strip() == "1":
            server.execute("SET GLOBAL log_bin_trust_function_creators=ON;")
        for name in _BASE_FILES:
            server.execute_file(self.schema_files / name, self.template)
        self._apply_missed_updates()
        dump = [find_binary("mariadb-dump", "/usr/bin"), "--no-defaults", f"--socket={server.socket_path}"]
        dump += ["-uroot", "--routines", "--triggers", "--skip-comments", self.template]
        with self.dump.open("wb") as out:
            done = subprocess.run(dump, stdout=out, stderr=subprocess.PIPE, timeout=300, check=False)
        if done.returncode != 0:
            raise LocalDatabaseError(f"mariadb-dump failed: {done.stderr.decode(errors='replace')}")
        for account in (self.sink, self.reader):
            self._grant_file(account.role, self.template)
            server.execute(
                f"CREATE USER IF NOT EXISTS '{account.user}'@'%' IDENTIFIED BY '{account.password}';"
                f"ALTER USER '{account.user}'@'%' IDENTIFIED BY '{account.password}';"
                f"GRANT {account.role} TO '{account.user}'@'%';"
                f"SET DEFAULT ROLE {account.role} FOR '{account.user}'@'%';"
            )
        _log.info(
            "canonical ispyb template loaded",
            database=self.template,
            updates=self.applied_updates,
            already_applied=self.already_applied,
        )

    def missed_updates(self, database: str) -> list[str]:
        """``updates/*.sql`` that ``database``'s SchemaStatus does not record as DONE, in name order."""
        done = set(
            self.server.execute(
                "SELECT scriptName FROM SchemaStatus WHERE schemaStatus = 'DONE'", database
            ).split("\n")
        )
        return sorted(p.name for p in (self.schema_files / "updates").glob("*.sql") if p.name not in done)

    def _apply_missed_updates(self) -> None:
        for name in self.missed_updates(self.template):
            try:
                self.server.execute_file(self.schema_files / "updates" / name, self.template)
            except LocalDatabaseError as error:
                if not any(code in str(error) for code in _ALREADY_THERE):
                    raise
                self.already_applied.append(name)
                continue
            self.applied_updates.append(name)

    def _grant_file(self, role: str, database: str) -> None:
        self.server.execute_file(self.source / "grants" / f"{role}.sql", database)
        if role == self.reader.role:
            self.server.execute(" ".join(READER_EXTRA_GRANTS), database)

    def create(self, database: str) -> None:
        """A new database ``database``: a copy of the template with the roles' grants on it.

        The server's application user gets every privilege on it (as the facility's administrator would).
        """
        self.server.execute(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`;")
        self.server.execute_file(self.dump, database)
        for account in (self.sink, self.reader):
            self._grant_file(account.role, database)
        self.server.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{self.server.user}'@'%';")

    def url(self, database: str, account: IspybAccount | None = None) -> str:
        """SQLAlchemy URL of ``database`` for ``account`` (the server's application user when omitted)."""
        if account is None:
            return self.server.url_for(database)
        return sa.URL.create(
            "mysql+pymysql",
            username=account.user,
            password=account.password,
            host=self.server.host,
            port=self.server.port,
            database=database,
            query={"charset": "utf8mb4"},
        ).render_as_string(hide_password=False)
