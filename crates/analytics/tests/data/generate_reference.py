#!/usr/bin/env python3
"""Regenerate the reference data and expected values for rampart-analytics.

The Rust tests never run this script: they read the files it writes, which are
committed next to it. Run it in a throwaway virtualenv outside the repository:

    python3 -m venv /tmp/empvenv
    /tmp/empvenv/bin/pip install empyrical-reloaded vega-datasets arch
    /tmp/empvenv/bin/python crates/analytics/tests/data/generate_reference.py

Inputs (real prices that ship inside public Python packages):
  * vega-datasets `_data/stocks.csv`: monthly prices of MSFT, AMZN, IBM, GOOG,
    AAPL, 2000-01 .. 2010-03 (GOOG starts 2004-08, so its column has leading
    gaps, which exercises the NaN conventions).
  * arch `arch/data/sp500` and `arch/data/nasdaq`: daily closes; we keep
    2014-01-02 .. 2018-12-31.

Outputs:
  * stocks_monthly.csv, indices_daily.csv: the prices, wide format.
  * empyrical_reference.json: every metric, computed with empyrical (and
    scipy/numpy for the estimators empyrical does not have), on returns that
    the script derives from the CSV files exactly as the Rust code does.
"""

import json
import math
import pathlib
import sys
from importlib import resources

import empyrical as ep
import numpy as np
import pandas as pd
import scipy.stats as st

HERE = pathlib.Path(__file__).resolve().parent


def write_data():
    stocks = pd.read_csv(resources.files("vega_datasets") / "_data" / "stocks.csv")
    stocks["date"] = pd.to_datetime(stocks["date"], format="%b %d %Y")
    wide = stocks.pivot(index="date", columns="symbol", values="price")
    wide = wide[["MSFT", "AMZN", "IBM", "GOOG", "AAPL"]]
    wide.index = wide.index.strftime("%Y-%m-%d")
    wide.index.name = "date"
    wide.to_csv(HERE / "stocks_monthly.csv", na_rep="")

    import arch.data.nasdaq
    import arch.data.sp500

    sp = arch.data.sp500.load()["Adj Close"].rename("SP500")
    nq = arch.data.nasdaq.load()["Adj Close"].rename("NASDAQ")
    daily = pd.concat([sp, nq], axis=1).loc["2014-01-01":"2018-12-31"]
    daily.index = daily.index.strftime("%Y-%m-%d")
    daily.index.name = "date"
    daily.to_csv(HERE / "indices_daily.csv")


def read_prices(name):
    frame = pd.read_csv(HERE / name, index_col=0)
    frame.index = pd.to_datetime(frame.index)
    return frame


def simple_returns(prices):
    # Same operation order as the Rust code: (p[t] - p[t-1]) / p[t-1].
    return (prices[1:] - prices[:-1]) / prices[:-1]


def nan_to_none(x):
    if isinstance(x, (list, tuple, np.ndarray)):
        return [nan_to_none(v) for v in x]
    x = float(x)
    return None if math.isnan(x) else (("inf" if x > 0 else "-inf") if math.isinf(x) else x)


def drawdown_details(r):
    """Peak/trough/recovery as indices into r (peak None = starting capital)."""
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + np.nan_to_num(r))])
    peak = np.maximum.accumulate(wealth)
    dd = (wealth - peak) / peak
    trough = int(np.argmin(dd))
    if dd[trough] >= 0:
        return {"peak": None, "trough": None, "recovery": None}
    peak_pos = int(np.nonzero(wealth[: trough + 1] == peak[trough])[0][-1])
    after = np.nonzero(wealth[trough:] >= peak[trough])[0]
    recovery = None if len(after) == 0 else int(trough + after[0]) - 1
    return {
        "peak": None if peak_pos == 0 else peak_pos - 1,
        "trough": trough - 1,
        "recovery": recovery,
    }


def moments(r):
    r = r[~np.isnan(r)]
    n = len(r)
    mean = r.mean()
    d = r - mean
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    s1 = r.std(ddof=1)
    return n, mean, m2, m3, m4, s1


def cornish_fisher(r, cutoff, kind):
    n, mean, m2, m3, m4, s1 = moments(r)
    if kind == "population":
        skew, exkurt = m3 / m2**1.5, m4 / m2**2 - 3.0
    elif kind == "performance_analytics":
        skew, exkurt = m3 / s1**3, m4 / s1**4 - 3.0
    else:  # sample (adjusted G1, G2)
        skew = st.skew(r[~np.isnan(r)], bias=False)
        exkurt = st.kurtosis(r[~np.isnan(r)], bias=False)
    z = st.norm.ppf(cutoff)
    zcf = (
        z
        + (z**2 - 1) * skew / 6
        + (z**3 - 3 * z) * exkurt / 24
        - (2 * z**3 - 5 * z) * skew**2 / 36
    )
    return mean + zcf * s1


