"""Kafka's broker jars from Maven Central, resolved once with ``mvn`` and cached.

Maven Central carries the broker (``org.apache.kafka:kafka_<scala>``) and its tools, but no SLF4J
binding, so a broker started from those jars alone logs nothing. :func:`fetch_kafka` therefore resolves
in two steps: first Kafka alone, to learn which ``slf4j-api`` and Log4j versions it brings, then Kafka
together with the Log4j 2 binding that matches them (``log4j-slf4j-impl`` for SLF4J 1.x,
``log4j-slf4j2-impl`` for 2.x), all Log4j artefacts pinned to one version by Log4j's BOM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tiltstream.log import get_logger
from tiltstream.settings import LocalBrokerSettings

__all__ = ["KafkaFetchError", "fetch_kafka", "kafka_libs_dir", "require_executable"]

_log = get_logger(__name__)

MARKER = ".tiltstream-complete"
"""File written into a libs directory once it is complete; its presence makes a fetch a no-op."""

DEFAULT_LOG4J_VERSION = "2.24.3"
"""The Log4j version used when Kafka itself brings none."""

_OUTPUT_TAIL_CHARS = 4000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class KafkaFetchError(RuntimeError):
    """Kafka's jars could not be fetched: ``mvn`` or ``java`` is missing, or Maven failed."""


@dataclass(frozen=True)
class _Logging:
    """The logging artefacts a resolved Kafka brings: SLF4J's API version and Log4j's, if any."""

    slf4j_version: str
    log4j_version: str | None


def kafka_libs_dir(settings: LocalBrokerSettings) -> Path:
    """Return where the jars of ``settings.kafka_version`` are (or will be) cached.

    Parameters
    ----------
    settings
        Supplies ``cache_dir``, ``scala_version`` and ``kafka_version``.

    Returns
    -------
    Path
        ``<cache_dir>/kafka/<scala>-<version>/libs``.
    """
    return settings.cache_dir / "kafka" / f"{settings.scala_version}-{settings.kafka_version}" / "libs"


def require_executable(name: str, purpose: str) -> str:
    """Return the full path of executable ``name``, or raise :class:`KafkaFetchError`.

    Parameters
    ----------
    name
        A command name looked up on ``PATH``, or a path.
    purpose
        Why it is needed; goes into the error message.
    """
    found = shutil.which(name)
    if found is None:
        raise KafkaFetchError(f"{name!r} was not found on PATH; it is needed {purpose}.")
    return found


def fetch_kafka(settings: LocalBrokerSettings, *, force: bool = False) -> Path:
    """Make sure Kafka's jars are cached and return the directory that holds them.

    The first call runs Maven (about ten seconds with a warm ``~/.m2``, longer on a cold one); later
    calls only see the completion marker and return at once. The directory is filled under a temporary
    name and renamed into place, so concurrent callers never see half a directory.

    Parameters
    ----------
    settings
        Kafka and Scala versions, the cache directory, and the ``mvn`` and ``java`` commands.
    force
        Fetch again even when the cache is complete.

    Returns
    -------
    Path
        A directory of jars, for a classpath of ``<dir>/*``.

    Raises
    ------
    KafkaFetchError
        When ``mvn`` or ``java`` is missing, or Maven fails (its output's tail is in the message).
    """
    libs = kafka_libs_dir(settings)
    if not force and (libs / MARKER).is_file():
        return libs
    mvn = require_executable(settings.mvn, "to fetch Kafka's jars from Maven Central")
    require_executable(settings.java, "to run Maven and the Kafka broker")
    libs.parent.mkdir(parents=True, exist_ok=True)
    log = _log.bind(kafka_version=settings.kafka_version, scala_version=settings.scala_version)
    log.info("fetching kafka jars", destination=str(libs))
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=libs.parent) as tmp:
        work = Path(tmp)
        probe = work / "probe"
        _copy_dependencies(mvn, work, _pom(settings, binding=None), probe)
        found = _logging_versions(probe)
        jars = work / "libs"
        _copy_dependencies(mvn, work, _pom(settings, binding=found), jars)
        (jars / MARKER).write_text(
            json.dumps(
                {
                    "kafka_version": settings.kafka_version,
                    "scala_version": settings.scala_version,
                    "slf4j_version": found.slf4j_version,
                    "log4j_version": found.log4j_version or DEFAULT_LOG4J_VERSION,
                }
            )
            + "\n"
        )
        _move_into_place(jars, libs)
    log.info("kafka jars ready", jars=sum(1 for _ in libs.glob("*.jar")))
    return libs


