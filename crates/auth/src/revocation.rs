//! Ending live login sessions and tokens in a tenant's tables: the one
//! place that marks rows `revoked_at = now()` by the holder they belong to.
use diesel::ExpressionMethods;
use diesel::QueryDsl;
use diesel::dsl::now;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::AuthError;
use crate::schema::{access_tokens, refresh_tokens, sessions};

/// Whose live rows a revocation ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holder<'a> {
    /// Every session and token of a user.
    User(Uuid),
    /// One login session and the tokens issued to it.
    Session(Uuid),
    /// The tokens of an OAuth client.
    Client(&'a str),
    /// One refresh token family and its access tokens.
    Family(Uuid),
}

/// `UPDATE $table SET revoked_at = now() WHERE $column = $value AND revoked_at IS NULL`.
macro_rules! revoke_live {
    ($conn:expr, $table:ident, $column:ident, $value:expr) => {
        diesel::update(
            $table::table
                .filter($table::$column.eq($value))
                .filter($table::revoked_at.is_null()),
        )
        .set($table::revoked_at.eq(now))
        .execute($conn)
        .await?
    };
}

/// Revokes the live refresh tokens and recorded access tokens of `holder`.
pub(crate) async fn revoke_tokens(
    conn: &mut AsyncPgConnection,
    holder: Holder<'_>,
) -> Result<(), AuthError> {
    match holder {
        Holder::User(id) => {
            revoke_live!(conn, refresh_tokens, user_id, id);
            revoke_live!(conn, access_tokens, user_id, id);
        }
        Holder::Session(id) => {
            revoke_live!(conn, refresh_tokens, session_id, id);
            revoke_live!(conn, access_tokens, session_id, id);
        }
        Holder::Client(id) => {
            revoke_live!(conn, refresh_tokens, client_id, id);
            revoke_live!(conn, access_tokens, client_id, id);
        }
        Holder::Family(id) => {
            revoke_live!(conn, refresh_tokens, family_id, id);
            revoke_live!(conn, access_tokens, family_id, id);
        }
    }
    Ok(())
}

/// Revokes the live sessions of `holder` (a user's, or one) and the tokens
/// bound to them; the number of sessions ended.
pub(crate) async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    holder: Holder<'_>,
) -> Result<usize, AuthError> {
    let n = match holder {
        Holder::User(id) => revoke_live!(conn, sessions, user_id, id),
        Holder::Session(id) => revoke_live!(conn, sessions, id, id),
        Holder::Client(_) | Holder::Family(_) => 0,
    };
    revoke_tokens(conn, holder).await?;
    Ok(n)
}
