//! Hand-worked EPV cases: every intermediate figure is written out and
//! checked, so a change in the method shows exactly where it differs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rampart_valuation::{
    Claims, CostOfCapital, Decimal, EarningsAdjustments, FiscalYear, GrowthAssumption,
    ReproductionLine, ValuationError, ValuationInputs, sensitivity, value,
};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn year(
    y: i32,
    rev: &str,
    ebit: &str,
    da: &str,
    capex: &str,
    one_off: &str,
    sga: &str,
    rnd: &str,
) -> FiscalYear {
    FiscalYear {
        year: y,
        revenue: d(rev),
        operating_income: d(ebit),
        depreciation_amortization: d(da),
        maintenance_capex: d(capex),
        one_off_charges: d(one_off),
        sga: d(sga),
        research_development: d(rnd),
    }
}

/// The worked case (all figures in USD millions except per share):
/// 2022: 100 EBIT + 10 one-off + (50 − 40) excess D&A + 0.1×200 + 0.2×50 = 150 → 15 % of 1000
/// 2023: 134 + 0 + (55 − 45) + 22 + 10 = 176 → 16 % of 1100
/// 2024: 152 + 6 + (60 − 50) + 24 + 12 = 204 → 17 % of 1200
/// normalised margin 16 % × mean revenue 1100 = 176; tax 25 % = 44; NOPAT 132
/// k_e = 4 % + 1.2 × 5 % = 10 %; k_d after tax = 4 % × 0.75 = 3 %; WACC = 0.75×10 % + 0.25×3 % = 8.25 %
/// EPV = 132 / 0.0825 = 1600; equity = 1600 + 150 + 50 − 300 − 100 = 1400; 100 shares → 14
/// reproduction 300 + 220 + 600 + 180 − 200 = 1100; franchise 500
/// growth g 2.25 %, ROIC 15 %: 132 × (1 − 0.15) / (0.0825 − 0.0225) = 1870; equity 1670 → 16.70
/// price 10.50: margin of safety (14 − 10.5) / 14 = 25 %
fn worked_case() -> ValuationInputs {
    ValuationInputs {
        currency: "USD".into(),
        fiscal_years: vec![
            year(2022, "1000", "100", "50", "40", "10", "200", "50"),
            year(2023, "1100", "134", "55", "45", "0", "220", "50"),
            year(2024, "1200", "152", "60", "50", "6", "240", "60"),
        ],
        adjustments: EarningsAdjustments {
            growth_share_of_sga: d("0.1"),
            growth_share_of_rnd: d("0.2"),
            normalised_revenue: None,
            tax_rate: d("0.25"),
        },
        cost_of_capital: CostOfCapital {
            risk_free_rate: d("0.04"),
            beta: d("1.2"),
            equity_risk_premium: d("0.05"),
            pre_tax_cost_of_debt: d("0.04"),
            debt_weight: d("0.25"),
        },
        claims: Claims {
            excess_cash: d("150"),
            non_operating_assets: d("50"),
            debt: d("300"),
            other_claims: d("100"),
            diluted_shares: d("100"),
        },
        reproduction: vec![
            line("cash and receivables", "300", "300"),
            line("inventory", "200", "220"),
            line("property, plant and equipment", "500", "600"),
            line("brand", "0", "180"),
            line("non-interest-bearing liabilities", "-200", "-200"),
        ],
        growth: Some(GrowthAssumption {
            growth_rate: d("0.0225"),
            return_on_invested_capital: d("0.15"),
        }),
        current_price: Some(d("10.50")),
    }
}

fn line(name: &str, book: &str, repro: &str) -> ReproductionLine {
    ReproductionLine {
        name: name.into(),
        book_value: d(book),
        reproduction_value: d(repro),
    }
}

