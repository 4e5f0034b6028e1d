"""The Spark engine: every view, summary, compare, gate and report on Spark give DuckDB's results.

One local SparkSession (local[2]) serves the whole module: starting the JVM costs seconds. The CLI
runs in process and finds that session running, so it uses it rather than starting its own.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from evalhouse.cli import main
from evalhouse.settings import load_spark
from evalhouse.warehouse import SQL_DIR, connect, open_warehouse

VIEW_FILES = sorted(SQL_DIR.glob("*.sql"))


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError as exc:
        return f"pyspark or sqlglot is not installed ({exc.name}): pip install 'evalhouse[spark]'"
    from evalhouse.spark import MIN_JAVA, java_version

    java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    version = java_version(java) if java else None
    if version is None or version < MIN_JAVA:
        return f"no Java {MIN_JAVA}+ to run Spark locally (found {version or 'none'}): install a JDK 17"
    return None


needs_spark = pytest.mark.skipif(bool(_spark_missing()), reason=_spark_missing() or "")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    from evalhouse.spark import _quiet_pyspark

    with _quiet_pyspark():
        session = (
            SparkSession.builder.master("local[2]")
            .appName("evalhouse-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "2")
            .config("spark.driver.memory", "1g")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def synth_wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse of a small synthetic corpus with a stored comparison, under a path whose `?` and
    `*` Hadoop would take for a glob."""
    from evalhouse import synth
    from evalhouse.ingest import ingest

    root = tmp_path_factory.mktemp("spark")
    synth.generate(root / "corpus", 20, seed=3)
    wh = open_warehouse(root / "ware house ?*", create=True)
    ingest(wh, [root / "corpus"], workers=1)
    # The comparisons views read stored comparisons: store one.
    saved = cli("compare", "-w", wh.root, "--config", root / "corpus" / ".evalhouse.toml")
    assert saved.exit_code == 0, saved.output
    return wh.root


