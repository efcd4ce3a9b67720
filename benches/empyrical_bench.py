#!/usr/bin/env python3
"""Time empyrical on the data of benches/benches/analytics.rs (1,000 series of
2,520 daily returns, or of 252 with `--len 252`).

    python3 -m venv /tmp/empvenv && /tmp/empvenv/bin/pip install empyrical-reloaded
    /tmp/empvenv/bin/python benches/empyrical_bench.py            # 1,000 x 2,520
    /tmp/empvenv/bin/python benches/empyrical_bench.py --len 252  # 1,000 x 252

The data are generated exactly as in the Rust bench: SplitMix64(42) uniforms,
offset by half a step, mapped to normals with the inverse normal CDF.
The loop computes the same metric set as rampart-analytics' `MetricSet`
(Monte Carlo off): every empyrical metric, plus scipy skew/kurtosis and the
parametric VaRs empyrical lacks.
"""

import argparse
import time

import empyrical as ep
import numpy as np
import scipy.stats as st
from scipy.special import ndtri

SERIES = 1000
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(seed, count):
    with np.errstate(over="ignore"):
        state = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def data(length):
    bits = splitmix64(42, (SERIES + 1) * length)
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    z = ndtri(u).reshape(SERIES + 1, length)
    sigma = 0.005 + 0.015 * np.arange(SERIES + 1) / SERIES
    r = 0.0003 + sigma[:, None] * z
    return r[:SERIES], r[SERIES]


def metric_set(r, bench, rf=0.0001, req=0.0, cutoff=0.05):
    out = {
        "cum_returns_final": ep.cum_returns_final(r),
        "annual_return": ep.annual_return(r),
        "annual_volatility": ep.annual_volatility(r),
        "sharpe_ratio": ep.sharpe_ratio(r, risk_free=rf),
        "sortino_ratio": ep.sortino_ratio(r, required_return=req),
        "downside_risk": ep.downside_risk(r, required_return=req),
        "max_drawdown": ep.max_drawdown(r),
        "calmar_ratio": ep.calmar_ratio(r),
        "omega_ratio": ep.omega_ratio(r, risk_free=rf, required_return=req),
        "tail_ratio": ep.tail_ratio(r),
        "stability_of_timeseries": ep.stability_of_timeseries(r),
        "excess_sharpe": ep.excess_sharpe(r, bench),
        "value_at_risk": ep.value_at_risk(r, cutoff),
        "conditional_value_at_risk": ep.conditional_value_at_risk(r, cutoff),
        "skew": st.skew(r),
        "kurtosis": st.kurtosis(r),
    }
    out["alpha"], out["beta"] = ep.alpha_beta(r, bench, risk_free=rf)
    mean, sd = r.mean(), r.std(ddof=1)
    z = st.norm.ppf(cutoff)
    out["gaussian_value_at_risk"] = mean + z * sd
    out["gaussian_conditional_value_at_risk"] = mean - sd * st.norm.pdf(z) / cutoff
    s, k = out["skew"], out["kurtosis"]
    zcf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    out["cornish_fisher_value_at_risk"] = mean + zcf * sd
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--len", type=int, default=2520, help="returns per series")
    length = parser.parse_args().len
    series, bench = data(length)
    metric_set(series[0], bench)  # warm-up (imports, caches)
    runs, cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        results = [metric_set(r, bench) for r in series]
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"empyrical per-series loop, {SERIES} x {length}: best wall {min(runs):.3f} s, "
          f"best CPU {min(cpu):.3f} s; wall runs {[round(x, 3) for x in runs]}")
    print("sharpe_ratio[0..3] =", [results[i]["sharpe_ratio"] for i in range(3)])


if __name__ == "__main__":
    main()
