//! Amounts, prices and quantities as exact decimals ([`Decimal`], stored
//! in `numeric` columns through diesel's `Numeric`), written to JSON as
//! numbers with their exact digits. Shared by the crates that keep money
//! (portfolio positions and snapshots, member equity series, price alerts),
//! so every API writes and reads an amount the same way.
//!
//! **Written**: the decimal's digits without trailing zeros; an integral
//! value keeps the `.0` the API wrote when these were floats (`10.0`,
//! `0.1`, `12345.6789012345`). Written straight to JSON text (as the server
//! does) every digit is kept; through a `serde_json::Value` a number keeps
//! 15–17 significant digits.
//!
//! **Read**: serde_json hands a JSON number to serde as an `f64` (its
//! `arbitrary_precision` feature would keep the text, but it changes
//! `serde_json::Value` for the whole workspace). The number becomes the
//! decimal of its shortest round-trip text, so any number written with at
//! most 15 significant digits is read exactly (`0.1` is 0.1, not
//! 0.1000000000000000055…). Every digit is kept through [`parse`] (CSV,
//! numbers given as strings). A number beyond the decimal's range reads as
//! its largest (or smallest) value, which input checks then refuse like
//! any other too-large number.
//!
//! ```
//! use rampart_amount::Decimal;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Position {
//!     #[serde(with = "rampart_amount")]
//!     quantity: Decimal,
//!     #[serde(with = "rampart_amount::option")]
//!     price: Option<Decimal>,
//! }
//!
//! let p: Position = serde_json::from_str(r#"{"quantity": 0.1, "price": 0.2}"#).unwrap();
//! assert_eq!(p.quantity * p.price.unwrap(), "0.02".parse::<Decimal>().unwrap());
//! assert_eq!(
//!     serde_json::to_string(&p).unwrap(),
//!     r#"{"quantity":0.1,"price":0.2}"#
//! );
//! assert_eq!(rampart_amount::parse("1e3"), Some(Decimal::from(1000)));
//! ```
use std::str::FromStr;

pub use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The JSON text of `d`: see the [crate docs](crate).
pub fn json_text(d: &Decimal) -> String {
    let text = d.normalize().to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// The decimal an `f64` stands for: its shortest round-trip text, clamped
/// to the decimal's range; `None` for NaN and infinities.
pub fn from_f64(v: f64) -> Option<Decimal> {
    if !v.is_finite() {
        return None;
    }
    // `Display` of an f64 is its shortest round-trip text, never exponential.
    Some(Decimal::from_str(&v.to_string()).unwrap_or(if v > 0.0 {
        Decimal::MAX
    } else if v < 0.0 {
        Decimal::MIN
    } else {
        Decimal::ZERO
    }))
}

/// The nearest `f64` of `d`, for the places that compute in floats
/// (analytics, GraphQL's `Float`); every `Decimal` has one.
pub fn to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or_default()
}

/// Parses decimal text (`12.5`, `-3`, `1e3`), keeping every digit.
pub fn parse(text: &str) -> Option<Decimal> {
    let t = text.trim();
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .ok()
}

/// `#[serde(with = "rampart_amount")]` for a [`Decimal`] as a JSON number.
pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    serde_json::value::RawValue::from_string(json_text(d))
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// See [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(NumberVisitor)
}

struct NumberVisitor;

impl de::Visitor<'_> for NumberVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        from_f64(v).ok_or_else(|| E::custom("a finite number is expected"))
    }
}

/// `#[serde(with = "…")]` for an `Option<Decimal>` (`null` is `None`).
pub mod option {
    use super::*;

    #[derive(Deserialize)]
    struct Number(#[serde(deserialize_with = "super::deserialize")] Decimal);

    /// See [`super::serialize`].
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// See [`super::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<Number>::deserialize(d)?.map(|n| n.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "super::option")]
        q: Option<Decimal>,
    }

    #[test]
    fn json_numbers_keep_their_digits() {
        for (given, written) in [
            ("0.1", "0.1"),
            ("0.2000000000", "0.2"),
            ("10", "10.0"),
            ("12345.6789012345", "12345.6789012345"),
            (
                "123456789012345678.0123456789",
                "123456789012345678.0123456789",
            ),
            ("-3.50", "-3.5"),
            ("-0.5", "-0.5"),
            ("10000", "10000.0"),
        ] {
            let h = Holder {
                q: Some(Decimal::from_str(given).unwrap()),
            };
            let text = serde_json::to_string(&h).unwrap();
            assert_eq!(text, format!("{{\"q\":{written}}}"));
        }
        // Read back: exact for up to 15 significant digits.
        for text in [
            "0.1",
            "0.2",
            "10.0",
            "10",
            "12345.6789012345",
            "1.0000000001",
        ] {
            let h: Holder = serde_json::from_str(&format!("{{\"q\":{text}}}")).unwrap();
            assert_eq!(h.q, Some(Decimal::from_str(text).unwrap()), "{text}");
        }
        let h: Holder = serde_json::from_str("{\"q\":null}").unwrap();
        assert_eq!(h.q, None);
        let h: Holder = serde_json::from_str("{\"q\":1e300}").unwrap();
        assert_eq!(h.q, Some(Decimal::MAX));
        assert!(serde_json::from_str::<Holder>("{\"q\":\"1\"}").is_err());
        // Through a `Value` a number stays a number (a float, as before).
        let v = serde_json::to_value(Holder {
            q: Some(Decimal::from(10)),
        })
        .unwrap();
        assert_eq!(v["q"], serde_json::json!(10.0));
    }

    #[test]
    fn text_and_floats() {
        assert_eq!(parse(" 1e3 "), Some(Decimal::from(1000)));
        assert_eq!(parse("2.50"), Decimal::from_str("2.5").ok());
        assert_eq!(parse("abc"), None);
        assert_eq!(from_f64(0.1), Decimal::from_str("0.1").ok());
        assert_eq!(from_f64(f64::NAN), None);
        assert_eq!(from_f64(-1e300), Some(Decimal::MIN));
    }
}
