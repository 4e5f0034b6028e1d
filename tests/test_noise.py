"""The noise floor: run-to-run spread recovered as planted, by hand on small cases, and in compare."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from evalhouse import noise as noise_module
from evalhouse.cli import main
from evalhouse.compare import compare
from evalhouse.noise import for_scope, noise
from evalhouse.warehouse import connect


def _one(frame, **keys) -> dict:
    hit = frame.filter(**keys)
    assert hit.height == 1, (keys, hit)
    return hit.row(0, named=True)


def test_hand_worked_three_runs(put_scores) -> None:
    """Three runs (epochs) of two items: the SD of the three run means, the flips of three pairs."""
    runs = {0: [1, 1], 1: [0, 1], 2: [1, 0]}  # run means 1, 0.5, 0.5
    rows = [{"model": "m", "item_id": f"q{i}", "score": s, "epoch": r} for r, scores in runs.items()
            for i, s in enumerate(scores)]  # fmt: skip
    r = _one(noise(connect(put_scores(rows))), scope="overall")
    assert (r["n_runs"], r["n_pairs"], r["n_items"]) == (3, 3, 2)
    assert r["mean"] == pytest.approx(2 / 3)
    assert r["sd_run"] == pytest.approx(np.std([1, 0.5, 0.5], ddof=1))
    # q0: 1, 0, 1 differs in 2 of its 3 pairs; q1: 1, 1, 0 likewise.
    assert r["flip_rate"] == pytest.approx(4 / 6)
    from scipy import stats

    df = 2
    assert r["sd_low"] == pytest.approx(r["sd_run"] * math.sqrt(df / stats.chi2.ppf(0.975, df)))
    assert r["sd_high"] == pytest.approx(r["sd_run"] * math.sqrt(df / stats.chi2.ppf(0.025, df)))
    assert r["noise_floor"] == pytest.approx(1.959964 * math.sqrt(2) * r["sd_run"])


def test_runs_of_different_benchmarks_count_by_their_share(put_scores) -> None:
    """Two runs on benchmark a (3 items), three on b (1 item): overall, each part by its share."""
    rows = [{"model": "m", "benchmark": "a", "item_id": f"a{i}", "score": s, "epoch": e}
            for e, scores in enumerate([[1, 1, 0], [0, 1, 0]]) for i, s in enumerate(scores)]  # fmt: skip
    rows += [
        {"model": "m", "benchmark": "b", "item_id": "b0", "score": s, "epoch": 10 + e} for e, s in enumerate([1, 0, 0])
    ]
    frame = noise(connect(put_scores(rows)))
    a, b = _one(frame, scope="benchmark", benchmark="a"), _one(frame, scope="benchmark", benchmark="b")
    overall = _one(frame, scope="overall")
    var_a, var_b = np.var([2 / 3, 1 / 3], ddof=1), np.var([1, 0, 0], ddof=1)
    assert (a["sd_run"], b["sd_run"]) == (pytest.approx(math.sqrt(var_a)), pytest.approx(math.sqrt(var_b)))
    assert overall["sd_run"] == pytest.approx(math.sqrt((3 / 4) ** 2 * var_a + (1 / 4) ** 2 * var_b))
    assert (overall["n_runs"], overall["n_pairs"], overall["n_items"]) == (5, 1 + 3, 4)


def test_planted_run_to_run_spread_is_recovered(put_scores) -> None:
    """30 runs of 200 items: item difficulty, a per-run offset (sd 0.02) and answer noise (sd 0.1).
    A run's mean then has sd sqrt(0.02^2 + 0.1^2 / 200) = 0.0212; a second model, 0/1 answers with
    per-item p, flips between two runs with probability 2 p (1 - p) on average."""
    rng = np.random.default_rng(7)
    runs, items, offset_sd, answer_sd = 30, 200, 0.02, 0.1
    difficulty = rng.uniform(0.3, 0.7, items)
    p = rng.uniform(0.1, 0.9, items)
    rows = []
    for r in range(runs):
        scores = difficulty + rng.normal(0, offset_sd) + rng.normal(0, answer_sd, items)
        rows += [{"model": "graded", "item_id": f"q{i}", "score": float(s), "epoch": r} for i, s in enumerate(scores)]
        hits = rng.random(items) < p
        rows += [{"model": "binary", "item_id": f"q{i}", "score": float(h), "epoch": r} for i, h in enumerate(hits)]
    frame = noise(connect(put_scores(rows)))
    graded = _one(frame, model="graded", scope="overall")
    planted = math.sqrt(offset_sd**2 + answer_sd**2 / items)
    assert graded["sd_low"] < planted < graded["sd_high"]
    assert graded["sd_run"] == pytest.approx(planted, rel=0.25)
    assert (graded["n_runs"], graded["n_pairs"], graded["n_items"]) == (runs, runs * (runs - 1) // 2, items)
    assert graded["flip_rate"] is None
    binary = _one(frame, model="binary", scope="overall")
    flip = float(np.mean(2 * p * (1 - p)))
    assert binary["flip_low"] < flip < binary["flip_high"]
    assert binary["flip_rate"] == pytest.approx(flip, abs=0.01)
    # Independent answers only: a run's mean has sd sqrt(mean p (1 - p) / n).
    assert binary["sd_low"] < math.sqrt(np.mean(p * (1 - p)) / items) < binary["sd_high"]


def test_what_is_left_out(put_scores) -> None:
    rows = [{"model": "once", "item_id": "q", "score": 1}]  # one run: no noise to estimate
    rows += [{"model": "m", "item_id": "q", "score": s, "epoch": e, "item_hash": h}  # the dataset changed
             for e, s, h in ((0, 1, "old"), (1, 0, "new"))]  # fmt: skip
    rows += [{"model": "m", "item_id": "k", "score": s, "epoch": e} for e, s in ((0, 1), (1, 1))]
    frame = noise(connect(put_scores(rows)))
    assert frame["model"].unique().to_list() == ["m"]
    r = _one(frame, scope="overall")
    assert (r["n_items"], r["sd_run"], r["flip_rate"]) == (1, 0.0, 0.0)
    # Identical runs show no spread: no interval rather than one of width 0.
    assert (r["sd_low"], r["sd_high"]) == (None, None) and r["note"].startswith("no difference between the runs")


def test_compare_puts_the_baselines_floor_beside_the_difference(put_scores) -> None:
    """The baseline ran 4 times (averaged in compare), the candidate once: the floor scales to both."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.3, 0.7, 50)
    rows = [{"model": "m", "category": "c", "item_id": f"q{i}", "score": float(s + rng.normal(0, 0.05)), "epoch": e}
            for e in range(4) for i, s in enumerate(base)]  # fmt: skip
    rows += [{"model": "m-q4km", "category": "c", "item_id": f"q{i}", "score": float(s + 0.002)}
             for i, s in enumerate(base)]  # fmt: skip
    con = connect(put_scores(rows))
    own = _one(for_scope(noise(con, models=["m"]), "overall"), model="m")
    row = _one(compare(con, by=[]), scope="overall")
    assert (row["noise_sd"], row["noise_runs"]) == (pytest.approx(own["sd_run"]), 4)
    assert row["noise_floor"] == pytest.approx(1.959964 * own["sd_run"] * math.sqrt(1 / 4 + 1))
    assert row["within_noise"] is (abs(row["diff"]) <= row["noise_floor"])
    assert row["within_noise"] and "within the baseline's run-to-run noise" in row["note"]
    # The candidate ran once: it has no floor of its own, and the reverse pair gets none.
    back = _one(compare(con, pairs=[("m-q4km", "m")], by=[]), scope="overall")
    assert back["noise_sd"] is None and back["within_noise"] is None


