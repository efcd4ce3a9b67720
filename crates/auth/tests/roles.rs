//! Roles as data: the tenant's `roles` table decides what a role may do, a
//! change applies to credentials issued before it (at once through this
//! process, within `role_cache_secs` on another), unknown scopes and
//! deleting built-in or assigned roles are refused, and no change may leave
//! the tenant without an active user who manages users and roles.
use rampart_auth::{AuthError, Permission, Role, RoleChange, authorize};
use rampart_testkit::{acme, globex};

use crate::common::{PASSWORD, config, ctx, server, server_with};

fn change(scopes: &[&str]) -> RoleChange {
    RoleChange {
        permissions: scopes.iter().map(|s| (*s).to_owned()).collect(),
        description: None,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn the_migration_seeds_every_built_in_role_with_its_defaults() {
    let s = server().await;
    let roles = s.auth.roles().list(&acme()).await.unwrap();
    for role in Role::BUILT_IN {
        let stored = roles
            .iter()
            .find(|r| r.name == *role)
            .unwrap_or_else(|| panic!("{role} not seeded"));
        assert!(stored.built_in, "{role}");
        let defaults = role
            .default_permissions()
            .iter()
            .map(|p| p.scope().to_owned())
            .collect();
        assert_eq!(
            sorted(stored.permissions.clone()),
            sorted(defaults),
            "{role}"
        );
    }
    // The five EPV tiers, each a superset of the one below.
    let tiers = [
        Role::Viewer,
        Role::Analyst,
        Role::SeniorAnalyst,
        Role::Manager,
        Role::Admin,
    ];
    for pair in tiers.windows(2) {
        let (low, high) = (pair[0].default_permissions(), pair[1].default_permissions());
        assert!(low.iter().all(|p| high.contains(p)), "{:?}", pair);
        assert!(high.len() > low.len(), "{:?}", pair);
    }
}

#[tokio::test]
async fn a_changed_role_applies_to_keys_issued_before_within_the_cache_bound() {
    let s = server().await;
    let a = &s.auth;
    // Another replica over the same database, caching roles for an hour.
    let replica = replica_of(a, 3600).await;

    let ana = a
        .register(&acme(), "ana@acme.test", "Ana", PASSWORD, Role::Analyst)
        .await
        .unwrap();
    let scopes = ["cases:read".to_owned(), "cases:write".to_owned()];
    let key = a
        .create_api_key(&acme(), ana.id, "k", &scopes, None, &ctx("10.1.1.1"))
        .await
        .unwrap();
    // Not beyond the role: an analyst does not share.
    assert!(matches!(
        a.create_api_key(
            &acme(),
            ana.id,
            "k2",
            &["cases:share".into()],
            None,
            &ctx("10.1.1.1")
        )
        .await,
        Err(AuthError::Forbidden(_))
    ));
    let p = a.authenticate_api_key(&acme(), &key.key).await.unwrap();
    assert_eq!(p.role, Role::Analyst);
    assert!(authorize(&p, Permission::CasesWrite).is_ok());
    let p = replica
        .authenticate_api_key(&acme(), &key.key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::CasesWrite).is_ok());

    // The admin takes cases:write away from analysts.
    let reduced = [
        "portfolio:read",
        "market:read",
        "analytics:read",
        "account:manage",
        "cases:read",
    ];
    let updated = a
        .roles()
        .update(
            &acme(),
            Role::Analyst,
            &change(&reduced),
            "user:admin",
            &ctx("10.0.0.1"),
        )
        .await
        .unwrap();
    assert!(!updated.permissions.contains(&"cases:write".to_owned()));
    assert_eq!(updated.users, 1);
    // This process sees it at once, on the key issued before.
    let p = a.authenticate_api_key(&acme(), &key.key).await.unwrap();
    assert!(authorize(&p, Permission::CasesWrite).is_err());
    assert!(authorize(&p, Permission::CasesRead).is_ok());
    // The other replica within its bound: still its cached verdict, and
    // the new one once the cache is gone (what the TTL does).
    let p = replica
        .authenticate_api_key(&acme(), &key.key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::CasesWrite).is_ok());
    replica.roles().roles_changed_elsewhere();
    let p = replica
        .authenticate_api_key(&acme(), &key.key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::CasesWrite).is_err());

    // Another tenant's analysts are untouched.
    let globex = a.roles().get(&globex(), Role::Analyst).await.unwrap();
    assert!(globex.permissions.contains(&"cases:write".to_owned()));

    // Audited with before and after.
    let log = a.audit_log(&acme(), 50).await.unwrap();
    let row = log.iter().find(|r| r.action == "role_update").unwrap();
    let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap();
    assert_eq!(detail["role"], "analyst");
    assert!(
        detail["before"]["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "cases:write")
    );
    assert_eq!(detail["after"]["permissions"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn unknown_scopes_bad_names_built_in_and_assigned_roles_are_refused() {
    let s = server().await;
    let a = &s.auth;
    let roles = a.roles();
    let c = ctx("10.0.0.2");
    assert!(matches!(
        roles
            .update(&acme(), Role::Viewer, &change(&["portfolio:read", "root:all"]), "t", &c)
            .await,
        Err(AuthError::UnknownPermission(s)) if s == "root:all"
    ));
    // OIDC scopes are no permissions either.
    assert!(matches!(
        roles
            .update(&acme(), Role::Viewer, &change(&["openid"]), "t", &c)
            .await,
        Err(AuthError::UnknownPermission(_))
    ));
    // Nothing changed.
    let viewer = roles.get(&acme(), Role::Viewer).await.unwrap();
    assert!(viewer.permissions.contains(&"portfolio:read".to_owned()));
    assert_eq!(viewer.permissions.len(), 5);

    assert!("Desk Lead".parse::<Role>().is_err());
    let desk = Role::parse("desk_lead").unwrap();
    let created = roles
        .create(
            &acme(),
            desk,
            &change(&["cases:read", "cases:share", "cases:read"]),
            "t",
            &c,
        )
        .await
        .unwrap();
    assert_eq!(created.permissions, ["cases:read", "cases:share"]);
    assert!(!created.built_in);
    assert!(matches!(
        roles.create(&acme(), desk, &change(&[]), "t", &c).await,
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        roles.get(&globex(), desk).await,
        Err(AuthError::NotFound(_))
    ));

    let bob = a
        .register(&acme(), "bob@acme.test", "Bob", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    assert!(matches!(
        a.accounts()
            .assign_role(&acme(), bob.id, Role::parse("nobody").unwrap())
            .await,
        Err(AuthError::UnknownRole(_))
    ));
    a.accounts()
        .assign_role(&acme(), bob.id, desk)
        .await
        .unwrap();
    assert!(matches!(
        roles.delete(&acme(), desk, "t", &c).await,
        Err(AuthError::RoleInUse(_))
    ));
    assert!(matches!(
        roles.delete(&acme(), Role::Analyst, "t", &c).await,
        Err(AuthError::RoleBuiltIn(_))
    ));
    a.accounts()
        .assign_role(&acme(), bob.id, Role::Viewer)
        .await
        .unwrap();
    roles.delete(&acme(), desk, "t", &c).await.unwrap();
    assert!(matches!(
        roles.delete(&acme(), desk, "t", &c).await,
        Err(AuthError::NotFound(_))
    ));
    let log = a.audit_log(&acme(), 50).await.unwrap();
    for action in ["role_create", "role_delete"] {
        assert!(log.iter().any(|r| r.action == action), "{action}");
    }
}

#[tokio::test]
async fn the_last_role_that_manages_users_and_roles_keeps_those_rights() {
    let s = server_with(config()).await;
    let a = &s.auth;
    let roles = a.roles();
    let c = ctx("10.0.0.3");
    a.register(&acme(), "root@acme.test", "Root", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let all: Vec<&str> = Permission::ALL.iter().map(|p| p.scope()).collect();
    let without =
        |gone: &str| -> Vec<&str> { all.iter().copied().filter(|s| *s != gone).collect() };
    for gone in ["tenant:admin", "users:manage"] {
        assert!(matches!(
            roles
                .update(&acme(), Role::Admin, &change(&without(gone)), "t", &c)
                .await,
            Err(AuthError::RoleLockout)
        ));
    }
    // Other rights can go.
    roles
        .update(&acme(), Role::Admin, &change(&without("trade")), "t", &c)
        .await
        .unwrap();

    // With another active user on a role that keeps both, it can go.
    let owner = Role::parse("owner").unwrap();
    roles
        .create(
            &acme(),
            owner,
            &change(&["tenant:admin", "users:manage"]),
            "t",
            &c,
        )
        .await
        .unwrap();
    let olga = a
        .register(&acme(), "olga@acme.test", "Olga", PASSWORD, owner)
        .await
        .unwrap();
    roles
        .update(
            &acme(),
            Role::Admin,
            &change(&without("tenant:admin")),
            "t",
            &c,
        )
        .await
        .unwrap();
    // Now the owner role is the last one.
    assert!(matches!(
        roles
            .update(&acme(), owner, &change(&["users:manage"]), "t", &c)
            .await,
        Err(AuthError::RoleLockout)
    ));
    // A disabled holder does not count.
    a.accounts().disable_user(&acme(), olga.id).await.unwrap();
    assert!(matches!(
        roles
            .update(&acme(), Role::Admin, &change(&["account:manage"]), "t", &c)
            .await,
        Err(AuthError::RoleLockout)
    ));
    let admin = roles.get(&acme(), Role::Admin).await.unwrap();
    assert!(admin.permissions.contains(&"users:manage".to_owned()));
}

/// Another replica learns of a role change from the change feed (one query
/// for all tenants) within its `role_cache_secs`, with nothing called on it.
#[tokio::test]
async fn another_replica_sees_a_role_change_through_the_change_feed() {
    let s = server().await;
    let a = &s.auth;
    let replica = replica_of(a, 1).await;
    let ana = a
        .register(&acme(), "ana@acme.test", "Ana", PASSWORD, Role::Analyst)
        .await
        .unwrap();
    let key = a
        .create_api_key(
            &acme(),
            ana.id,
            "k",
            &["cases:read".to_owned(), "cases:write".to_owned()],
            None,
            &ctx("10.1.1.1"),
        )
        .await
        .unwrap();
    let p = replica
        .authenticate_api_key(&acme(), &key.key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::CasesWrite).is_ok());
    a.roles()
        .update(
            &acme(),
            Role::Analyst,
            &change(&["portfolio:read", "cases:read"]),
            "user:admin",
            &ctx("10.0.0.1"),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let p = replica
        .authenticate_api_key(&acme(), &key.key)
        .await
        .unwrap();
    assert!(authorize(&p, Permission::CasesWrite).is_err());
    assert!(authorize(&p, Permission::CasesRead).is_ok());
    // Another tenant's analysts are untouched.
    let globex = replica.roles().get(&globex(), Role::Analyst).await.unwrap();
    assert!(globex.permissions.contains(&"cases:write".to_owned()));
}

/// Another replica over the same database whose view of the role changes
/// may be `role_cache_secs` old.
async fn replica_of(
    a: &rampart_auth::AuthServer,
    role_cache_secs: u64,
) -> rampart_auth::AuthServer {
    let mut config = config();
    config.role_cache_secs = role_cache_secs;
    rampart_auth::AuthServer::with_memory_keys(a.pool().clone(), config)
        .await
        .unwrap()
}
