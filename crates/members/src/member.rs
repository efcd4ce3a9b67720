//! Members: the tenant's users as a tenant admin manages them.
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Integer, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Members, MembersError, RowProblem};

/// Roles a member may be given (machine roles are not members).
pub(crate) const MEMBER_ROLES: &[&str] = &["admin", "trader", "viewer"];

/// What an admin says about a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    /// Display name (1–200 characters).
    pub name: String,
    /// Email, the member's identity within the tenant (case-insensitive).
    pub email: String,
    /// `admin`, `trader` or `viewer`.
    pub role: String,
}

impl MemberInput {
    /// Trimmed, lowercased email; every problem found.
    pub fn normalized(&self) -> Result<MemberInput, Vec<RowProblem>> {
        let mut problems = Vec::new();
        let name = self.name.trim().to_owned();
        let email = self.email.trim().to_lowercase();
        let role = self.role.trim().to_lowercase();
        let problem = |field: &str, message: &str| RowProblem {
            field: field.to_owned(),
            message: message.to_owned(),
        };
        if name.is_empty() {
            problems.push(problem("name", "is required"));
        } else if name.chars().count() > 200 || name.chars().any(char::is_control) {
            problems.push(problem(
                "name",
                "must be at most 200 characters, without control characters",
            ));
        }
        if email.is_empty() {
            problems.push(problem("email", "is required"));
        } else if !plausible_email(&email) {
            problems.push(problem("email", "is not a valid email address"));
        }
        if role.is_empty() {
            problems.push(problem("role", "is required"));
        } else if !MEMBER_ROLES.contains(&role.as_str()) {
            problems.push(problem("role", "must be one of admin, trader, viewer"));
        }
        if problems.is_empty() {
            Ok(MemberInput { name, email, role })
        } else {
            Err(problems)
        }
    }
}

fn plausible_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        }
        None => false,
    }
}

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Serialize, QueryableByName)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The user id.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// Display name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Email (lowercase).
    #[diesel(sql_type = Text)]
    pub email: String,
    /// Role.
    #[diesel(sql_type = Text)]
    pub role: String,
    /// `active`, `pending` (never logged in) or `disabled`.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Whether a broker account is attached (its keys are never returned).
    #[diesel(sql_type = Bool)]
    pub broker_attached: bool,
    /// Whether the member left the leaderboard.
    #[diesel(sql_type = Bool)]
    pub leaderboard_opt_out: bool,
    /// Created.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// What [`Members::upsert_member`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertOutcome {
    /// The member after the change.
    pub member: Member,
    /// Created (true) or updated (false).
    pub created: bool,
}

pub(crate) const MEMBER_COLUMNS: &str = "u.id, u.display_name AS name, u.email, u.role, u.status, \
     EXISTS (SELECT 1 FROM broker_accounts b WHERE b.user_id = u.id) AS broker_attached, \
     u.leaderboard_opt_out, u.created_at, u.updated_at";

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Bool)]
    created: bool,
}

/// Inserts or updates by email, in the caller's transaction.
pub(crate) async fn upsert_in(
    conn: &mut AsyncPgConnection,
    input: &MemberInput,
) -> Result<(Uuid, bool), MembersError> {
    // `xmax = 0` only for a row this statement inserted.
    let row: Upserted = diesel::sql_query(
        "INSERT INTO users (email, display_name, role, status) VALUES ($1, $2, $3, 'pending') \
         ON CONFLICT ((lower(email))) DO UPDATE SET display_name = EXCLUDED.display_name, \
         role = EXCLUDED.role, updated_at = now() WHERE users.role <> 'api_user' \
         RETURNING id, (xmax = 0) AS created",
    )
    .bind::<Text, _>(&input.email)
    .bind::<Text, _>(&input.name)
    .bind::<Text, _>(&input.role)
    .get_result(conn)
    .await
    .map_err(|e| match e {
        // The conflicting row is a machine client's: nothing was written.
        diesel::result::Error::NotFound => {
            MembersError::invalid("email", "belongs to a machine client")
        }
        other => other.into(),
    })?;
    Ok((row.id, row.created))
}

pub(crate) async fn member_in(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Member, MembersError> {
    diesel::sql_query(format!(
        "SELECT {MEMBER_COLUMNS} FROM users u WHERE u.id = $1"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .map_err(|e| match e {
        diesel::result::Error::NotFound => MembersError::NotFound("member"),
        other => other.into(),
    })
}

impl Members {
    /// Creates a member (status `pending` until they set up credentials) or
    /// updates the name and role of the member with that email.
    pub async fn upsert_member(
        &self,
        tenant: &str,
        input: &MemberInput,
    ) -> Result<UpsertOutcome, MembersError> {
        let input = input
            .normalized()
            .map_err(|problems| MembersError::Invalid { problems })?;
        self.pool
            .with_tenant(tenant, async |conn| {
                let (id, created) = upsert_in(conn, &input).await?;
                let member = member_in(conn, id).await?;
                Ok(UpsertOutcome { member, created })
            })
            .await
    }

    /// One member.
    pub async fn member(&self, tenant: &str, id: Uuid) -> Result<Member, MembersError> {
        self.pool
            .with_tenant(tenant, async |conn| member_in(conn, id).await)
            .await
    }

    /// Members ordered by email, after `after` (an email), at most `limit`
    /// (1–200); the second value says whether more follow.
    pub async fn list_members(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, bool), MembersError> {
        let limit = limit.clamp(1, 200);
        let fetch = i32::try_from(limit + 1).unwrap_or(201);
        let after = after.unwrap_or("").to_owned();
        let mut rows: Vec<Member> = self
            .pool
            .with_tenant(tenant, async |conn| {
                diesel::sql_query(format!(
                    "SELECT {MEMBER_COLUMNS} FROM users u WHERE u.role <> 'api_user' \
                     AND lower(u.email) > $1 ORDER BY lower(u.email) LIMIT $2"
                ))
                .bind::<Text, _>(&after)
                .bind::<Integer, _>(fetch)
                .load(conn)
                .await
                .map_err(MembersError::from)
            })
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// Takes a member off the leaderboard (or back on).
    pub async fn set_leaderboard_opt_out(
        &self,
        tenant: &str,
        member: Uuid,
        opt_out: bool,
    ) -> Result<(), MembersError> {
        let n = self
            .pool
            .with_tenant(tenant, async |conn| {
                diesel::sql_query(
                    "UPDATE users SET leaderboard_opt_out = $2, updated_at = now() WHERE id = $1",
                )
                .bind::<SqlUuid, _>(member)
                .bind::<Bool, _>(opt_out)
                .execute(conn)
                .await
                .map_err(MembersError::from)
            })
            .await?;
        if n == 0 {
            return Err(MembersError::NotFound("member"));
        }
        Ok(())
    }
}
