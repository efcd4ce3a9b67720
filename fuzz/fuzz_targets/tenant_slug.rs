//! `TenantSlug::parse` on arbitrary text. The slug is the only tenant
//! identifier that reaches SQL (as part of schema and role names), so the
//! target checks the documented grammar in both directions, not just "no
//! panic": `parse` accepts exactly the strings matching
//! `[a-z][a-z0-9_]{2,39}` that are neither reserved nor start with `pg_`,
//! `tenant_` or `spare_` (the prepared spare schemas' names, see the tenancy
//! README), and every way in (`parse`, `FromStr`, serde) agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_tenancy::{TenancyError, TenantSlug};

/// The reserved names of the crate's documentation (kept apart from the
/// crate's own list on purpose: a name dropped there shows up here).
const RESERVED: &str = "public platform template market information_schema postgres \
                        rampart shared admin root system default tenant";

/// The grammar, written independently of the implementation (per `char`).
fn matches_grammar(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if !(3..=40).contains(&chars.len()) {
        return false;
    }
    if !chars[0].is_ascii_lowercase() {
        return false;
    }
    if !chars[1..]
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
    {
        return false;
    }
    !(s.starts_with("pg_")
        || s.starts_with("tenant_")
        || s.starts_with("spare_")
        || RESERVED.split_whitespace().any(|r| r == s))
}

fn check(raw: &str) {
    let parsed = TenantSlug::parse(raw);
    let expected = matches_grammar(raw);
    assert_eq!(
        parsed.is_ok(),
        expected,
        "parse({raw:?}) = {parsed:?}, grammar says {expected}"
    );
    match &parsed {
        Ok(slug) => {
            assert_eq!(slug.as_str(), raw);
            assert_eq!(slug.to_string(), raw);
            let schema = slug.schema_name();
            assert_eq!(schema, format!("tenant_{raw}"));
            // PostgreSQL truncates identifiers at 63 bytes; a longer schema
            // name would silently alias another tenant's.
            assert!(schema.len() <= 63, "schema name too long: {schema}");
            assert!(
                schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "schema name needs quoting: {schema:?}"
            );
        }
        Err(TenancyError::InvalidSlug { slug, .. }) => {
            // The error echoes at most a short printable prefix.
            assert!(slug.chars().count() <= 48, "echoed {slug:?}");
            assert!(!slug.chars().any(char::is_control), "echoed {slug:?}");
        }
        Err(other) => panic!("unexpected error kind {other:?}"),
    }
    let from_str: Result<TenantSlug, _> = raw.parse();
    assert_eq!(from_str.ok(), parsed.as_ref().ok().cloned());
    let json = serde_json::Value::String(raw.to_owned());
    let from_json: Result<TenantSlug, _> = serde_json::from_value(json);
    assert_eq!(from_json.ok(), parsed.as_ref().ok().cloned());
    if let Ok(slug) = parsed {
        let back = serde_json::to_value(&slug).ok();
        assert_eq!(back, Some(serde_json::Value::String(raw.to_owned())));
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
    // Mostly-valid variants reach the length and reserved-name edges more
    // often than raw bytes do.
    let lower: String = String::from_utf8_lossy(data).to_lowercase();
    check(&lower);
});
