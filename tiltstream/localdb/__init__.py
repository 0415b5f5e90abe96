"""Real database servers of our own (Debian's MariaDB and PostgreSQL) for the tests and benchmarks.

Development only: this package is in the repository (and an editable install) but not in the wheel
(``pyproject.toml`` excludes it; no shipped module imports it, which ``tests/test_layout.py`` checks).
``tiltstream demo`` needs none of it: its ISPyB is SQLite.

Each runs in a state directory on a free loopback port, is created with one application user and a
database, exposes a SQLAlchemy URL, stops cleanly by pid and starts again on the same data.
"""

from tiltstream.localdb.common import LocalDatabaseError
from tiltstream.localdb.mariadb import LocalMariaDB
from tiltstream.localdb.postgres import LocalPostgres
from tiltstream.localdb.server import LocalDatabaseServer

__all__ = ["LocalDatabaseError", "LocalDatabaseServer", "LocalMariaDB", "LocalPostgres"]
