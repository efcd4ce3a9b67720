//! Values a small company and prints the EPV figures and a sensitivity grid.
//! Run: `cargo run -p rampart-valuation --example epv`

use rampart_valuation::{
    Claims, CostOfCapital, Decimal, EarningsAdjustments, FiscalYear, ValuationInputs, sensitivity,
    value,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let year = |year, revenue: i64, ebit: i64| FiscalYear {
        year,
        revenue: Decimal::from(revenue),
        operating_income: Decimal::from(ebit),
        depreciation_amortization: Decimal::from(40),
        maintenance_capex: Decimal::from(35),
        one_off_charges: Decimal::ZERO,
        sga: Decimal::from(150),
        research_development: Decimal::ZERO,
    };
    let inputs = ValuationInputs {
        currency: "USD".into(),
        fiscal_years: vec![
            year(2022, 900, 95),
            year(2023, 1000, 120),
            year(2024, 1050, 110),
        ],
        adjustments: EarningsAdjustments {
            growth_share_of_sga: Decimal::new(1, 1),
            growth_share_of_rnd: Decimal::ZERO,
            normalised_revenue: None,
            tax_rate: Decimal::new(25, 2),
        },
        cost_of_capital: CostOfCapital {
            risk_free_rate: Decimal::new(4, 2),
            beta: Decimal::new(11, 1),
            equity_risk_premium: Decimal::new(55, 3),
            pre_tax_cost_of_debt: Decimal::new(6, 2),
            debt_weight: Decimal::new(2, 1),
        },
        claims: Claims {
            excess_cash: Decimal::from(120),
            non_operating_assets: Decimal::ZERO,
            debt: Decimal::from(250),
            other_claims: Decimal::ZERO,
            diluted_shares: Decimal::from(40),
        },
        reproduction: vec![],
        growth: None,
        current_price: Some(Decimal::from(20)),
    };
    let v = value(&inputs)?;
    println!(
        "NOPAT {} · WACC {} · EPV {}",
        v.nopat.round_dp(2),
        v.capital.wacc.round_dp(4),
        v.epv_operations.round_dp(2)
    );
    println!(
        "per share {} · margin of safety {:?}",
        v.value_per_share.round_dp(2),
        v.margin_of_safety.map(|m| m.round_dp(3))
    );
    let grid = sensitivity(
        &inputs,
        &[Decimal::new(8, 2), Decimal::new(9, 2), Decimal::new(10, 2)],
        &[Decimal::new(11, 2), Decimal::new(13, 2)],
    )?;
    for (wacc, row) in grid.waccs.iter().zip(&grid.values) {
        let cells: Vec<String> = row.iter().map(|v| v.round_dp(2).to_string()).collect();
        println!("WACC {wacc}: {}", cells.join("  "));
    }
    Ok(())
}