#[test]
fn worked_case_every_intermediate_figure() {
    let v = value(&worked_case()).unwrap();
    let adjusted: Vec<_> = v
        .years
        .iter()
        .map(|y| {
            (
                y.year,
                y.excess_depreciation,
                y.growth_investment,
                y.adjusted_operating_income,
                y.adjusted_margin,
            )
        })
        .collect();
    assert_eq!(
        adjusted,
        vec![
            (2022, d("10"), d("30"), d("150"), d("0.15")),
            (2023, d("10"), d("32"), d("176"), d("0.16")),
            (2024, d("10"), d("36"), d("204"), d("0.17")),
        ]
    );
    assert_eq!(v.normalised_margin, d("0.16"));
    assert_eq!(v.normalised_revenue, d("1100"));
    assert_eq!(v.normalised_operating_income, d("176"));
    assert_eq!(v.taxes, d("44"));
    assert_eq!(v.nopat, d("132"));
    assert_eq!(v.capital.cost_of_equity, d("0.10"));
    assert_eq!(v.capital.after_tax_cost_of_debt, d("0.03"));
    assert_eq!(v.capital.wacc, d("0.0825"));
    assert_eq!(v.epv_operations, d("1600"));
    assert_eq!(v.equity_value, d("1400"));
    assert_eq!(v.value_per_share, d("14"));
    assert_eq!(v.reproduction_value, d("1100"));
    assert_eq!(v.franchise_value, d("500"));
    let g = v.growth.as_ref().unwrap();
    assert_eq!(g.value_of_operations, d("1870"));
    assert_eq!(g.equity_value, d("1670"));
    assert_eq!(g.value_per_share, d("16.70"));
    assert_eq!(g.value_of_growth, d("270"));
    assert_eq!(v.margin_of_safety, Some(d("0.25")));
    assert_eq!(v.currency, "USD");
}

/// Second case: upkeep costs more than the accounts charge (negative
/// excess depreciation), a one-off gain taken out, an explicit normalised
/// revenue, all-equity financing, growth at a ROIC below the cost of
/// capital destroying value, and a price above the value.
/// 2023: 90 − 20 gain + (30 − 40) = 60 → 6 % of 1000
/// 2024: 110 + 0 + (30 − 50) = 90 → 9 % of 1000; mean 7.5 % × 2000 = 150; tax 20 % → NOPAT 120
/// WACC = 3 % + 1.0 × 7 % = 10 %; EPV 1200; equity 1200 − 0 = 1200 / 50 = 24; reproduction 1500 → franchise −300
/// growth 5 %, ROIC 5 %: 120 × 0 / 0.05 = 0 → growth destroys all value; price 30 → margin of safety −25 %
#[test]
fn value_destroying_growth_and_negative_excess_depreciation() {
    let mut c = worked_case();
    c.fiscal_years = vec![
        year(2023, "1000", "90", "30", "40", "-20", "0", "0"),
        year(2024, "1000", "110", "30", "50", "0", "0", "0"),
    ];
    c.adjustments = EarningsAdjustments {
        growth_share_of_sga: d("0"),
        growth_share_of_rnd: d("0"),
        normalised_revenue: Some(d("2000")),
        tax_rate: d("0.2"),
    };
    c.cost_of_capital = CostOfCapital {
        risk_free_rate: d("0.03"),
        beta: d("1.0"),
        equity_risk_premium: d("0.07"),
        pre_tax_cost_of_debt: d("0.09"),
        debt_weight: d("0"),
    };
    c.claims = Claims {
        excess_cash: d("0"),
        non_operating_assets: d("0"),
        debt: d("0"),
        other_claims: d("0"),
        diluted_shares: d("50"),
    };
    c.reproduction = vec![line("operating assets", "1400", "1500")];
    c.growth = Some(GrowthAssumption {
        growth_rate: d("0.05"),
        return_on_invested_capital: d("0.05"),
    });
    c.current_price = Some(d("30"));
    let v = value(&c).unwrap();
    assert_eq!(v.years[0].excess_depreciation, d("-10"));
    assert_eq!(v.years[0].adjusted_operating_income, d("60"));
    assert_eq!(v.years[1].adjusted_margin, d("0.09"));
    assert_eq!(v.normalised_margin, d("0.075"));
    assert_eq!(v.nopat, d("120"));
    assert_eq!(v.capital.wacc, d("0.10"));
    assert_eq!(v.epv_operations, d("1200"));
    assert_eq!(v.value_per_share, d("24"));
    assert_eq!(v.franchise_value, d("-300"));
    let g = v.growth.unwrap();
    assert_eq!(g.value_of_operations, d("0"));
    assert_eq!(g.value_of_growth, d("-1200"));
    assert_eq!(v.margin_of_safety, Some(d("-0.25")));
}