def _move_into_place(jars: Path, libs: Path) -> None:
    """Rename ``jars`` onto ``libs``; a complete ``libs`` left by a concurrent fetch wins."""
    if libs.exists() and not (libs / MARKER).is_file():
        shutil.rmtree(libs)  # an incomplete or forced-stale directory
    elif libs.exists():
        old = libs.with_name(f".old-{os.getpid()}")
        os.rename(libs, old)  # only reached with force=True
        shutil.rmtree(old)
    try:
        os.rename(jars, libs)
    except OSError:
        if not (libs / MARKER).is_file():
            raise


def _copy_dependencies(mvn: str, work: Path, pom: str, output: Path) -> None:
    """Write ``pom`` into ``work`` and copy its runtime dependencies into ``output``."""
    (work / "pom.xml").write_text(pom)
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    except OSError as error:
        raise KafkaFetchError(f"could not run {mvn}: {error}") from error
    if result.returncode != 0:
        tail = _ANSI.sub("", result.stdout + result.stderr)[-_OUTPUT_TAIL_CHARS:]
        raise KafkaFetchError(f"mvn exited with status {result.returncode}:\n{tail}")
    if not any(output.glob("*.jar")):
        raise KafkaFetchError(f"mvn succeeded but copied no jars into {output}")


def _logging_versions(jars: Path) -> _Logging:
    """Read the ``slf4j-api`` and ``log4j-api`` versions from the jar names in ``jars``."""

    def version_of(artifact: str) -> str | None:
        pattern = re.compile(rf"^{re.escape(artifact)}-(\d[\w.\-]*)\.jar$")
        for jar in jars.iterdir():
            match = pattern.match(jar.name)
            if match:
                return match.group(1)
        return None

    slf4j = version_of("slf4j-api")
    if slf4j is None:
        raise KafkaFetchError(f"Kafka's dependencies in {jars} include no slf4j-api jar")
    return _Logging(slf4j_version=slf4j, log4j_version=version_of("log4j-api") or version_of("log4j-core"))


def _pom(settings: LocalBrokerSettings, *, binding: _Logging | None) -> str:
    """Render the throw-away POM: Kafka and its tools, plus the matching Log4j binding if given."""
    kafka = settings.kafka_version
    dependencies = [
        _dependency("org.apache.kafka", f"kafka_{settings.scala_version}", kafka),
        _dependency("org.apache.kafka", "kafka-tools", kafka),
    ]
    management = ""
    if binding is not None:
        log4j = binding.log4j_version or DEFAULT_LOG4J_VERSION
        bridge = "log4j-slf4j-impl" if binding.slf4j_version.startswith("1.") else "log4j-slf4j2-impl"
        # The bridge must not pull in a different slf4j-api than the one Kafka was built against.
        exclusion = (
            "<exclusions><exclusion><groupId>org.slf4j</groupId>"
            "<artifactId>slf4j-api</artifactId></exclusion></exclusions>"
        )
        dependencies += [
            _dependency("org.apache.logging.log4j", bridge, None, exclusion),
            _dependency("org.apache.logging.log4j", "log4j-core", None),
        ]
        management = (
            "<dependencyManagement><dependencies><dependency>"
            "<groupId>org.apache.logging.log4j</groupId><artifactId>log4j-bom</artifactId>"
            f"<version>{log4j}</version><type>pom</type><scope>import</scope>"
            "</dependency></dependencies></dependencyManagement>"
        )
    body = "\n    ".join(dependencies)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.tiltstream.local</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  {management}
  <dependencies>
    {body}
  </dependencies>
</project>
"""


def _dependency(group: str, artifact: str, version: str | None, extra: str = "") -> str:
    """One ``<dependency>`` element; ``version`` may be left to ``dependencyManagement``."""
    pinned = f"<version>{version}</version>" if version else ""
    return (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"{pinned}<scope>runtime</scope>{extra}</dependency>"
    )
