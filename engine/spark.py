"""The warehouse on Spark: the views of sql/ on a SparkSession, and a connection the analyses use.

The view files are written in DuckDB's dialect; :func:`translate` turns each statement into Spark
SQL with sqlglot, so there is one copy of every view. The stored tables are read

- natively where the session has Delta Lake's Spark connector: ``format("delta")`` at the Delta
  version of each table that the warehouse version names;
- otherwise from each table's live file list (the same list the DuckDB views name), read as
  Parquet with the columns engine/schema.py declares, so a table with no file still has them.

:class:`SparkConnection` offers the part of DuckDB's connection the analyses call (``sql`` and
``execute`` with bound parameters, ``register``/``unregister`` of small tables, temporary views),
so ``evalhouse.stats.describe`` and ``evalhouse.compare.compare`` run unchanged: the per-item and
per-group aggregation runs on Spark, the statistics on its small result in NumPy.

Two things of DuckDB's dialect have no Spark spelling sqlglot could choose for us: ``hash(...)``
becomes ``xxhash64`` (64 bits, as DuckDB's; Spark's ``hash`` has 32, too few to name items by)
with each argument's NULL-ness hashed beside it (Spark's hashes skip NULLs, so ``(NULL, 'a')``
and ``('a', NULL)`` would collide), and view definitions become temporary views (a permanent
Spark view cannot read the temporary ones the tables are registered as). ``list(x)`` collects each
value in a struct, so that NULLs are kept as DuckDB keeps them (Spark's ``collect_list`` drops them);
a form whose Spark translation would silently mean something else (``list(x ORDER BY y)``, whose
order sqlglot drops; ``QUALIFY`` over ``*``) is refused with a ValueError.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhouse.errors import EvalhouseError
from evalhouse.schema import TABLES
from evalhouse.settings import SparkSettings

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from evalhouse.warehouse import Warehouse

INSTALL_HINT = "pip install 'evalhouse[spark]' (pyspark and sqlglot), with a JDK 17 or newer for local Spark"
# Spark 4 runs on Java 17 and newer.
MIN_JAVA = 17
# The temporary view each stored table is registered as; the view files' {{parquet:TABLE}} names it.
STORED = "_eh_stored_{}"
_MARKER = re.compile(r"\{\{parquet:(\w+)\}\}")
# Hadoop reads these as a glob in a path given to spark.read; a backslash makes each literal.
_GLOB = re.compile(r"([\\*?\[\]{}])")


class SparkUnavailable(EvalhouseError):
    """``--engine spark`` cannot run here: pyspark, sqlglot or Java is missing, or Spark did not start."""

    def __init__(self, message: str, hint: str | None = INSTALL_HINT) -> None:
        super().__init__(message)
        self.hint = hint


# ---------------------------------------------------------------------------------------------
# Translation
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """One statement of DuckDB's dialect as Spark SQL (parameters ``$name`` become ``:name``).

    >>> translate("SELECT hash(a, b) AS h FROM t WHERE x = $w0 ORDER BY h")
    'SELECT XXHASH64(a, a IS NULL, b, b IS NULL) AS h FROM t WHERE x = :w0 ORDER BY h NULLS LAST'
    """
    sqlglot, exp = _sqlglot()
    trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    if len(trees) != 1:
        raise ValueError(f"expected one SQL statement, got {len(trees)}")

    def spark_forms(node: Any) -> Any:
        if isinstance(node, exp.Anonymous) and str(node.name).lower() == "hash":
            args = [part for a in node.expressions for part in (a.copy(), exp.Is(this=a.copy(), expression=exp.Null()))]
            return exp.Anonymous(this="XXHASH64", expressions=args)
        if isinstance(node, exp.ArrayAgg):
            return _spark_list(node)
        if isinstance(node, exp.Select) and node.args.get("qualify") and any(_star(e) for e in node.expressions):
            # sqlglot writes QUALIFY as a filter on a subquery whose `*` would also return its window column.
            raise ValueError("QUALIFY with `*` has no Spark form that keeps the columns: name them")
        if isinstance(node, exp.Create) and str(node.args.get("kind", "")).upper() == "VIEW":
            props = node.args.get("properties")
            if props is None or not props.find(exp.TemporaryProperty):
                extra = [*(props.expressions if props else []), exp.TemporaryProperty()]
                node.set("properties", exp.Properties(expressions=extra))
        return node

    def _star(projection: Any) -> bool:
        return isinstance(projection, exp.Star) or (isinstance(projection.unalias(), exp.Column) and projection.is_star)

    def _spark_list(node: Any) -> Any:
        inner = node.this
        if isinstance(inner, exp.Order):  # Spark's collect_list has no order; sqlglot would drop it silently
            raise ValueError(f"{node.sql(dialect='duckdb')}: Spark keeps no order of a list; sort it with list_sort")
        distinct = isinstance(inner, exp.Distinct)
        value = (inner.expressions[0] if distinct else inner).transform(spark_forms)
        collect = "COLLECT_SET" if distinct else "COLLECT_LIST"
        # Each value in a struct, which is never NULL, so that NULLs are collected as DuckDB's list() does.
        wrapped = sqlglot.parse_one(f"TRANSFORM({collect}(STRUCT(_eh_value AS v)), e -> e.v)", read="spark")
        for column in wrapped.find_all(exp.Column):
            if column.name == "_eh_value":
                column.replace(value)
                break
        return wrapped

    tree = trees[0].transform(spark_forms)
    return str(tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE))


def _sqlglot() -> Any:
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        raise SparkUnavailable("--engine spark needs sqlglot, which is not installed") from None
    return sqlglot, exp


def view_statements() -> list[tuple[str, str]]:
    """(view name, Spark SQL) of every file in sql/, in order, reading the stored tables' temporary views."""
    from evalhouse.warehouse import SQL_DIR

    def stored(m: re.Match[str]) -> str:
        return STORED.format(m.group(1))

    return [
        (path.stem.split("_", 1)[1], translate(_MARKER.sub(stored, path.read_text("utf-8"))))
        for path in sorted(SQL_DIR.glob("*.sql"))
    ]