def cli(*args: object, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


# ---------------------------------------------------------------------------------------------
# Comparing results
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # Spark and DuckDB name UTC differently (UTC, Etc/UTC)
        return value.replace(tzinfo=None) if value.tzinfo is None else value.timestamp()
    return value


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # Floats rounded for ordering only, so that rows differing in the last bits sort alike; None first.
    return tuple((v is not None, round(v, 6) if isinstance(v, float) and math.isfinite(v) else str(v)) for v in row)


def assert_same_values(a: Any, b: Any, where: str) -> None:
    if isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (where, a, b)
    else:
        assert a == b, (where, a, b)


def assert_same_rows(left: pl.DataFrame, right: pl.DataFrame, *, ordered: bool = False) -> None:
    """Equal columns and rows (floats to 1e-9); in any order unless ``ordered``."""
    assert left.columns == right.columns
    rows_l = [tuple(_plain(v) for v in r) for r in left.rows()]
    rows_r = [tuple(_plain(v) for v in r) for r in right.rows()]
    if not ordered:
        rows_l.sort(key=_sort_key)
        rows_r.sort(key=_sort_key)
    assert len(rows_l) == len(rows_r)
    for i, (x, y) in enumerate(zip(rows_l, rows_r, strict=True)):
        for column, u, v in zip(left.columns, x, y, strict=True):
            assert_same_values(u, v, f"row {i}, {column}")


def json_rows(output: str) -> list[dict[str, Any]]:
    return json.loads(output)


def assert_same_json(spark_out: str, duckdb_out: str) -> None:
    a, b = json_rows(spark_out), json_rows(duckdb_out)
    assert len(a) == len(b) and a
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.keys() == y.keys()
        for key in x:
            u, v = x[key], y[key]
            # The same JSON type (a count printed as 3.0 on one engine is a different column type).
            assert type(u) is type(v), (i, key, u, v)
            if isinstance(u, (int, float)) and not isinstance(u, bool):
                assert_same_values(float(u), float(v), f"row {i}, {key}")
            else:
                assert u == v, (i, key, u, v)


# ---------------------------------------------------------------------------------------------
# Translation (sqlglot only)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VIEW_FILES, ids=[p.name for p in VIEW_FILES])
def test_every_view_file_translates_to_a_temporary_spark_view(path: Path) -> None:
    sqlglot = pytest.importorskip("sqlglot")
    from evalhouse.spark import STORED, view_statements

    name = path.stem.split("_", 1)[1]
    statement = dict(view_statements())[name]
    tree = sqlglot.parse_one(statement, read="spark")
    assert isinstance(tree, sqlglot.exp.Create) and tree.args["kind"] == "VIEW"
    assert tree.find(sqlglot.exp.TemporaryProperty), statement
    assert tree.this.name == name
    assert "{{" not in statement
    # Every stored table the file names is read from its registered view, nothing else.
    stored = {t.name for t in tree.find_all(sqlglot.exp.Table) if t.name.startswith("_eh_stored_")}
    named = {STORED.format(t) for t in re.findall(r"\{\{parquet:(\w+)\}\}", path.read_text())}
    assert stored == named


def test_hash_keeps_nulls_apart_and_parameters_stay_bound() -> None:
    pytest.importorskip("sqlglot")
    from evalhouse.spark import translate

    sql = translate("SELECT hash(a, b) AS h FROM t WHERE m = $model AND list_contains($names, n)")
    assert "XXHASH64(a, a IS NULL, b, b IS NULL)" in sql
    assert ":model" in sql and "ARRAY_CONTAINS(:names, n)" in sql


def test_lists_keep_their_nulls_and_an_ordered_list_is_refused() -> None:
    pytest.importorskip("sqlglot")
    from evalhouse.spark import translate

    # Spark's collect_list drops NULLs, DuckDB's list keeps them: each value is collected in a struct.
    assert translate("SELECT list_sort(list(x)) AS v FROM t") == (
        "SELECT ARRAY_SORT(TRANSFORM(COLLECT_LIST(STRUCT(x AS v)), e -> e.v)) AS v FROM t"
    )
    assert "COLLECT_SET(STRUCT(XXHASH64(x, x IS NULL) AS v))" in translate("SELECT list(DISTINCT hash(x)) FROM t")
    # sqlglot would write COLLECT_LIST(x) and drop the order without a word.
    with pytest.raises(ValueError, match="Spark keeps no order of a list"):
        translate("SELECT list(x ORDER BY y) AS v FROM t")
    # Nor a QUALIFY over `*`, whose Spark form would return one more column (the window's).
    assert translate("SELECT a, count(*) AS n FROM t GROUP BY a QUALIFY row_number() OVER (ORDER BY a) = 1") == (
        "SELECT a, n FROM (SELECT a, COUNT(*) AS n, ROW_NUMBER() OVER (ORDER BY a NULLS LAST) AS _w FROM t GROUP BY a)"
        " AS _t WHERE _w = 1"
    )
    for star in ("*", "t.*, 1 AS one"):
        with pytest.raises(ValueError, match="QUALIFY"):
            translate(f"SELECT {star} FROM t QUALIFY row_number() OVER (ORDER BY b) = 1")


def test_spark_settings_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "evalhouse.toml"
    config.write_text('[spark]\nmaster = "spark://head:7077"\nconf = { "spark.executor.memory" = "8g", "x" = true }\n')
    s = load_spark(config, environ={})
    assert (s.master, s.remote) == ("spark://head:7077", None)
    assert dict(s.conf) == {"spark.executor.memory": "8g", "x": "true"}
    s = load_spark(config, environ={"EVALHOUSE_SPARK_MASTER": "local[3]", "SPARK_REMOTE": "sc://h:15002"})
    assert (s.master, s.remote) == ("local[3]", "sc://h:15002")
    config.write_text('[spark]\nmastr = "x"\n')
    with pytest.raises(Exception, match=r"\[spark\] has unknown key\(s\) mastr"):
        load_spark(config, environ={})


# ---------------------------------------------------------------------------------------------
# Missing pieces: one error line naming what to install
# ---------------------------------------------------------------------------------------------


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalhouse.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)  # fmt: skip


