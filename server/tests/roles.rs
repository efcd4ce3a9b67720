//! EPV Valuation Pro's five-tier permissions (seed 002) as tenant data, over
//! HTTP: the admin lists the tiers, users of each tier are allowed or
//! refused on representative routes (cases included), the admin takes a
//! permission away from `analyst` and an analyst's token issued before is
//! refused on that route at once (`auth.role_cache_secs = 0`), unknown
//! permissions and a lockout are refused with their codes, and a custom role
//! is created, given to a user and deleted once no one has it.
use crate::common::{PASSWORD, count, env_with, epv_case, mint_token_with};
use rampart_auth::{Permission, Role};
use rampart_testkit::acme;
use reqwest::Method;
use serde_json::{Value, json};

const T: &str = "/api/v1/t/acme";

/// Every permission scope: the role alone narrows what a token may do.
fn all_scopes() -> String {
    Permission::ALL
        .iter()
        .map(|p| p.scope())
        .collect::<Vec<_>>()
        .join(" ")
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn five_tiers_are_data_a_tenant_admin_changes() {
    let env = env_with(|c| c.auth.role_cache_secs = 0).await;
    let auth = env.auth();
    let scopes = all_scopes();
    let mut users = Vec::new();
    for (email, role) in [
        ("root@acme.test", Role::Admin),
        ("vera@acme.test", Role::Viewer),
        ("ana@acme.test", Role::Analyst),
        ("sam@acme.test", Role::SeniorAnalyst),
        ("max@acme.test", Role::Manager),
    ] {
        let user = auth
            .register(&acme(), email, "Test", PASSWORD, role)
            .await
            .unwrap();
        let token = mint_token_with(
            &env.state,
            "acme",
            user.id.into(),
            role,
            "web",
            &scopes,
            None,
        )
        .await;
        users.push((user.id, token));
    }
    let [
        (_, admin),
        (vera_id, viewer),
        (_, analyst),
        (sam_id, senior),
        (_, manager),
    ] = users.try_into().unwrap();

    // The admin lists the five tiers with their permissions.
    let listed = env.with(&admin).get(200, &format!("{T}/roles")).await;
    let roles = listed["data"].as_array().unwrap();
    for tier in ["viewer", "analyst", "senior_analyst", "manager", "admin"] {
        let role = roles.iter().find(|r| r["name"] == tier).unwrap();
        assert_eq!(role["built_in"], true, "{tier}");
        assert_eq!(role["users"], 1, "{tier}");
    }
    let perms = |name: &str| -> Vec<String> {
        let role = roles.iter().find(|r| r["name"] == name).unwrap();
        role["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(perms("analyst").contains(&"cases:write".to_owned()));
    assert!(!perms("analyst").contains(&"cases:share".to_owned()));
    assert!(perms("senior_analyst").contains(&"cases:share".to_owned()));
    // Listing needs users:manage: a manager does not manage users.
    env.with(&manager).get(403, &format!("{T}/roles")).await;

    // Each tier on representative routes.
    let cases = format!("{T}/cases");
    for token in [&viewer, &analyst, &senior, &manager, &admin] {
        env.with(token).get(200, &cases).await;
    }
    env.with(&viewer).post(403, &cases, epv_case("ACME")).await;
    let mut case_of = Vec::new();
    for token in [&analyst, &senior, &manager] {
        let created = env.with(token).post(201, &cases, epv_case("ACME")).await;
        case_of.push(created["data"]["id"].as_str().unwrap().to_owned());
    }
    let share = json!({"user_id": vera_id, "access": "comment"});
    // An analyst may not share their own case; a senior analyst may.
    env.with(&analyst)
        .post(
            403,
            &format!("{cases}/{}/shares", case_of[0]),
            share.clone(),
        )
        .await;
    env.with(&senior)
        .post(
            200,
            &format!("{cases}/{}/shares", case_of[1]),
            share.clone(),
        )
        .await;
    // The shared case is the viewer's to read and comment on.
    env.with(&viewer)
        .get(200, &format!("{cases}/{}", case_of[1]))
        .await;
    env.with(&viewer)
        .post(
            201,
            &format!("{cases}/{}/comments", case_of[1]),
            json!({"body": "looks cheap"}),
        )
        .await;
    // The audit log: managers and admins.
    let audit = format!("{T}/audit");
    for token in [&viewer, &analyst, &senior] {
        env.with(token).get(403, &audit).await;
    }
    env.with(&manager).get(200, &audit).await;
    env.with(&admin).get(200, &audit).await;
    // Users and roles: admins only.
    env.with(&manager).get(403, &format!("{T}/users")).await;
    env.with(&admin).get(200, &format!("{T}/users")).await;
    let analyst_role = format!("{T}/roles/analyst");
    let reduced = json!({"permissions": [
        "portfolio:read", "market:read", "analytics:read", "account:manage", "cases:read"
    ]});
    env.with(&manager)
        .put(403, &analyst_role, reduced.clone())
        .await;

    // The admin takes cases:write away from analysts: the analyst's token,
    // issued before, may read cases but no longer create one.
    let changed = env
        .with(&admin)
        .put(
            200,
            &analyst_role,
            json!({"permissions": reduced["permissions"], "description": "Reads cases"}),
        )
        .await;
    assert_eq!(changed["data"]["description"], "Reads cases");
    env.with(&analyst).post(403, &cases, epv_case("ACME")).await;
    env.with(&analyst)
        .patch(
            403,
            &format!("{cases}/{}", case_of[0]),
            json!({"name": "x"}),
        )
        .await;
    env.with(&analyst).get(200, &cases).await;
    // Senior analysts keep theirs.
    env.with(&senior).post(201, &cases, epv_case("ACME")).await;
    assert_eq!(
        count(
            &env.state,
            "acme",
            "SELECT count(*) AS n FROM audit_log WHERE action = 'role_update'"
        )
        .await,
        1
    );

    // Refusals with stable codes, nothing changed.
    let (s, body) = env
        .api()
        .call(
            Method::PUT,
            &analyst_role,
            Some(&admin),
            Some(json!({"permissions": ["cases:read", "cases:everything"]})),
        )
        .await;
    assert_eq!((s, code(&body)), (400, "unknown_permission"), "{body}");
    let (s, body) = env
        .api()
        .call(
            Method::PUT,
            &format!("{T}/roles/admin"),
            Some(&admin),
            Some(json!({"permissions": ["users:manage", "audit:read"]})),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "role_lockout"), "{body}");
    env.with(&admin)
        .put(404, &format!("{T}/roles/nobody"), reduced.clone())
        .await;
    env.with(&admin)
        .put(400, &analyst_role, json!({"permissions": [], "x": 1}))
        .await;
    env.with(&analyst).get(200, &cases).await;
    env.with(&admin).get(200, &format!("{T}/users")).await;

    // A custom role: created, given to a user, in use, then deleted.
    let created = env
        .with(&admin)
        .post(
            201,
            &format!("{T}/roles"),
            json!({"name": "desk_lead", "permissions": ["cases:read", "cases:write", "cases:share", "account:manage"]}),
        )
        .await;
    assert_eq!(created["data"]["built_in"], false);
    env.with(&admin)
        .post(
            409,
            &format!("{T}/roles"),
            json!({"name": "desk_lead", "permissions": []}),
        )
        .await;
    env.with(&admin)
        .post(
            400,
            &format!("{T}/roles"),
            json!({"name": "Desk Lead", "permissions": []}),
        )
        .await;
    let vera_role = format!("{T}/users/{vera_id}/role");
    let (s, body) = env
        .api()
        .call(
            Method::PUT,
            &vera_role,
            Some(&admin),
            Some(json!({"role": "nobody"})),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let assigned = env
        .with(&admin)
        .put(200, &vera_role, json!({"role": "desk_lead"}))
        .await;
    assert_eq!(assigned["data"]["role"], "desk_lead");
    // Vera's token now acts with the new role: she creates and shares.
    let vera = mint_token_with(
        &env.state,
        "acme",
        vera_id.into(),
        Role::parse("desk_lead").unwrap(),
        "web",
        &scopes,
        None,
    )
    .await;
    let own = env.with(&vera).post(201, &cases, epv_case("ACME")).await;
    let own = own["data"]["id"].as_str().unwrap();
    env.with(&vera)
        .post(
            200,
            &format!("{cases}/{own}/shares"),
            json!({"user_id": sam_id, "access": "view"}),
        )
        .await;
    env.with(&vera).get(403, &format!("{T}/portfolios")).await;
    let desk = format!("{T}/roles/desk_lead");
    let (s, body) = env
        .api()
        .call(Method::DELETE, &desk, Some(&admin), None)
        .await;
    assert_eq!((s, code(&body)), (409, "role_in_use"), "{body}");
    let (s, body) = env
        .api()
        .call(
            Method::DELETE,
            &format!("{T}/roles/viewer"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, code(&body)), (409, "role_built_in"), "{body}");
    env.with(&admin)
        .put(200, &vera_role, json!({"role": "viewer"}))
        .await;
    env.with(&admin).delete(200, &desk).await;
    env.with(&admin).delete(404, &desk).await;
    // A token naming a deleted role may do nothing.
    env.with(&vera).get(403, &cases).await;
}
