//! Members: the tenant's users as a tenant admin manages them.
use chrono::{DateTime, Utc};
use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rampart_auth::directory::{self, Account};
use rampart_ids::UserId;
use rampart_tenancy::TenantSlug;
use serde::{Deserialize, Serialize};

use crate::schema::broker_accounts;
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

/// Members from their accounts (rampart-auth's) and this crate's rows: an
/// attached broker account, the leaderboard flag.
async fn members_of(
    conn: &mut AsyncPgConnection,
    accounts: Vec<Account>,
) -> Result<Vec<Member>, MembersError> {
    let ids: Vec<UserId> = accounts.iter().map(|a| a.id).collect();
    let attached: HashSet<UserId> = broker_accounts::table
        .filter(broker_accounts::user_id.eq_any(&ids))
        .select(broker_accounts::user_id)
        .load::<UserId>(conn)
        .await?
        .into_iter()
        .collect();
    let opted_out: HashSet<UserId> = directory::leaderboard_opt_outs(conn, &ids)
        .await?
        .into_iter()
        .collect();
    Ok(accounts
        .into_iter()
        .map(|a| Member {
            id: a.id,
            name: a.display_name,
            email: a.email,
            role: a.role,
            status: a.status,
            broker_attached: attached.contains(&a.id),
            leaderboard_opt_out: opted_out.contains(&a.id),
            created_at: a.created_at,
            updated_at: a.updated_at,
        })
        .collect())
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

/// Inserts or updates by email, in the caller's transaction.
pub(crate) async fn upsert_in(
    conn: &mut AsyncPgConnection,
    input: &MemberInput,
) -> Result<(UserId, bool), MembersError> {
    directory::upsert_pending(conn, &input.email, &input.name, &input.role)
        .await?
        // The address is a machine client's: nothing was written.
        .ok_or_else(|| MembersError::invalid("email", "belongs to a machine client"))
}

pub(crate) async fn member_in(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<Member, MembersError> {
    let account = directory::account(conn, id).await?;
    let account = account.ok_or(MembersError::NotFound("member"))?;
    let mut members = members_of(conn, vec![account]).await?;
    members.pop().ok_or(MembersError::NotFound("member"))
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
            .with_tenant(tenant, async |conn| member_in(conn, id).await)
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
        let mut rows: Vec<Member> = self
            .pool
            .with_tenant(tenant, async |conn| {
                let accounts = directory::people_after(conn, &after, fetch).await?;
                members_of(conn, accounts).await
            })
            .await?;
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
        let found = self
            .pool
            .with_tenant(tenant, async |conn| {
                directory::set_leaderboard_opt_out(conn, member, opt_out)
                    .await
                    .map_err(MembersError::from)
            })
            .await?;
        if !found {
            return Err(MembersError::NotFound("member"));
        }
        Ok(())
    }
}