def test_no_java_is_an_error_line_naming_the_jdk(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    open_warehouse(tmp_path / "wh", create=True)
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-jdk")}
    env.pop("SPARK_REMOTE", None)
    done = _run_cli(["summary", "--engine", "spark", "-w", str(tmp_path / "wh")], env, tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: --engine spark runs Spark locally, which needs Java: no java found on JAVA_HOME "
        f"({tmp_path / 'no-jdk'})",
        "Hint: install a JDK 17 or newer (e.g. apt-get install openjdk-17-jre-headless), or set SPARK_REMOTE to "
        "a Spark Connect server",
    ]


def test_no_pyspark_is_an_error_line_naming_the_extra(tmp_path: Path) -> None:
    pytest.importorskip("sqlglot")
    open_warehouse(tmp_path / "wh", create=True)
    fake = tmp_path / "site" / "pyspark"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named pyspark')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    done = _run_cli(["compare", "--engine", "spark", "-w", str(tmp_path / "wh")], env, tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: --engine spark needs pyspark, which is not installed",
        "Hint: pip install 'evalhouse[spark]' (pyspark and sqlglot), with a JDK 17 or newer for local Spark",
    ]


# ---------------------------------------------------------------------------------------------
# On Spark: the same rows as DuckDB
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def both(spark: Any, synth_wh: Path) -> Iterator[tuple[Any, Any]]:
    from evalhouse.spark import connect as spark_connect

    wh = open_warehouse(synth_wh)
    on_spark, on_duckdb = spark_connect(wh, spark=spark), connect(wh)
    yield on_spark, on_duckdb
    on_spark.close()
    on_duckdb.close()


@needs_spark
@pytest.mark.parametrize("path", VIEW_FILES, ids=[p.stem.split("_", 1)[1] for p in VIEW_FILES])
def test_every_view_gives_duckdbs_rows(both: tuple[Any, Any], path: Path) -> None:
    on_spark, on_duckdb = both
    name = path.stem.split("_", 1)[1]
    got, expected = on_spark.sql(f"SELECT * FROM {name}").pl(), on_duckdb.sql(f"SELECT * FROM {name}").pl()
    assert expected.height > 0, f"{name} is empty in the fixture: it would prove nothing"
    zoned = {c for c, t in expected.schema.items() if isinstance(t, pl.Datetime) and t.time_zone}
    assert {c: t for c, t in got.schema.items() if c not in zoned} == {
        c: t for c, t in expected.schema.items() if c not in zoned
    }
    assert_same_rows(got, expected)


@needs_spark
def test_lists_on_spark_are_duckdbs(both: tuple[Any, Any]) -> None:
    sql = """
        SELECT k, list_sort(list(x)) AS v, list_sort(list(DISTINCT x)) AS d
        FROM (SELECT k, CAST(x AS DOUBLE) AS x
              FROM (VALUES (1, 2), (1, NULL), (1, 1), (1, NULL), (1, 2), (2, NULL)) AS t(k, x))
        GROUP BY k ORDER BY k
    """
    got, expected = (con.sql(sql).pl() for con in both)
    assert expected["v"].to_list() == [[1.0, 2.0, 2.0, None, None], [None]]
    assert expected["d"].to_list() == [[1.0, 2.0, None], [None]]
    assert got.schema == expected.schema
    assert got.rows() == expected.rows()


@needs_spark
def test_bound_values_and_lists_filter_as_on_duckdb(both: tuple[Any, Any]) -> None:
    from evalhouse.stats import describe

    on_spark, on_duckdb = both
    models = [m for (m,) in on_duckdb.sql("SELECT model FROM models ORDER BY model").fetchall()]
    (metric,) = on_duckdb.sql("SELECT metric FROM scores GROUP BY metric ORDER BY count(*) DESC LIMIT 1").fetchall()[0]
    for where in ({"model": models[:2], "metric": metric}, {"model": (models[-1], "no such model")},
                  {"model": set(models[1:])}, {"model": []}, {"metric": "no such metric"}):  # fmt: skip
        got = describe(on_spark, ["model", "category"], where=where, cluster="task")
        expected = describe(on_duckdb, ["model", "category"], where=where, cluster="task")
        assert got.schema == expected.schema
        assert_same_rows(got, expected, ordered=True)
        assert expected.height > 0 or where in ({"model": []}, {"metric": "no such metric"})
        assert set(expected["model"]) <= set(where.get("model", models))