def test_cli(put_scores) -> None:
    rows = [{"model": "m", "benchmark": b, "category": "c", "item_id": f"{b}{i}", "score": (i + e) % 2, "epoch": e}
            for b in ("x", "y") for e in range(3) for i in range(4)]  # fmt: skip
    wh = put_scores(rows)
    runner = CliRunner()
    out = runner.invoke(main, ["noise", "-w", str(wh.root), "--format", "json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert [r["benchmark"] for r in got] == ["x", "y"] and "category" not in got[0]
    out = runner.invoke(main, ["noise", "-w", str(wh.root), "--by", "overall", "--format", "csv"])
    assert out.stdout.splitlines()[0].startswith("model,metric,n_runs,n_pairs,n_items,mean,sd_run")
    out = runner.invoke(main, ["noise", "-w", str(wh.root), "-m", "nope"])
    assert out.exit_code == 1 and out.stderr.startswith("Error: no model matches nope")
    single = put_scores([{"model": "solo", "item_id": "q", "score": 1}])
    out = runner.invoke(main, ["noise", "-w", str(single.root), "-m", "solo"])
    assert out.exit_code == 1
    assert out.stderr.startswith("Error: no model matching solo has two runs (or epochs) of the same items")
    assert list(noise_module.BY) == cli.NOISE_BY
