"""Power planning against statsmodels' power functions and simulations of the tests compare runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestPower

from evalhouse.cli import main
from evalhouse.errors import AnalysisError
from evalhouse.power import (
    Plan,
    PowerQuery,
    Variance,
    mcnemar_items,
    mcnemar_power,
    observe,
    power,
    solve,
    t_items,
    t_power,
)
from evalhouse.warehouse import connect


@pytest.mark.parametrize(("delta", "var", "alpha"), [(0.02, 0.2, 0.05), (0.05, 0.09, 0.05), (0.1, 0.5, 0.01),
                                                     (0.3, 0.25, 0.1), (0.01, 0.04, 0.05)])  # fmt: skip
def test_paired_t_agrees_with_statsmodels(delta: float, var: float, alpha: float) -> None:
    """The paired t-test's n, power and MDE are statsmodels' TTestPower (noncentral t), n rounded up."""
    effect = delta / math.sqrt(var)
    n = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=0.8, alternative="two-sided")
    assert t_items(delta, var, alpha) == math.ceil(n)
    assert t_power(150, delta, var, alpha) == pytest.approx(TTestPower().power(effect, 150, alpha), rel=1e-6)
    r = solve(Variance(between=var), Plan(items=150, alpha=alpha))
    mde = TTestPower().solve_power(nobs=150, alpha=alpha, power=0.8) * math.sqrt(var)
    assert r.delta == pytest.approx(mde, rel=1e-4) and r.power == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize(("delta", "sd"), [(0.05, 0.45), (0.02, 0.3), (0.1, 0.5)])
def test_unshared_items_agree_with_two_independent_samples(delta: float, sd: float) -> None:
    """With rho 0 the paired variance is that of two independent samples: statsmodels' NormalIndPower
    (normal approximation, n per group) within 3 % (the t-test needs a few items more)."""
    n = NormalIndPower().solve_power(effect_size=delta / sd, alpha=0.05, power=0.8, ratio=1.0)
    ours = power(None, PowerQuery(sd=sd), Plan(delta=delta))["items"][0]
    assert ours == pytest.approx(n, rel=0.03) and ours >= n


@pytest.mark.parametrize(("p10", "p01"), [(0.05, 0.15), (0.1, 0.14), (0.02, 0.06)])
def test_mcnemar_agrees_with_a_simulation(p10: float, p01: float) -> None:
    """Paired 0/1 items: the items planned give 80 % power when the exact McNemar test is simulated."""
    rng = np.random.default_rng(11)
    discordant, delta = p10 + p01, p01 - p10
    n = mcnemar_items(discordant, delta, 0.05)
    sims = 20_000
    counts = rng.multinomial(n, [p01, p10, 1 - p01 - p10], size=sims)
    m = counts[:, 0] + counts[:, 1]
    p = np.minimum(1, 2 * stats.binom.cdf(np.minimum(counts[:, 0], counts[:, 1]), m, 0.5))
    simulated = float(np.mean(p < 0.05))
    # 20,000 draws: a standard error of 0.003.
    assert simulated == pytest.approx(0.8, abs=0.012)
    assert mcnemar_power(n, discordant, delta, 0.05) == pytest.approx(simulated, abs=0.01)
    # Back again: the smallest difference those n items detect is the one planned for (or a little less).
    mde = solve(Variance(between=discordant, binary=True, discordant=discordant), Plan(items=n))
    assert mde.test == "mcnemar" and mde.delta == pytest.approx(delta, rel=0.03) and mde.delta <= delta
    # Miller's normal formula, (z + z)^2 (psi - delta^2) / delta^2, within a few percent of it.
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert z * z * (discordant - delta**2) / delta**2 == pytest.approx(n, rel=0.12)


def test_epochs_shrink_only_the_within_item_part() -> None:
    """Miller's formula: Var(d) = omega^2 + (sigma_b^2 + sigma_c^2) / K; simulated answers agree."""
    rng = np.random.default_rng(5)
    v = Variance(between=0.02, within_b=0.2, within_c=0.2)
    assert [v.per_item(k) for k in (1, 4)] == [pytest.approx(0.42), pytest.approx(0.12)]
    r1, r4 = solve(v, Plan(delta=0.05)), solve(v, Plan(delta=0.05, epochs=4))
    assert r1.items == t_items(0.05, 0.42, 0.05) and r4.items == t_items(0.05, 0.12, 0.05)
    # Simulate K = 4 answers per item of 0/1 scores: x_b ~ U(0.2, 0.8) per item, x_c = x_b + 0.05 +
    # item noise; the paired t on per-item means, at the planned n, rejects about 80 % of the time.
    n, k, sims = r4.items, 4, 2000
    x_b = rng.uniform(0.2, 0.8, (sims, n))
    x_c = np.clip(x_b + 0.05 + rng.normal(0, 0.1, (sims, n)), 0, 1)
    s_b = rng.binomial(k, x_b) / k
    s_c = rng.binomial(k, x_c) / k
    d = s_c - s_b
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    simulated = float(np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1)))
    # The simulated design's own variance components, planned for: the power within the simulation's error.
    own = Variance(float(np.var(x_c - x_b)), float(np.mean(x_b * (1 - x_b))), float(np.mean(x_c * (1 - x_c))))
    planned = solve(own, Plan(items=n, delta=0.05, epochs=k))
    assert simulated == pytest.approx(planned.power, abs=0.03)