#[test]
fn sensitivity_grid_is_per_share_epv_for_each_wacc_and_margin() {
    // margin 15 %: 165 pre-tax, NOPAT 123.75; at 8 %: 1546.875 → equity 1346.875 → 13.46875; at 8.25 %: 1500 → 13
    // margin 16 %: NOPAT 132; at 8 %: 1650 → 14.5; at 8.25 %: 14
    let grid = sensitivity(
        &worked_case(),
        &[d("0.08"), d("0.0825")],
        &[d("0.15"), d("0.16")],
    )
    .unwrap();
    assert_eq!(
        grid.values,
        vec![vec![d("13.46875"), d("14.5")], vec![d("13"), d("14")]]
    );
    let err = sensitivity(&worked_case(), &[d("0")], &[d("0.15")]).unwrap_err();
    assert!(matches!(err, ValuationError::InvalidInput { .. }), "{err}");
    assert!(sensitivity(&worked_case(), &[], &[d("0.15")]).is_err());
}

#[test]
fn growth_at_or_above_wacc_is_refused() {
    let mut c = worked_case();
    c.growth = Some(GrowthAssumption {
        growth_rate: d("0.0825"),
        return_on_invested_capital: d("0.15"),
    });
    assert_eq!(
        value(&c).unwrap_err(),
        ValuationError::GrowthNotBelowWacc {
            growth: d("0.0825"),
            wacc: d("0.0825")
        }
    );
}

fn refused_field(c: &ValuationInputs) -> String {
    match value(c).unwrap_err() {
        ValuationError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other}"),
    }
}

#[test]
fn every_input_is_validated_with_its_path() {
    type Mutation = Box<dyn Fn(&mut ValuationInputs)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("currency", Box::new(|c| c.currency = "usd".into())),
        ("fiscal_years", Box::new(|c| c.fiscal_years.clear())),
        (
            "fiscal_years[1].revenue",
            Box::new(|c| c.fiscal_years[1].revenue = d("0")),
        ),
        (
            "fiscal_years[2].maintenance_capex",
            Box::new(|c| c.fiscal_years[2].maintenance_capex = d("-1")),
        ),
        (
            "fiscal_years[1].year",
            Box::new(|c| c.fiscal_years[1].year = 2022),
        ),
        (
            "adjustments.growth_share_of_sga",
            Box::new(|c| c.adjustments.growth_share_of_sga = d("1.5")),
        ),
        (
            "adjustments.tax_rate",
            Box::new(|c| c.adjustments.tax_rate = d("1")),
        ),
        (
            "adjustments.normalised_revenue",
            Box::new(|c| c.adjustments.normalised_revenue = Some(d("-5"))),
        ),
        (
            "cost_of_capital.debt_weight",
            Box::new(|c| c.cost_of_capital.debt_weight = d("-0.1")),
        ),
        (
            "claims.diluted_shares",
            Box::new(|c| c.claims.diluted_shares = d("-100")),
        ),
        ("claims.debt", Box::new(|c| c.claims.debt = d("-1"))),
        (
            "growth.return_on_invested_capital",
            Box::new(|c| c.growth.as_mut().unwrap().return_on_invested_capital = d("0")),
        ),
        (
            "current_price",
            Box::new(|c| c.current_price = Some(d("0"))),
        ),
        // A negative risk-free rate can leave a WACC at or below zero: refused, not divided by.
        (
            "cost_of_capital",
            Box::new(|c| {
                c.cost_of_capital.risk_free_rate = d("-0.2");
                c.growth = None;
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut c = worked_case();
        mutate(&mut c);
        assert_eq!(refused_field(&c), field);
    }
}

#[test]
fn overflow_is_an_error_not_a_panic() {
    let mut c = worked_case();
    c.fiscal_years[0].revenue = Decimal::MAX;
    c.fiscal_years[1].revenue = Decimal::MAX;
    assert!(matches!(
        value(&c).unwrap_err(),
        ValuationError::Overflow(_)
    ));
}

#[test]
fn json_round_trips_exactly_and_rejects_unknown_fields() {
    let c = worked_case();
    let json = serde_json::to_string(&c).unwrap();
    let back: ValuationInputs = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    let v = value(&back).unwrap();
    let out = serde_json::to_value(&v).unwrap();
    assert_eq!(out["value_per_share"], "14");
    let mut raw: serde_json::Value = serde_json::from_str(&json).unwrap();
    raw["claims"]["sharez"] = "1".into();
    assert!(serde_json::from_value::<ValuationInputs>(raw).is_err());
}