@needs_spark
def test_the_stored_tables_are_read_from_their_live_files(spark: Any, synth_wh: Path) -> None:
    from evalhouse.spark import has_delta

    # This machine has no Delta connector: the file list is the path taken, and it was detected.
    assert has_delta(spark, open_warehouse(synth_wh)) is False


@needs_spark
def test_an_empty_table_has_its_declared_columns(spark: Any, tmp_path: Path) -> None:
    from evalhouse.schema import TABLES
    from evalhouse.spark import connect as spark_connect

    con = spark_connect(open_warehouse(tmp_path / "empty", create=True), spark=spark)
    try:
        for table in ("scores", "runs", "comparisons"):
            got = con.sql(f"SELECT * FROM {table if table != 'comparisons' else 'comparisons'}").pl()
            assert got.height == 0 and got.columns == TABLES[table].names
        assert con.sql("SELECT * FROM model_summary").pl().height == 0
    finally:
        con.close()


@needs_spark
@pytest.mark.parametrize("options", [["--by", "model"], ["--by", "model,category", "--per-answer"],
                                     ["--by", "benchmark", "--cluster", "task"], ["--as-of", "1"]])  # fmt: skip
def test_summary_on_spark_equals_duckdb(spark: Any, synth_wh: Path, options: list[str]) -> None:
    args = ["summary", "-w", synth_wh, "--format", "json", *options]
    on_spark, on_duckdb = cli(*args, "--engine", "spark"), cli(*args)
    assert on_spark.exit_code == 0, on_spark.output
    assert_same_json(on_spark.stdout, on_duckdb.stdout)


@needs_spark
@pytest.mark.parametrize(
    ("options", "tests"),
    [
        (["--by", "category,benchmark"], {"mcnemar", "paired"}),
        (["--cluster", "task"], {"sign-flip"}),
        (["--test", "permutation", "--by", "none"], {"permutation"}),
    ],
    ids=["auto", "cluster-task", "permutation"],
)
def test_compare_on_spark_equals_duckdb(spark: Any, synth_wh: Path, options: list[str], tests: set[str]) -> None:
    config = synth_wh.parent / "corpus" / ".evalhouse.toml"
    args = ["compare", "-w", synth_wh, "--config", config, "--no-save", *options]
    args += ["--format", "json"]
    on_spark, on_duckdb = cli(*args, "--engine", "spark"), cli(*args)
    assert on_spark.exit_code == 0, on_spark.output
    assert_same_json(on_spark.stdout, on_duckdb.stdout)
    # The per-unit values of the resampling tests are fetched from the engine too.
    assert {r["test"] for r in json_rows(on_duckdb.stdout)} >= tests


@needs_spark
def test_gate_on_spark_gives_duckdbs_verdicts(spark: Any, synth_wh: Path) -> None:
    config = synth_wh.parent / "corpus" / ".evalhouse.toml"
    args = ["gate", "-w", synth_wh, "--config", config, "--margin", "2%", "--no-save", "--format", "json"]
    on_spark, on_duckdb = cli(*args, "--engine", "spark"), cli(*args)
    assert on_spark.exit_code == on_duckdb.exit_code == 1  # the synthetic corpus plants regressions
    assert_same_json(on_spark.stdout, on_duckdb.stdout)