def series_reference(r, bench, dates, ann, period, rf, req, window):
    out = {}
    e = {}
    e["cum_returns"] = ep.cum_returns(r)
    e["cum_returns_final"] = ep.cum_returns_final(r)
    e["annual_return"] = ep.annual_return(r, period=period)
    e["annual_volatility"] = ep.annual_volatility(r, period=period)
    e["sharpe_ratio"] = ep.sharpe_ratio(r, period=period)
    e["sharpe_ratio_rf"] = ep.sharpe_ratio(r, risk_free=rf, period=period)
    e["sortino_ratio"] = ep.sortino_ratio(r, period=period)
    e["sortino_ratio_req"] = ep.sortino_ratio(r, required_return=req, period=period)
    e["downside_risk"] = ep.downside_risk(r, period=period)
    e["downside_risk_req"] = ep.downside_risk(r, required_return=req, period=period)
    e["max_drawdown"] = ep.max_drawdown(r)
    e["calmar_ratio"] = ep.calmar_ratio(r, period=period)
    e["omega_ratio"] = ep.omega_ratio(r, annualization=ann)
    e["omega_ratio_req"] = ep.omega_ratio(r, risk_free=rf, required_return=0.05, annualization=ann)
    e["tail_ratio"] = ep.tail_ratio(r)
    e["stability_of_timeseries"] = ep.stability_of_timeseries(r)
    ab = ep.alpha_beta(r, bench, period=period)
    e["alpha"], e["beta"] = ab[0], ab[1]
    ab = ep.alpha_beta(r, bench, risk_free=rf, period=period)
    e["alpha_rf"], e["beta_rf"] = ab[0], ab[1]
    e["excess_sharpe"] = ep.excess_sharpe(r, bench)
    e["value_at_risk"] = ep.value_at_risk(r)
    e["value_at_risk_01"] = ep.value_at_risk(r, cutoff=0.01)
    e["conditional_value_at_risk"] = ep.conditional_value_at_risk(r)
    e["conditional_value_at_risk_01"] = ep.conditional_value_at_risk(r, cutoff=0.01)
    e["skew"] = st.skew(r)
    e["kurtosis"] = st.kurtosis(r)
    clean = r[~np.isnan(r)]
    mean, sd = clean.mean(), clean.std(ddof=1)
    z = st.norm.ppf(0.05)
    e["gaussian_value_at_risk"] = mean + z * sd
    e["gaussian_conditional_value_at_risk"] = mean - sd * st.norm.pdf(z) / 0.05
    e["cornish_fisher_value_at_risk"] = cornish_fisher(r, 0.05, "population")
    e["cornish_fisher_value_at_risk_pa"] = cornish_fisher(r, 0.05, "performance_analytics")
    e["cornish_fisher_value_at_risk_sample"] = cornish_fisher(r, 0.05, "sample")
    e["rolling_volatility"] = ep.roll_annual_volatility(r, window, period=period)
    e["rolling_sharpe"] = ep.roll_sharpe_ratio(r, window, period=period)
    e["rolling_beta"] = ep.roll_beta(r, bench, window)
    e["rolling_max_drawdown"] = ep.roll_max_drawdown(r, window)
    idx = pd.DatetimeIndex(dates)
    rs = pd.Series(r, index=idx)
    for to in ("weekly", "monthly", "quarterly", "yearly"):
        e["aggregate_" + to] = ep.aggregate_returns(rs, to).to_numpy()
    out["metrics"] = {k: nan_to_none(v) for k, v in e.items()}
    out["drawdown_details"] = drawdown_details(r)
    return out


def dataset(name, period, ann, rf, req, window, benchmark):
    prices = read_prices(name)
    dates = [d.strftime("%Y-%m-%d") for d in prices.index[1:]]
    rets = {c: simple_returns(prices[c].to_numpy()) for c in prices.columns}
    logs = {c: np.log(prices[c].to_numpy()[1:] / prices[c].to_numpy()[:-1]) for c in prices.columns}
    result = {
        "file": name,
        "period": period,
        "risk_free": rf,
        "required_return": req,
        "window": window,
        "benchmark": benchmark,
        "series": {},
    }
    for col, r in rets.items():
        ref = series_reference(r, rets[benchmark], dates, ann, period, rf, req, window)
        ref["simple_returns"] = nan_to_none(r)
        ref["log_returns"] = nan_to_none(logs[col])
        result["series"][col] = ref
    frame = pd.DataFrame(rets)
    corr = frame.corr()
    result["correlation"] = {
        "columns": list(corr.columns),
        "matrix": nan_to_none(corr.to_numpy().ravel()),
    }
    return result


def main():
    if "--no-data" not in sys.argv:
        write_data()
    reference = {
        "about": (
            "Expected values computed by crates/analytics/tests/data/generate_reference.py "
            "with empyrical-reloaded (metrics empyrical has), scipy/numpy (skew, kurtosis, "
            "Gaussian and Cornish-Fisher VaR) and pandas (correlation)."
        ),
        "versions": {
            "empyrical": ep.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": __import__("scipy").__version__,
        },
        "datasets": [
            dataset("stocks_monthly.csv", "monthly", 12, 0.002, 0.004, 12, "IBM"),
            dataset("indices_daily.csv", "daily", 252, 0.0001, 0.0002, 63, "SP500"),
        ],
    }
    (HERE / "empyrical_reference.json").write_text(json.dumps(reference, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
