//! The JSON request bodies of the reference server's `/api/v1` routes that
//! are library types, deserialized with serde_json exactly as actix-web's
//! `web::Json` does, then validated with the library's own checks.
//!
//! The first byte picks the body type; the rest is the JSON. Properties:
//! a body that deserializes re-serializes and deserializes to the same value;
//! validation is idempotent (a normalized value normalizes to itself) and
//! what passes it respects the documented limits; broker key errors never
//! echo the keys (secrets never reach responses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_members::{BrokerKeys, MemberInput, validate_paper_keys};
use rampart_notify::price_alerts::NewPriceAlert;
use rampart_portfolio::{
    Decimal, NewComment, NewPortfolio, PortfolioPatch, PositionInput, PreferencesPatch,
    ProfilePatch, ShareGrant,
};
use rampart_tenancy::TenantSlug;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Equal, but numbers only to a few ULPs: without serde_json's
/// `float_roundtrip` feature (off in this workspace) a long decimal can parse
/// to a float whose shortest form parses one ULP away (see README: Findings).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || ((x - y) / x).abs() < 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Deserializes `json`; when it does, checks the serde round trip.
fn body<T>(json: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_slice(json).ok()?;
    let encoded = serde_json::to_vec(&value).expect("a deserialized body serializes");
    let again: T = serde_json::from_slice(&encoded).expect("what we wrote reads back");
    if again != value {
        let (a, b) = (
            serde_json::to_value(&value).expect("serializes"),
            serde_json::to_value(&again).expect("serializes"),
        );
        assert!(same(&a, &b), "serde round trip changed the body: {a} → {b}");
    }
    Some(value)
}

fn position(p: PositionInput) {
    let Ok(valid) = p.validated() else { return };
    assert_eq!(valid.clone().validated().as_ref().ok(), Some(&valid));
    assert!(!valid.symbol.is_empty() && valid.symbol.len() <= 32);
    assert!(
        valid
            .symbol
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || ".^-=".contains(c)),
        "symbol {:?}",
        valid.symbol
    );
    // Exact decimals: finite by their type; the checks bound them.
    for v in [valid.quantity, valid.purchase_price].into_iter().flatten() {
        assert!(v >= Decimal::ZERO);
    }
    if let Some(w) = valid.target_weight {
        assert!(w > Decimal::ZERO && w <= Decimal::ONE);
    }
}

fn member(m: MemberInput) {
    let Ok(n) = m.normalized() else { return };
    assert_eq!(
        n.normalized().as_ref(),
        Ok(&n),
        "normalization is not idempotent"
    );
    assert!(["admin", "trader", "viewer"].contains(&n.role.as_str()));
    assert_eq!(n.email, n.email.trim());
    assert!(n.email.contains('@'));
}

fn broker_keys(json: &[u8]) {
    let Ok(keys) = serde_json::from_slice::<BrokerKeys>(json) else {
        return;
    };
    assert_eq!(format!("{keys:?}"), "BrokerKeys { .. }");
    match validate_paper_keys(&keys) {
        Ok(()) => {
            let id = keys.key_id.trim();
            assert!(id.starts_with("PK") && (16..=32).contains(&id.len()));
            assert!((30..=80).contains(&keys.secret_key.trim().len()));
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            // The fixed wording of every message, from keys that cannot
            // appear in it: a key that is itself a piece of that wording
            // ("secretKe") is not an echo.
            let wording: String = [("x", "y"), ("AKx", "y")]
                .into_iter()
                .filter_map(|(id, secret)| {
                    let keys = serde_json::from_value::<BrokerKeys>(
                        serde_json::json!({"keyId": id, "secretKey": secret}),
                    )
                    .ok()?;
                    validate_paper_keys(&keys)
                        .err()
                        .map(|e| format!("{e} {e:?}"))
                })
                .collect();
            for secret in [keys.key_id.trim(), keys.secret_key.trim()] {
                // Short values can occur in the message by chance ("PK").
                if secret.len() >= 8 && !wording.contains(secret) {
                    assert!(!shown.contains(secret), "error echoes a key: {shown}");
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => {
            if let Some(p) = body::<PositionInput>(json) {
                position(p);
            }
        }
        1 => {
            if let Some(p) = body::<NewPortfolio>(json) {
                p.positions.into_iter().for_each(position);
            }
        }
        2 => {
            body::<PortfolioPatch>(json);
        }
        3 => {
            body::<ShareGrant>(json);
        }
        4 => {
            body::<NewComment>(json);
        }
        5 => {
            body::<ProfilePatch>(json);
        }
        6 => {
            body::<PreferencesPatch>(json);
        }
        7 => {
            if let Some(m) = body::<MemberInput>(json) {
                member(m);
            }
        }
        8 => broker_keys(json),
        _ => {
            // No Serialize/PartialEq on the alert; deserialization alone.
            let _ = serde_json::from_slice::<NewPriceAlert>(json);
            if let Ok(slug) = serde_json::from_slice::<TenantSlug>(json) {
                assert_eq!(TenantSlug::parse(slug.as_str()).ok(), Some(slug));
            }
        }
    }
});