@needs_spark
def test_report_on_spark_gives_duckdbs_numbers(spark: Any, synth_wh: Path, tmp_path: Path) -> None:
    config = synth_wh.parent / "corpus" / ".evalhouse.toml"
    for engine in ("spark", "duckdb"):
        done = cli("report", "-w", synth_wh, "--config", config, "--output", "html", "--out", tmp_path / engine,
                   "--engine", engine)  # fmt: skip
        assert done.exit_code == 0, done.output
    for table in ("comparison", "coverage", "like_for_like_means"):
        got = pl.read_csv(tmp_path / "spark" / "data" / f"{table}.csv", infer_schema_length=None)
        expected = pl.read_csv(tmp_path / "duckdb" / "data" / f"{table}.csv", infer_schema_length=None)
        assert expected.height > 0
        assert_same_rows(got, expected, ordered=True)

    # The first screen: each pair's verdict, in the same order (numbers are compared above, in full).
    def verdicts(engine: str) -> list[tuple[str, str]]:
        html = (tmp_path / engine / "report.html").read_text(encoding="utf-8")
        table = html[html.index('<table id="verdict-table">') :]
        return re.findall(r'<tr class="[a-z-]+"><td>([a-z ]+)</td><td>(.*?)</td>', table[: table.index("</table>")])

    assert verdicts("spark") == verdicts("duckdb")
    assert {v for v, _ in verdicts("duckdb")} >= {"regressed"}


@needs_spark
def test_the_readme_spark_example_runs(spark: Any, synth_wh: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Spark\n") :]
    section = section[: section.index("\n## ", 1)]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found
    code = found.group(1)
    assert 'open_warehouse("warehouse")' in code
    namespace: dict[str, Any] = {}
    exec(code.replace('open_warehouse("warehouse")', f"open_warehouse({str(synth_wh)!r})"), namespace)
    con = connect(open_warehouse(synth_wh))
    try:
        expected = con.sql(
            "SELECT model, metric, avg(score) AS mean, count(*) AS answers FROM scores GROUP BY ALL"
        ).pl()
    finally:
        con.close()
    assert_same_rows(pl.DataFrame(pl.from_arrow(namespace["per_model"].toArrow())), expected)


@needs_spark
def test_a_missing_file_is_an_error_line(spark: Any, synth_wh: Path, tmp_path: Path) -> None:
    shutil.copytree(synth_wh, tmp_path / "wh")
    wh = open_warehouse(tmp_path / "wh")
    Path(wh.table_files("scores")[0]).unlink()
    done = cli("summary", "--engine", "spark", "-w", wh.root)
    assert done.exit_code == 1
    assert done.stderr.startswith("Error: cannot read the warehouse's files: ")
    assert done.stderr.splitlines()[-1] == "Hint: run `evalhouse doctor`"


# ---------------------------------------------------------------------------------------------
# Spark Connect (SPARK_REMOTE): a real Connect server started from pyspark's own jars
# ---------------------------------------------------------------------------------------------


def _connect_missing() -> str | None:
    if _spark_missing():
        return _spark_missing()
    try:
        import grpc  # noqa: F401
        import pyspark
    except ImportError as exc:
        return f"Spark Connect's client is not installed ({exc.name}): pip install 'pyspark[connect]'"
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return None if submit.exists() else f"{submit} is missing: no Spark Connect server to start"


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sc://127.0.0.1:PORT`` of a Spark Connect server (local[2]) run by this module."""
    import socket
    import time

    import pyspark

    home = Path(pyspark.__file__).parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    cmd = [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
           "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
           "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.sql.session.timeZone=UTC",
           "--driver-memory", "1g", "spark-internal"]  # fmt: skip
    with log.open("wb") as out:
        env = {**os.environ, "SPARK_HOME": str(home)}
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while b"Spark Connect server started" not in log.read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.skipif(bool(_connect_missing()), reason=_connect_missing() or "")
def test_summary_and_compare_through_spark_connect_equal_duckdb(connect_server: str, synth_wh: Path) -> None:
    # In a process of their own: this module's local session would otherwise be used in process.
    def run(*args: object, remote: str | None) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "EVALHOUSE_SPARK_MASTER")}
        env |= {"SPARK_REMOTE": remote} if remote else {}
        done = subprocess.run([sys.executable, "-m", "evalhouse.cli", *map(str, args), "-w", str(synth_wh)],
                              capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    config = synth_wh.parent / "corpus" / ".evalhouse.toml"
    for command in (["summary", "--by", "model,category", "--format", "json"],
                    ["compare", "--config", config, "--no-save", "--format", "json"]):  # fmt: skip
        # compare registers small tables of its own, some of them empty (no pair excluded).
        assert_same_json(run(*command, "--engine", "spark", remote=connect_server), run(*command, remote=None))
