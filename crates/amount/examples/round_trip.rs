//! A position's quantity and price through JSON and back, exactly:
//! `cargo run -p rampart-amount --example round_trip`.
use rampart_amount::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Position {
    #[serde(with = "rampart_amount")]
    quantity: Decimal,
    #[serde(with = "rampart_amount")]
    price: Decimal,
}

fn main() -> Result<(), serde_json::Error> {
    let p: Position = serde_json::from_str(r#"{"quantity": 0.1, "price": 0.2}"#)?;
    // 0.1 × 0.2 as floats is 0.020000000000000004; as decimals it is 0.02.
    println!("{} × {} = {}", p.quantity, p.price, p.quantity * p.price);
    println!("{}", serde_json::to_string(&p)?);
    Ok(())
}