def _pair(rng: np.random.Generator, items: int, answers: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """0/1 answers of two correlated models, and their items' conditional means: x_b ~ U(0.1, 0.9),
    x_c = x_b - 0.05 + N(0, 0.1)."""
    x_b = rng.uniform(0.1, 0.9, items)
    x_c = np.clip(x_b - 0.05 + rng.normal(0, 0.1, items), 0, 1)
    rows = []
    for model, x in (("m", x_b), ("m-q4km", x_c)):
        for e in range(answers):
            hits = rng.random(items) < x
            rows += [{"model": model, "item_id": f"q{i}", "score": float(h), "epoch": e} for i, h in enumerate(hits)]
    return rows, x_b, x_c


def _pair_rows(rng: np.random.Generator, items: int, answers: int) -> list[dict]:
    return _pair(rng, items, answers)[0]


def test_components_observed_in_a_warehouse(put_scores) -> None:
    """From 4 answers per item, the between- and within-item variances and the correlation planted."""
    rng = np.random.default_rng(9)
    rows, x_b, x_c = _pair(rng, 1500, 4)
    con = connect(put_scores(rows))
    [o] = observe(con, "m", "m-q4km")
    assert o.n == 1500 and o.variance.binary
    # Planted: Var(x_b) = 0.8^2 / 12 = 0.0533; within = E[x (1 - x)] ~ 0.197; omega^2 ~ 0.01.
    assert o.sd_between_b**2 == pytest.approx(0.8**2 / 12, rel=0.15)
    assert o.variance.within_b == pytest.approx(0.197, rel=0.1) and o.variance.within_c == pytest.approx(0.2, rel=0.1)
    assert o.variance.between == pytest.approx(0.01, abs=0.006)
    assert 0.85 < o.rho < 1
    # The discordance of one answer each, from the means and the correlation: P(differ) as planted.
    assert o.variance.discordant == pytest.approx(float(np.mean(x_b + x_c - 2 * x_b * x_c)), abs=0.01)
    frame = power(con, PowerQuery(("m",), ("m-q4km",)), Plan(delta=0.05, epochs=4))
    assert frame["epochs"].to_list() == [1, 4] and frame["test"].to_list() == ["mcnemar", "paired"]
    assert frame["items"][1] < frame["items"][0]


def test_one_answer_per_item_plans_mcnemar_from_the_observed_discordance(put_scores) -> None:
    rng = np.random.default_rng(2)
    con = connect(put_scores(_pair_rows(rng, 800, 1)))
    [o] = observe(con, "m", "m-q4km")
    listed = con.execute("SELECT count(*) FROM flips WHERE baseline = 'm' AND candidate = 'm-q4km'").fetchall()[0][0]
    assert o.variance.discordant == pytest.approx(listed / 800)
    assert o.variance.within_b != o.variance.within_b and "within-item variance unknown" in (o.note or "")
    r = power(con, PowerQuery(("m",), ("m-q4km",)), Plan(delta=0.03)).row(0, named=True)
    assert r["test"] == "mcnemar" and r["items"] == mcnemar_items(o.variance.discordant, 0.03, 0.05)


def test_assumptions_replace_the_data(put_scores) -> None:
    rng = np.random.default_rng(4)
    con = connect(put_scores(_pair_rows(rng, 300, 2)))
    r = power(con, PowerQuery(("m",), ("m-q4km",), sd=0.4, rho=0.5), Plan(delta=0.05)).row(0, named=True)
    assert r["test"] == "paired" and (r["sd_between_baseline"], r["rho"], r["sd_within_baseline"]) == (0.4, 0.5, None)
    assert r["items"] == t_items(0.05, 2 * 0.16 * 0.5, 0.05) and "assumed: --sd and --rho" in r["note"]
    wh = put_scores([{"model": "other", "item_id": "z", "score": 1}])  # the same warehouse, one more model
    with pytest.raises(AnalysisError, match="m and other share no two items"):
        power(connect(wh), PowerQuery(("m",), ("other",)), Plan(delta=0.05))
    # Without data, an assumed SD still plans (rho 0: as if the items were not shared).
    r = power(connect(wh), PowerQuery(("m",), ("other",), sd=0.3), Plan(delta=0.05)).row(0, named=True)
    assert r["items"] == t_items(0.05, 2 * 0.09, 0.05) and "rho 0" in r["note"]


def test_cli(put_scores, tmp_path) -> None:
    rng = np.random.default_rng(1)
    wh = put_scores(_pair_rows(rng, 200, 1))
    runner = CliRunner()
    out = runner.invoke(main, ["power", "-w", str(wh.root), "-b", "m", "-c", "m-q4km", "--delta", "0.05",
                               "--epochs", "3", "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [(r["epochs"], r["test"]) for r in rows] == [(1, "mcnemar"), (3, "paired")]
    assert all(r["power"] >= 0.8 and r["answers"] == r["items"] * r["epochs"] for r in rows)
    # No warehouse needed for assumptions alone; --n gives the smallest difference.
    out = runner.invoke(main, ["power", "--sd", "0.3", "--rho", "0.5", "--n", "285", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["delta"] == pytest.approx(0.05, abs=2e-4)
    # The alpha in use: evalhouse.toml's [compare] alpha, over which --alpha goes.
    config = tmp_path / "evalhouse.toml"
    config.write_text("[compare]\nalpha = 0.01\n")
    out = runner.invoke(main, ["power", "--sd", "0.3", "--delta", "0.05", "--config", str(config), "--format", "json"])
    assert json.loads(out.stdout)[0]["alpha"] == 0.01
    assert json.loads(out.stdout)[0]["items"] == t_items(0.05, 2 * 0.09, 0.01)
    out = runner.invoke(main, ["power", "--sd", "0.3"])
    assert out.exit_code == 2 and "give --delta D" in out.stderr
    out = runner.invoke(main, ["power", "--delta", "0.05"])
    assert out.exit_code == 2 and "--sd" in out.stderr
    out = runner.invoke(main, ["power", "-w", str(wh.root), "-b", "m", "-c", "m-q4km", "--delta", "0.05",
                               "--metric", "nope"])  # fmt: skip
    assert out.exit_code == 1 and out.stderr.startswith("Error: m and m-q4km share no two items of metric nope")
