//! Tenant slugs: the one place a tenant identifier is validated before it
//! can reach SQL (as part of a schema or role name).
use std::fmt;

use crate::TenancyError;

/// Names a tenant may not take: PostgreSQL's own schemas and Rampart's.
const RESERVED: &[&str] = &[
    "public",
    "platform",
    "template",
    "market",
    "information_schema",
    "postgres",
    "rampart",
    "shared",
    "admin",
    "root",
    "system",
    "default",
    "tenant",
];

/// A validated tenant slug: lowercase `[a-z][a-z0-9_]{2,39}`, not a reserved
/// name and not starting with `pg_`, `tenant_` or `spare_` (the names of the
/// prepared spare schemas).
///
/// ```
/// use rampart_tenancy::TenantSlug;
/// assert!(TenantSlug::parse("acme_capital").is_ok());
/// assert!(TenantSlug::parse("a; drop schema public").is_err());
/// assert!(TenantSlug::parse("pg_catalog").is_err());
/// assert!(TenantSlug::parse("spare_schema").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Validates `raw` as a slug.
    pub fn parse(raw: &str) -> Result<Self, TenancyError> {
        let invalid = |reason: &'static str| TenancyError::InvalidSlug {
            // Never echo more than a short, printable prefix of hostile input.
            slug: raw.chars().take(48).filter(|c| !c.is_control()).collect(),
            reason,
        };
        let bytes = raw.as_bytes();
        if bytes.len() < 3 || bytes.len() > 40 {
            return Err(invalid("must be 3 to 40 characters long"));
        }
        if !bytes[0].is_ascii_lowercase() {
            return Err(invalid("must start with a lowercase letter a-z"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        {
            return Err(invalid("may contain only a-z, 0-9 and _"));
        }
        if raw.starts_with("pg_")
            || raw.starts_with("tenant_")
            || raw.starts_with("spare_")
            || RESERVED.contains(&raw)
        {
            return Err(invalid("is a reserved name"));
        }
        Ok(TenantSlug(raw.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tenant's schema name.
    pub fn schema_name(&self) -> String {
        format!("tenant_{}", self.0)
    }
}

/// A slug reads as the `&str` the crates' APIs take.
impl std::ops::Deref for TenantSlug {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for TenantSlug {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TenantSlug {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for TenantSlug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantSlug {
    type Err = TenancyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for TenantSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TenantSlug::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Quotes an identifier that has already been validated (slug-derived names
/// only ever contain `[a-z0-9_]`); doubling quotes keeps even a mistake inert.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes a string literal for the few DDL statements that cannot take bind
/// parameters; only used with validated identifiers and compile-time text.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        for ok in ["abc", "acme_capital", "t123", "a_b"] {
            assert!(TenantSlug::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(41);
        for bad in [
            "ab",
            "Abc",
            "1abc",
            "_abc",
            "abc-d",
            "a b",
            "public",
            "platform",
            "pg_toast",
            "information_schema",
            "tenant_x",
            "abé",
            long.as_str(),
            "a'bc",
            "a\"bc",
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
