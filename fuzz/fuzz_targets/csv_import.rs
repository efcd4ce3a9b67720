//! The two CSV importers on arbitrary bytes, with no database:
//! * `rampart_portfolio::transfer::parse_positions` (positions upload): an
//!   accepted file gives positions that are already normalized (validating
//!   them again changes nothing), respect the documented limits, and survive
//!   the export → import round trip (`positions_csv` then `parse_positions`)
//!   unchanged; a refused file reports rows by line;
//! * `rampart_members::parse_import_rows` (member CSV preview): every row is
//!   either refused with a reason or normalized, with a known role and an
//!   email no other accepted row has.
//!
//! The first byte picks the importer, so each corpus entry stays a plain
//! CSV file after it.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rampart_members::{ImportAction, MemberInput, parse_import_rows};
use rampart_portfolio::transfer::{MAX_BYTES, MAX_ROWS, detail_of, parse_positions, positions_csv};
use rampart_portfolio::{Decimal, PortfolioError};

/// `rampart_members`' documented row limit (its constant is not exported).
const MAX_MEMBER_ROWS: usize = 5_000;

fn positions(data: &[u8]) {
    match parse_positions(data) {
        Ok(positions) => {
            assert!(data.len() <= MAX_BYTES);
            assert!(positions.len() <= MAX_ROWS);
            let mut total_weight = Decimal::ZERO;
            for p in &positions {
                assert_eq!(
                    p.clone().validated().ok().as_ref(),
                    Some(p),
                    "accepted position is not normalized"
                );
                assert!(!p.symbol.is_empty() && p.symbol.len() <= 32);
                assert_eq!(p.symbol, p.symbol.to_ascii_uppercase());
                // Exact decimals: finite by their type; the checks bound them.
                for v in [p.quantity, p.purchase_price].into_iter().flatten() {
                    assert!(v >= Decimal::ZERO);
                }
                total_weight += p.target_weight.unwrap_or_default();
            }
            assert!(
                total_weight <= Decimal::ONE + Decimal::new(1, 9),
                "weights add up to {total_weight}"
            );
            // Export, import again: nothing may change.
            let exported = positions_csv(&detail_of(&positions));
            let again = parse_positions(exported.as_bytes());
            assert_eq!(
                again.as_ref().ok(),
                Some(&positions),
                "round trip changed the positions; exported:\n{exported}\nerror: {:?}",
                again.as_ref().err()
            );
        }
        Err(PortfolioError::CsvRejected(report)) => {
            assert_eq!(report.applied, 0);
            assert!(!report.errors.is_empty(), "refused without a reason");
            assert!(report.rows <= MAX_ROWS);
        }
        Err(PortfolioError::TooLarge { .. }) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn members(text: &str) {
    let Ok(rows) = parse_import_rows(text) else {
        return;
    };
    assert!(!rows.is_empty());
    assert!(rows.len() <= MAX_MEMBER_ROWS);
    let mut emails = HashSet::new();
    for row in &rows {
        assert!(row.line >= 2, "data row on line {}", row.line);
        if row.action == ImportAction::Refused {
            assert!(!row.problems.is_empty(), "refused without a reason");
            continue;
        }
        assert!(row.problems.is_empty());
        let input = MemberInput {
            name: row.name.clone(),
            email: row.email.clone(),
            role: row.role.clone(),
        };
        assert_eq!(
            input.normalized().as_ref(),
            Ok(&input),
            "accepted row is not normalized"
        );
        assert!(["admin", "trader", "viewer"].contains(&row.role.as_str()));
        assert!(emails.insert(row.email.clone()), "duplicate email accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, csv)) = data.split_first() else {
        return;
    };
    if which.is_multiple_of(2) {
        positions(csv);
    } else {
        members(&String::from_utf8_lossy(csv));
    }
});
