//! Members: the tenant's users as a tenant admin manages them.
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::{broker_accounts, lower, users};
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The user id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Email (lowercase).
    pub email: String,
    /// Role.
    pub role: String,
    /// `active`, `pending` (never logged in) or `disabled`.
    pub status: String,
    /// Whether a broker account is attached (its keys are never returned).
    pub broker_attached: bool,
    /// Whether the member left the leaderboard.
    pub leaderboard_opt_out: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A member row: `users` left-joined with its (at most one) broker account.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Pg))]
struct MemberRow {
    id: UserId,
    #[diesel(column_name = display_name)]
    name: String,
    email: String,
    role: String,
    status: String,
    #[diesel(select_expression = broker_accounts::id.nullable().is_not_null())]
    #[diesel(select_expression_type = diesel::dsl::IsNotNull<diesel::dsl::Nullable<broker_accounts::id>>)]
    broker_attached: bool,
    leaderboard_opt_out: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(r: MemberRow) -> Self {
        Member {
            id: r.id,
            name: r.name,
            email: r.email,
            role: r.role,
            status: r.status,
            broker_attached: r.broker_attached,
            leaderboard_opt_out: r.leaderboard_opt_out,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
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
    // raw SQL: the conflict target is the expression index `lower(email)`, and `xmax` tells an insert from an update.
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
    users::table
        .left_join(broker_accounts::table)
        .filter(users::id.eq(id))
        .select(MemberRow::as_select())
        .first(conn)
        .await
        .optional()?
        .map(Member::from)
        .ok_or(MembersError::NotFound("member"))
}

impl Members {
    /// Creates a member (status `pending` until they set up credentials) or
    /// updates the name and role of the member with that email.
    pub async fn upsert_member(
        &self,
        tenant: &TenantSlug,
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
    pub async fn member(&self, tenant: &TenantSlug, id: UserId) -> Result<Member, MembersError> {
        self.pool
            .with_tenant(tenant, async |conn| member_in(conn, id.into()).await)
            .await
    }

    /// Members ordered by email, after `after` (an email), at most `limit`
    /// (1–200); the second value says whether more follow.
    pub async fn list_members(
        &self,
        tenant: &TenantSlug,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, bool), MembersError> {
        let limit = limit.clamp(1, 200);
        let fetch = i64::try_from(limit + 1).unwrap_or(201);
        let after = after.unwrap_or("").to_owned();
        let rows: Vec<MemberRow> = self
            .pool
            .with_tenant(tenant, async |conn| {
                users::table
                    .left_join(broker_accounts::table)
                    .filter(users::role.ne("api_user"))
                    .filter(lower(users::email).gt(&after))
                    .order(lower(users::email))
                    .limit(fetch)
                    .select(MemberRow::as_select())
                    .load(conn)
                    .await
                    .map_err(MembersError::from)
            })
            .await?;
        let mut rows: Vec<Member> = rows.into_iter().map(Member::from).collect();
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// Takes a member off the leaderboard (or back on).
    pub async fn set_leaderboard_opt_out(
        &self,
        tenant: &TenantSlug,
        member: UserId,
        opt_out: bool,
    ) -> Result<(), MembersError> {
        let n = self
            .pool
            .with_tenant(tenant, async |conn| {
                diesel::update(users::table.find(member))
                    .set((
                        users::leaderboard_opt_out.eq(opt_out),
                        users::updated_at.eq(now),
                    ))
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
