//! Typed identifiers: a [`UserId`], a [`PortfolioId`] and a [`CaseId`] are
//! all UUIDs, but
//! a function that takes one does not take the other, so a portfolio id
//! cannot be handed where a user is meant. Each is a `uuid` column through
//! diesel (`users::id.eq(user)` works as with a `Uuid`), a JSON string
//! through serde (`#[serde(transparent)]`, the same text as the `Uuid`), and
//! converts from and to a `Uuid` where one enters or leaves (an HTTP path, a
//! token's subject). Tenants are [`TenantSlug`]s, validated text, in
//! rampart-tenancy.
//!
//! ```
//! use rampart_ids::{PortfolioId, UserId};
//! use uuid::Uuid;
//!
//! let raw = Uuid::parse_str("0192e6a4-8f3b-7c1d-9a2b-3c4d5e6f7a8b").unwrap();
//! let user = UserId::from(raw);
//! assert_eq!(user.to_string(), raw.to_string());
//! assert_eq!(serde_json::to_string(&user).unwrap(), format!("\"{raw}\""));
//! let parsed: PortfolioId = raw.to_string().parse().unwrap();
//! assert_eq!(parsed.as_uuid(), raw);
//! // `let wrong: UserId = parsed;` does not compile.
//! ```
//!
//! [`TenantSlug`]: https://docs.rs/rampart-tenancy/latest/rampart_tenancy/struct.TenantSlug.html
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{Output, ToSql};
use diesel::sql_types;
use serde::{Deserialize, Serialize};
pub use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            AsExpression, FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = sql_types::Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (v4) id, for rows whose id the code picks.
            pub fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }

            /// The UUID, for where an id leaves the typed APIs (a token's
            /// subject, a log field, a URL).
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl PartialEq<Uuid> for $name {
            fn eq(&self, other: &Uuid) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for Uuid {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::from_str(s).map(Self)
            }
        }

        impl ToSql<sql_types::Uuid, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
                <Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
            }
        }

        impl FromSql<sql_types::Uuid, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
                <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
            }
        }
    };
}

uuid_id! {
    /// A user of a tenant (the `users` table's id, owned by rampart-auth; a
    /// token's subject).
    UserId
}

uuid_id! {
    /// A portfolio of a tenant (the `portfolios` table's id, owned by
    /// rampart-portfolio).
    PortfolioId
}

uuid_id! {
    /// A valuation case of a tenant (the `valuation_cases` table's id, owned
    /// by rampart-portfolio).
    CaseId
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_json_and_uuid_agree() {
        let raw = Uuid::new_v4();
        let id = UserId::from(raw);
        assert_eq!(id, raw);
        assert_eq!(Uuid::from(id), raw);
        assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, serde_json::to_string(&raw).unwrap());
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
        assert!("not-a-uuid".parse::<PortfolioId>().is_err());
        assert!(serde_json::from_str::<PortfolioId>("\"42\"").is_err());
        assert_eq!(format!("{id:?}"), format!("UserId({raw})"));
    }
}