# ---------------------------------------------------------------------------------------------
# The session and the stored tables
# ---------------------------------------------------------------------------------------------


def java_version(java: str) -> int | None:
    """The major version of the Java at ``java`` (``1.8`` is 8), or None if it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _check_java() -> None:
    """Raise :class:`SparkUnavailable` unless the Java pyspark would start (JAVA_HOME's, else PATH's) is 17+."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    where = f"JAVA_HOME ({home})" if home else "PATH"
    if not java or not os.access(java, os.X_OK):
        raise SparkUnavailable(
            f"--engine spark runs Spark locally, which needs Java: no java found on {where}",
            hint=f"install a JDK {MIN_JAVA} or newer (e.g. apt-get install openjdk-17-jre-headless), "
            "or set SPARK_REMOTE to a Spark Connect server",
        )
    version = java_version(java)
    if version is None or version < MIN_JAVA:
        raise SparkUnavailable(
            f"--engine spark needs Java {MIN_JAVA} or newer; {java} is "
            + (f"Java {version}" if version else "not a Java that runs"),
            hint=f"install a JDK {MIN_JAVA} or newer and point JAVA_HOME at it",
        )


def session(settings: SparkSettings | None = None) -> tuple[SparkSession, bool]:
    """A SparkSession as ``settings`` say (Spark Connect at ``remote``, else a driver at ``master``),
    and whether it was started here: a session already running in this process is used as it is."""
    settings = settings or SparkSettings()
    _sqlglot()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("--engine spark needs pyspark, which is not installed") from None
    running = SparkSession.getActiveSession()
    if running is not None:
        return running, False
    builder: Any = SparkSession.builder
    if settings.remote:
        builder = builder.remote(settings.remote)
    else:
        _check_java()
        builder = builder.master(settings.master).appName("evalhouse")
        # Spark's progress bar goes to the terminal, between the lines of a table.
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        builder = builder.config("spark.sql.session.timeZone", "UTC")
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    try:
        with _quiet_pyspark():
            spark = builder.getOrCreate()
    except Exception as exc:  # pyspark's errors name the JVM's or the server's reason in their first line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        target = settings.remote or settings.master
        client = settings.remote and ("PACKAGE_NOT_INSTALLED" in first or isinstance(exc, ImportError))
        hint = "Spark Connect's client needs: pip install 'pyspark[connect]'" if client else None
        raise SparkUnavailable(f"Spark did not start ({target}): {first}", hint=hint) from None
    if not settings.remote:  # Spark's warnings about query plans would land between the output's lines
        spark.sparkContext.setLogLevel("ERROR")
    return spark, True


@contextmanager
def _quiet_pyspark() -> Iterator[None]:
    """pyspark warns on every Arrow conversion that it has not been checked with pandas 3; it uses
    no pandas here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


# Spark's words for a file of the warehouse that is missing or cannot be read as Parquet.
_UNREADABLE = ("FAILED_READ_FILE", "PATH_NOT_FOUND", "FileNotFoundException", "CANNOT_READ_FILE_FOOTER",
               "not a Parquet file")  # fmt: skip


@contextmanager
def _reading() -> Iterator[None]:
    """Spark's failure to read a warehouse file as the error every engine gives for one."""
    try:
        yield
    except Exception as exc:
        text = str(exc)
        if not any(word in text for word in _UNREADABLE):
            raise
        from evalhouse.errors import WarehouseError

        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise WarehouseError(f"cannot read the warehouse's files: {first}", hint="run `evalhouse doctor`") from None


