//! Amounts (equity, P&L) as exact decimals ([`Decimal`], stored in
//! `numeric` columns), written to JSON as numbers with their exact digits:
//! no trailing zeros, and an integral value with the `.0` the API wrote when
//! these were floats (`10000.0`, `0.2`).
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// `#[serde(serialize_with = "…")]` for a [`Decimal`] as a JSON number.
pub(crate) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let text = d.normalize().to_string();
    let text = if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    };
    // Raw JSON text: serde_json writes the digits as they are.
    serde_json::value::RawValue::from_string(text)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Serialize)]
    struct Holder(#[serde(serialize_with = "serialize")] Decimal);

    #[test]
    fn amounts_are_json_numbers_with_their_digits() {
        for (given, written) in [
            ("0.2000000000", "0.2"),
            ("10000", "10000.0"),
            ("-0.5", "-0.5"),
            (
                "123456789012345678.0123456789",
                "123456789012345678.0123456789",
            ),
        ] {
            let d: Decimal = given.parse().unwrap();
            assert_eq!(serde_json::to_string(&Holder(d)).unwrap(), written);
        }
    }
}
