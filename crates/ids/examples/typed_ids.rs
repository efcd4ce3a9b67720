//! Ids from a path segment and a token subject, kept apart by their types.
//!
//! `cargo run -p rampart-ids --example typed_ids`
use rampart_ids::{PortfolioId, UserId};

fn owner_of(portfolio: PortfolioId, owners: &[(PortfolioId, UserId)]) -> Option<UserId> {
    owners
        .iter()
        .find(|(p, _)| *p == portfolio)
        .map(|(_, u)| *u)
}

fn main() {
    let alice = UserId::new_v4();
    let growth = PortfolioId::new_v4();
    let owners = [(growth, alice)];
    // A portfolio id parsed from a URL path segment.
    let from_path: PortfolioId = match growth.to_string().parse() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("not a portfolio id: {e}");
            return;
        }
    };
    println!(
        "portfolio {from_path} belongs to {:?}",
        owner_of(from_path, &owners)
    );
    // owner_of(alice, &owners) would not compile: a user is not a portfolio.
}