def delta_uri(wh: Warehouse, table: str) -> str:
    """Where Spark reads a stored table as Delta: its folder, or on S3 its ``s3a://`` URI (the scheme
    of Hadoop's S3 connector, hadoop-aws; Hadoop has no file system for ``s3://``).

    >>> from pathlib import Path
    >>> from evalhouse.warehouse import Warehouse
    >>> delta_uri(Warehouse(Path("/data/wh")), "scores")
    '/data/wh/tables/scores'
    """
    from evalhouse.tables import uri

    found = uri(wh.root, table)
    return "s3a://" + found.removeprefix("s3://") if wh.remote is not None else found


def has_delta(spark: SparkSession, wh: Warehouse) -> bool:
    """Whether ``spark`` reads Delta tables (Delta Lake's Spark connector is on its classpath).

    Asked of the session rather than assumed: a cluster may have the connector, a laptop usually not.
    """
    stored = [t for t in TABLES if t in wh.version().tables]
    probe = delta_uri(wh, stored[0] if stored else "runs")
    try:
        # .schema forces the lookup of the format even where reading is lazy (Spark Connect).
        _ = spark.read.format("delta").load(probe).schema
    except Exception as exc:
        if "DATA_SOURCE_NOT_FOUND" in str(exc) or "Failed to find the data source: delta" in str(exc):
            return False
        if not stored:  # the format was found; there is no table yet to read
            return True
        if wh.remote is not None:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SparkUnavailable(
                f"Spark cannot read {probe}: {first}",
                hint="give Spark Hadoop's S3 connector (org.apache.hadoop:hadoop-aws) and its s3a settings "
                "(spark.hadoop.fs.s3a.endpoint, credentials) in [spark] conf of evalhouse.toml",
            ) from None
        raise
    return True


def is_local_master(master: str | None) -> bool:
    """Whether a Spark master runs the executors in this process (``local``, ``local[4]``, ``local[*, 2]``).

    >>> is_local_master("local[*]"), is_local_master("local"), is_local_master("spark://head:7077")
    (True, True, False)
    """
    return master is not None and (master == "local" or master.startswith("local["))


def _master(spark: SparkSession) -> str | None:
    try:
        return str(spark.conf.get("spark.master"))
    except Exception:  # a Spark Connect server need not say
        return None


def _check_reachable(spark: SparkSession, wh: Warehouse) -> None:
    """Refuse an S3 warehouse read from the local working folder's copies by a master that cannot see them."""
    master = _master(spark)
    if wh.remote is None or is_local_master(master):
        return
    raise SparkUnavailable(
        f"{wh.name}: Spark ({master or 'Spark Connect'}) cannot read this S3 warehouse: the session has no Delta "
        "Lake connector, and without it Spark reads this machine's copies of the table files, which only a local "
        "master (local, local[N]) sees",
        hint="add Delta Lake's Spark connector (io.delta:delta-spark) and Hadoop's S3 connector with its s3a "
        "settings (spark.hadoop.fs.s3a.*) to [spark] of evalhouse.toml, or use a local master",
    )


def _spark_path(path: str) -> str:
    """A file's path for spark.read: an explicit ``file:`` URI for a local file (a cluster's default
    file system may be HDFS), with Hadoop's glob characters made literal."""
    if "://" not in path:
        path = "file://" + path
    return _GLOB.sub(r"\\\1", path)


def table_frame(spark: SparkSession, wh: Warehouse, table: str, *, delta: bool) -> DataFrame:
    """A stored table as the warehouse version ``wh`` reads has it."""
    from pyspark.sql.pandas.types import from_arrow_schema

    version = wh.version()
    declared = from_arrow_schema(TABLES[table].arrow_schema(), prefer_timestamp_ntz=True)
    if table not in version.tables:
        return spark.createDataFrame([], declared)
    if delta:
        return spark.read.format("delta").option("versionAsOf", version.tables[table]).load(delta_uri(wh, table))
    files = wh.table_files(table, version)
    if not files:
        return spark.createDataFrame([], declared)
    return spark.read.schema(declared).parquet(*[_spark_path(f) for f in files])


def register_views(spark: SparkSession, wh: Warehouse) -> None:
    """Register the warehouse's views (``scores``, ``model_summary``, ``flips``, ...) on ``spark``.

    Every view is a temporary view of the session, reading one warehouse version (the one ``wh``
    reads, pinned: a commit landing meanwhile does not change what the session sees).

    Args:
        spark: the session (any master, or Spark Connect).
        wh: an open warehouse (``evalhouse.warehouse.open_warehouse``).

    Raises:
        SparkUnavailable: the warehouse is on S3 and the session has no Delta connector (the
            local working folder's copies are read then) but runs on a cluster, which cannot see them.
    """
    wh = wh.pinned()
    delta = has_delta(spark, wh)
    if not delta:
        _check_reachable(spark, wh)
    with _quiet_pyspark(), _reading():
        for table in TABLES:
            table_frame(spark, wh, table, delta=delta).createOrReplaceTempView(STORED.format(table))
        for _name, statement in view_statements():
            spark.sql(statement)


# ---------------------------------------------------------------------------------------------
# The connection
# ---------------------------------------------------------------------------------------------


@dataclass
class SparkResult:
    """A query's result, as DuckDB's relation gives it: ``pl()``, ``arrow()``, ``fetchall()``, ``description``."""

    frame: DataFrame

    def arrow(self) -> pa.Table:
        with _quiet_pyspark(), _reading():
            return self.frame.toArrow()

    def pl(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(pl.from_arrow(self.arrow()))

    def fetchall(self) -> list[tuple[Any, ...]]:
        table = self.arrow()
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    @property
    def description(self) -> list[tuple[Any, ...]]:
        return [(f.name, f.dataType.simpleString(), None, None, None, None, None) for f in self.frame.schema.fields]


class SparkConnection:
    """The warehouse's views on a SparkSession, queried with DuckDB's SQL (see the module docstring)."""

    def __init__(self, spark: SparkSession, *, owned: bool) -> None:
        self.spark = spark
        self._owned = owned  # a session this connection started, stopped by close()

    def sql(self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> SparkResult:
        """Run one statement of DuckDB's dialect with bound parameters (``$name`` with a dict, ``?``
        with a list); values are bound as Spark's parameters, never written into the SQL."""
        with _quiet_pyspark():
            return SparkResult(self.spark.sql(translate(query), args=_args(params)))

    execute = sql

    def register(self, name: str, data: Any) -> SparkConnection:
        """Register a small Arrow table or Polars frame as the temporary view ``name``."""
        from pyspark.sql.pandas.types import from_arrow_schema

        table = _plain_arrow(data)
        with _quiet_pyspark():
            # With its schema given: Spark Connect cannot infer one from a table with no rows.
            schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
            self.spark.createDataFrame(table, schema=schema).createOrReplaceTempView(name)
        return self

    def unregister(self, name: str) -> SparkConnection:
        self.spark.catalog.dropTempView(name)
        return self

    def close(self) -> None:
        if self._owned:
            self.spark.stop()


def _args(params: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, Any] | list[Any] | None:
    """Parameters as Spark binds them: a list becomes an array literal (DuckDB's list parameter)."""
    if not params:
        return None
    if isinstance(params, Mapping):
        return {k: _value(v) for k, v in params.items()}
    return [_value(v) for v in params]


def _value(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        from pyspark.sql import functions as F

        return F.array(*[F.lit(v) for v in value])
    return value


def _plain_arrow(data: Any) -> pa.Table:
    """An Arrow table with the types Spark takes: Polars' large and view strings become plain strings."""
    import pyarrow as pa

    table = data if isinstance(data, pa.Table) else data.to_arrow()

    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pa.string()
        if pa.types.is_large_list(t) or pa.types.is_list_view(t):
            return pa.list_(plain(t.value_type))
        return t

    schema = pa.schema([f.with_type(plain(f.type)) for f in table.schema])
    return table.cast(schema) if schema != table.schema else table


def connect(
    wh: Warehouse, settings: SparkSettings | None = None, *, spark: SparkSession | None = None
) -> SparkConnection:
    """A connection with the warehouse's views on Spark.

    Args:
        wh: an open warehouse.
        settings: the session to start (``[spark]`` of evalhouse.toml); not used when ``spark`` is given.
        spark: a running session to use instead.

    The views are registered on a new session of the same context (temporary views of their own,
    beside any the caller has); ``close`` stops Spark only if this started it.
    """
    owned = False
    if spark is None:
        spark, owned = session(settings)
    try:
        own = spark.newSession()
    except Exception:  # Spark Connect has no sibling sessions: the views go on the session itself
        own = spark
    register_views(own, wh)
    return SparkConnection(own, owned=owned)
