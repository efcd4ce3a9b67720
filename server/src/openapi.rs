//! The OpenAPI 3 document, generated from the handlers' annotations
//! (utoipa) and completed with what every route shares; served at
//! `/openapi.json` (`routes::openapi`) and printed by `rampart openapi`.
use serde_json::{Value, json};
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart",
        description = "Multi-tenant trading and portfolio platform"
    ),
    paths(
        crate::routes::health::health,
        crate::routes::health::ready,
        crate::routes::admin::metrics,
        crate::routes::admin::whoami,
        crate::routes::admin::list_tenants,
        crate::routes::admin::provision,
        crate::routes::admin::tenant,
        crate::routes::admin::lifecycle,
        crate::routes::admin::migrate,
        crate::routes::admin::audit,
        crate::routes::admin::keys,
        crate::routes::admin::rotate_keys,
        crate::routes::admin::revoke_key,
        crate::routes::api_v1::me,
        crate::routes::api_v1::sessions,
        crate::routes::api_v1::revoke_session,
        crate::routes::api_v1::quote,
        crate::routes::notify::register,
        crate::routes::notify::resend_verification,
        crate::routes::notify::confirm_email,
        crate::routes::notify::forgot_password,
        crate::routes::notify::reset_password,
        crate::routes::notify::list_alerts,
        crate::routes::notify::create_alert,
        crate::routes::notify::get_alert,
        crate::routes::notify::delete_alert,
        crate::routes::admin_page::health,
        crate::routes::account::change_password,
        crate::routes::account::begin_totp,
        crate::routes::account::confirm_totp,
        crate::routes::account::disable_totp,
        crate::routes::account::revoke_other_sessions,
        crate::routes::account::logout,
        crate::routes::account::create_api_key,
        crate::routes::account::list_api_keys,
        crate::routes::account::revoke_api_key,
        crate::routes::account::tenant_api_keys,
        crate::routes::account::revoke_tenant_api_key,
        crate::routes::members::list_members,
        crate::routes::members::upsert_member,
        crate::routes::members::preview_import,
        crate::routes::members::commit_import,
        crate::routes::members::attach_broker,
        crate::routes::members::detach_broker,
        crate::routes::members::leaderboard,
        crate::routes::members::my_portfolio,
        crate::routes::members::my_portfolio_csv,
        crate::routes::members::my_portfolio_svg,
        crate::routes::members::leaderboard_opt_out,
        crate::routes::members::trigger_snapshot,
        crate::routes::portfolios::trigger_metrics,
        crate::routes::market_api::trigger_ingest,
        crate::routes::portfolios::trigger_weekly_report,
        crate::routes::cases::list,
        crate::routes::cases::create,
        crate::routes::cases::get,
        crate::routes::cases::update,
        crate::routes::cases::delete,
        crate::routes::cases::versions,
        crate::routes::cases::version,
        crate::routes::cases::diff,
        crate::routes::cases::shares,
        crate::routes::cases::share,
        crate::routes::cases::revoke,
        crate::routes::cases::comments,
        crate::routes::cases::comment,
        crate::routes::cases::analyses,
        crate::routes::cases::attach_analysis,
        crate::routes::cases::activity,
        crate::routes::cases::export,
        crate::routes::cases::export_csv,
        crate::routes::cases::import,
        crate::routes::portfolios::list,
        crate::routes::portfolios::create,
        crate::routes::portfolios::get,
        crate::routes::portfolios::update,
        crate::routes::portfolios::delete,
        crate::routes::portfolios::add_position,
        crate::routes::portfolios::update_position,
        crate::routes::portfolios::remove_position,
        crate::routes::portfolios::versions,
        crate::routes::portfolios::version,
        crate::routes::portfolios::shares,
        crate::routes::portfolios::share,
        crate::routes::portfolios::revoke,
        crate::routes::portfolios::comments,
        crate::routes::portfolios::comment,
        crate::routes::portfolios::activity,
        crate::routes::portfolios::export_csv,
        crate::routes::portfolios::import_csv,
        crate::routes::portfolios::analytics,
        crate::routes::portfolios::performance_csv,
        crate::routes::portfolios::metrics,
        crate::routes::portfolios::metrics_csv,
        crate::routes::portfolios::equity_chart,
        crate::routes::portfolios::returns_chart,
        crate::routes::portfolios::correlation,
        crate::routes::portfolios::monte_carlo,
        crate::routes::portfolios::fan_chart,
        crate::routes::users::profile,
        crate::routes::users::update_profile,
        crate::routes::users::preferences,
        crate::routes::users::update_preferences,
        crate::routes::users::activity,
        crate::routes::users::import,
        crate::routes::users::list_users,
        crate::routes::users::set_role,
        crate::routes::users::set_status,
        crate::routes::market_api::quotes,
        crate::routes::market_api::bars,
        crate::routes::market_api::search,
        crate::routes::market_api::fundamentals,
        crate::routes::market_api::news,
        crate::routes::tradestation::tradestation_bars,
        crate::routes::tradestation::tradestation_symbols,
        crate::routes::connections::list_connections,
        crate::routes::connections::disconnect,
        crate::routes::stream::stream,
        crate::routes::market_stream::market_stream,
        crate::routes::settings::get_settings,
        crate::routes::settings::patch_settings,
        crate::routes::settings::list_features,
        crate::routes::settings::get_feature,
        crate::routes::settings::put_feature,
        crate::routes::settings::admin_get_settings,
        crate::routes::settings::admin_patch_settings,
        crate::routes::settings::admin_list_features,
        crate::routes::settings::admin_get_feature,
        crate::routes::settings::admin_put_feature,
        crate::routes::tenant_audit::list,
        crate::routes::tenant_audit::export,
        crate::routes::tenant_audit::admin_list,
        crate::routes::tenant_audit::admin_export,
        crate::routes::tenant_audit::tree_head,
        crate::routes::tenant_audit::inclusion,
        crate::routes::tenant_audit::consistency,
        crate::routes::tenant_audit::admin_tree_head,
        crate::routes::tenant_audit::admin_inclusion,
        crate::routes::tenant_audit::admin_consistency,
        crate::routes::tenant_audit::admin_verify,
        crate::routes::invitations::invite,
        crate::routes::invitations::list,
        crate::routes::invitations::resend,
        crate::routes::invitations::revoke,
        crate::routes::invitations::accept,
        crate::routes::roles::list,
        crate::routes::roles::create,
        crate::routes::roles::update,
        crate::routes::roles::delete,
        crate::routes::clients::create,
        crate::routes::clients::list,
        crate::routes::clients::show,
        crate::routes::clients::update,
        crate::routes::clients::rotate_secret,
        crate::routes::clients::disable,
        crate::routes::clients::delete,
        crate::routes::clients::admin_create,
        crate::routes::clients::admin_list,
        crate::routes::clients::admin_show,
        crate::routes::clients::admin_update,
        crate::routes::clients::admin_rotate_secret,
        crate::routes::clients::admin_disable,
        crate::routes::clients::admin_delete,
        crate::routes::idps::create,
        crate::routes::idps::list,
        crate::routes::idps::show,
        crate::routes::idps::update,
        crate::routes::idps::delete,
        crate::routes::idps::admin_create,
        crate::routes::idps::admin_list,
        crate::routes::idps::admin_show,
        crate::routes::idps::admin_update,
        crate::routes::idps::admin_delete,
        crate::graphql::execute,
        crate::graphql::subscription::subscribe,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorCode,
        crate::meta::Meta,
        crate::readiness::Readiness,
        crate::readiness::PublicReadiness,
        crate::readiness::Dependency,
        crate::routes::admin::ProvisionBody,
        crate::routes::admin::LifecycleBody,
        crate::routes::admin::RotateBody,
        crate::routes::settings::FlagBody,
        crate::routes::invitations::InviteBody,
        crate::routes::invitations::ResendBody,
        crate::routes::invitations::AcceptBody,
        crate::routes::roles::CreateRoleBody,
        crate::routes::roles::UpdateRoleBody,
        crate::routes::clients::CreateClientBody,
    ))
)]
pub struct ApiDoc;

/// The document as JSON text.
pub fn document() -> String {
    serde_json::to_string_pretty(&document_value()).unwrap_or_else(|_| "{}".into())
}

/// The document: what the handlers' annotations say, completed from the
/// tables below with what every route shares (path parameters, the bearer
/// scheme, the JSON envelope of every answer and the error statuses the
/// middleware and extractors produce), so that it describes what the server
/// really answers. `server/tests/schemathesis.rs` holds it to that.
pub fn document_value() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    complete(&mut doc);
    doc
}

/// The schema of each path parameter, by name.
fn path_parameter_schema(name: &str) -> Value {
    match name {
        "tenant" | "slug" => json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{2,39}$"}),
        "id" | "position" | "user" | "member" | "preview" => {
            json!({"type": "string", "format": "uuid"})
        }
        "version" => json!({"type": "integer", "format": "int32"}),
        "action" => json!({"type": "string", "enum": [
            "suspend", "resume", "deactivate", "reactivate", "purge"
        ]}),
        _ => json!({"type": "string"}),
    }
}

/// Query parameters the annotations do not declare: (path, name, schema).
fn extra_query_parameters(path: &str) -> Vec<(&'static str, Value)> {
    match path {
        "/api/v1/t/{tenant}/leaderboard" => vec![
            (
                "period",
                json!({"type": "string", "enum": ["day", "week", "month"]}),
            ),
            ("sort", json!({"type": "string", "enum": ["return", "pnl"]})),
            ("cursor", json!({"type": "string"})),
            ("limit", json!({"type": "integer", "minimum": 0})),
        ],
        _ => Vec::new(),
    }
}

/// Operations whose body may be left out.
const OPTIONAL_BODIES: &[&str] = &["/admin/keys/rotate", "/admin/tenants/{slug}/{action}"];

/// Operations of `/api/v1` that take no bearer token.
const PUBLIC_OPERATIONS: &[&str] = &[
    "/api/v1/t/{tenant}/register",
    "/api/v1/t/{tenant}/email/verify",
    "/api/v1/t/{tenant}/password/forgot",
    "/api/v1/t/{tenant}/password/reset",
];

/// An object of exactly these properties (the bodies are
/// `deny_unknown_fields`).
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties,
           "additionalProperties": false})
}

/// The properties a position has in and out, with `more` of its own.
fn position_fields(more: Value) -> Value {
    let mut fields = json!({
        "symbol": {"type": "string"},
        "allocation_type": {"type": "string", "enum": ["quantity", "weight"]},
        "quantity": {"type": ["number", "null"]},
        "target_weight": {"type": ["number", "null"]},
        "purchase_price": {"type": ["number", "null"]},
        "purchase_date": {"type": ["string", "null"], "format": "date"},
        "sector": {"type": ["string", "null"]}
    });
    if let (Some(fields), Value::Object(more)) = (fields.as_object_mut(), more) {
        fields.extend(more);
    }
    fields
}

fn position_input() -> Value {
    object(
        &["symbol"],
        position_fields(json!({"notes": {"type": ["string", "null"]}})),
    )
}

fn portfolio_fields() -> Value {
    json!({
        "name": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "base_currency": {"type": ["string", "null"]},
        "is_public": {"type": ["boolean", "null"]},
        "settings": {}
    })
}

/// The fields an upstream provider's create and change bodies share.
fn idp_fields() -> Value {
    json!({
        "displayName": {"type": "string"},
        "issuer": {"type": "string", "format": "uri"},
        "clientId": {"type": "string"},
        "clientSecret": {"type": "string"},
        "redirectUri": {"type": "string", "format": "uri"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "authorizationEndpoint": {"type": "string", "format": "uri"},
        "tokenEndpoint": {"type": "string", "format": "uri"},
        "jwksUri": {"type": "string", "format": "uri"}
    })
}

/// The request body of an operation whose annotation names none (the
/// library crates' input types carry no schema): (content type, schema).
fn request_body(method: &str, path: &str) -> Option<(&'static str, Value)> {
    const T: &str = "/api/v1/t/{tenant}";
    let json = |schema: Value| Some(("application/json", schema));
    if path == crate::graphql::PATH {
        // One GraphQL operation (the rest of the request is optional).
        return json(crate::graphql::GraphqlBody::openapi_schema());
    }
    // The operator's copies of tenant routes take the same bodies.
    let rest = path
        .strip_prefix(T)
        .or_else(|| path.strip_prefix("/admin/t/{tenant}"))
        .or_else(|| path.strip_prefix("/admin/tenants/{slug}"))?;
    match (method, rest) {
        // A JSON merge patch (RFC 7396) of the tenant settings.
        ("patch", "/settings") => json(json!({"type": "object"})),
        ("patch", "/clients/{client_id}") => json(object(
            &[],
            json!({
                "name": {"type": ["string", "null"]},
                "redirectUris": {"type": ["array", "null"], "items": {"type": "string"}},
                "allowedScopes": {"type": ["array", "null"], "items": {"type": "string"}}
            }),
        )),
        ("post", "/idps") => {
            let mut fields = idp_fields();
            fields["name"] = json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"});
            fields["linkVerifiedEmail"] = json!({"type": "boolean"});
            fields["newUserRole"] =
                json!({"type": "string", "enum": ["admin", "trader", "viewer"]});
            fields["enabled"] = json!({"type": "boolean"});
            json(object(
                &["name", "displayName", "issuer", "clientId", "redirectUri"],
                fields,
            ))
        }
        ("patch", "/idps/{name}") => {
            let mut fields = idp_fields();
            for (_, v) in fields.as_object_mut().into_iter().flatten() {
                v["type"] = json!([v["type"].clone(), "null"]);
            }
            fields["removeClientSecret"] = json!({"type": "boolean"});
            fields["useDiscovery"] = json!({"type": "boolean"});
            fields["linkVerifiedEmail"] = json!({"type": ["boolean", "null"]});
            fields["newUserRole"] =
                json!({"type": ["string", "null"], "enum": ["admin", "trader", "viewer", null]});
            fields["enabled"] = json!({"type": ["boolean", "null"]});
            json(object(&[], fields))
        }
        ("put", "/portfolios/{id}/positions.csv") | ("post", "/admin/members/import/preview") => {
            Some(("text/csv", json!({"type": "string"})))
        }
        ("post", "/me/import") | ("post", "/cases/import") => json(json!({})),
        ("post", "/cases") => json(object(
            &["ticker", "inputs"],
            json!({
                "ticker": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "inputs": {"type": "object", "description": "rampart_valuation::ValuationInputs"}
            }),
        )),
        ("patch", "/cases/{id}") => json(object(
            &[],
            json!({
                "ticker": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]},
                "inputs": {"type": ["object", "null"]},
                "change": {"type": ["string", "null"]}
            }),
        )),
        ("post", "/cases/{id}/analyses") => json(object(
            &["source", "document"],
            json!({
                "source": {"type": "string"},
                "document": {"type": ["object", "array"]},
                "version": {"type": ["integer", "null"]}
            }),
        )),
        ("post", "/portfolios") => {
            let mut fields = portfolio_fields();
            fields["positions"] = json!({"type": "array", "items": position_input()});
            json(object(&["name"], fields))
        }
        ("patch", "/portfolios/{id}") => {
            let mut fields = portfolio_fields();
            fields["name"] = json!({"type": ["string", "null"]});
            json(object(&[], fields))
        }
        ("post", "/portfolios/{id}/positions")
        | ("put", "/portfolios/{id}/positions/{position}") => json(position_input()),
        ("post", "/portfolios/{id}/shares") | ("post", "/cases/{id}/shares") => json(object(
            &["user_id", "access"],
            json!({
                "user_id": {"type": "string", "format": "uuid"},
                "access": {"type": "string", "enum": ["view", "comment", "edit", "admin", "owner"]},
                "expires_at": {"type": ["string", "null"], "format": "date-time"}
            }),
        )),
        ("post", "/portfolios/{id}/comments") | ("post", "/cases/{id}/comments") => json(object(
            &["body"],
            json!({
                "body": {"type": "string"},
                "parent_id": {"type": ["string", "null"], "format": "uuid"}
            }),
        )),
        ("post", "/price-alerts") => json(object(
            &["symbol", "direction", "threshold"],
            json!({
                "symbol": {"type": "string"},
                "direction": {"type": "string", "enum": ["above", "below"]},
                "threshold": {"type": "number"},
                "note": {"type": "string"}
            }),
        )),
        ("post", "/admin/members") => json(object(
            &["name", "email", "role"],
            json!({
                "name": {"type": "string"},
                "email": {"type": "string"},
                "role": {"type": "string"}
            }),
        )),
        ("post", "/admin/members/import/{preview}/commit") => {
            json(object(&["digest"], json!({"digest": {"type": "string"}})))
        }
        ("put", "/admin/members/{member}/broker") => json(object(
            &["keyId", "secretKey"],
            json!({"keyId": {"type": "string"}, "secretKey": {"type": "string"}}),
        )),
        ("put", "/leaderboard/opt-out") => {
            json(object(&["optOut"], json!({"optOut": {"type": "boolean"}})))
        }
        ("patch", "/me/profile") => json(object(
            &[],
            json!({"display_name": {"type": ["string", "null"]}}),
        )),
        ("patch", "/me/preferences") => json(object(
            &[],
            json!({
                "base_currency": {"type": ["string", "null"]},
                "theme": {"type": ["string", "null"], "enum": ["system", "light", "dark", null]},
                "default_benchmark": {"type": ["string", "null"]},
                "notifications": {"type": ["boolean", "null"]},
                "refresh_seconds": {"type": ["integer", "null"], "minimum": 0}
            }),
        )),
        ("put", "/users/{id}/role") => json(object(&["role"], json!({"role": {"type": "string"}}))),
        ("put", "/users/{id}/status") => json(object(
            &["status"],
            json!({"status": {"type": "string", "enum": ["active", "disabled"]}}),
        )),
        _ => None,
    }
}

/// The `data` of a successful JSON answer, where the document says more
/// than "any JSON": (method, path, schema).
fn success_data(method: &str, path: &str) -> Value {
    let portfolio_detail = json!({"$ref": "#/components/schemas/PortfolioDetail"});
    match (
        method,
        path.strip_prefix("/api/v1/t/{tenant}").unwrap_or(path),
    ) {
        ("get", "/portfolios") => {
            json!({"type": "array", "items": {"$ref": "#/components/schemas/Portfolio"}})
        }
        ("post", "/portfolios")
        | ("get" | "patch", "/portfolios/{id}")
        | ("post", "/portfolios/{id}/positions")
        | ("put" | "delete", "/portfolios/{id}/positions/{position}") => portfolio_detail,
        ("get", "/me/activity") => json!({
            "type": "object",
            "required": ["portfolio", "auth"],
            "properties": {"portfolio": {"type": "array"}, "auth": {"type": "array"}}
        }),
        // Every other list is a page: an array, the cursor in `meta`.
        ("get", p)
            if [
                "/versions",
                "/activity",
                "/sessions",
                "/users",
                "/comments",
                "/shares",
            ]
            .iter()
            .any(|s| p.ends_with(s)) =>
        {
            json!({"type": "array"})
        }
        _ => json!({}),
    }
}

/// `Portfolio`, `PortfolioDetail` and `Position` of the portfolio crate (it
/// carries no schema of its own).
fn portfolio_schemas() -> [(&'static str, Value); 3] {
    let portfolio = json!({
        "type": "object",
        "required": ["id", "owner_id", "name", "description", "base_currency", "is_public",
                     "settings", "version", "created_at", "updated_at", "access"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "owner_id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "base_currency": {"type": "string"},
            "is_public": {"type": "boolean"},
            "settings": {},
            "version": {"type": "integer", "minimum": 1},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "access": {"type": "string", "enum": ["view", "comment", "edit", "admin", "owner"]}
        }
    });
    let position = json!({
        "type": "object",
        "required": ["id", "symbol", "allocation_type", "quantity", "target_weight",
                     "purchase_price", "purchase_date", "sector", "notes"],
        "properties": position_fields(json!({
            "id": {"type": "string", "format": "uuid"},
            "notes": {"type": "string"}
        }))
    });
    let detail = json!({"allOf": [
        {"$ref": "#/components/schemas/Portfolio"},
        {"type": "object", "required": ["positions"], "properties": {
            "positions": {"type": "array", "items": {"$ref": "#/components/schemas/Position"}}
        }}
    ]});
    [
        ("Portfolio", portfolio),
        ("Position", position),
        ("PortfolioDetail", detail),
    ]
}

/// The content of a successful answer, by what the path serves.
fn success_content(method: &str, path: &str) -> Value {
    if path.ends_with(".csv") {
        json!({"text/csv": {"schema": {"type": "string"}}})
    } else if path.ends_with(".svg") {
        json!({"image/svg+xml": {"schema": {"type": "string"}}})
    } else if path == "/metrics" {
        json!({"text/plain": {"schema": {"type": "string"}}})
    } else {
        let data = success_data(method, path);
        if data == json!({}) {
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}})
        } else {
            json!({"application/json": {"schema": {"allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"properties": {"data": data}}
            ]}}})
        }
    }
}

/// Statuses every operation of the kind may answer, with why.
fn common_errors(path: &str, secured: bool, has_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut errors = Vec::new();
    // Health and metrics are exempt from the rate limits.
    if !matches!(path, "/health" | "/ready" | "/metrics") {
        errors.push(("429", "rate limited (see `Retry-After`)"));
    }
    if path.starts_with("/api/v1/t/{tenant}") {
        errors.push(("400", "malformed path, query or body"));
        errors.push(("404", "unknown tenant, or no such resource"));
        errors.push(("403", "tenant suspended, or the role lacks the permission"));
    }
    if secured {
        errors.push(("401", "missing, invalid or expired bearer token"));
    }
    if path.starts_with("/admin/") {
        errors.push(("400", "malformed path, query or body"));
        errors.push(("401", "no client certificate"));
        errors.push(("404", "unknown tenant, key or action"));
    }
    if path.starts_with("/api/v1/") {
        errors.push(("503", "the database is unavailable (see `Retry-After`)"));
    }
    // The analysis of a portfolio needs prices over the whole window.
    if [
        "/analytics",
        "/performance.csv",
        "/charts/equity.svg",
        "/charts/returns.svg",
        "/correlation",
        "/monte-carlo",
        "/charts/fan.svg",
    ]
    .iter()
    .any(|suffix| path.ends_with(suffix))
    {
        errors.push((
            "422",
            "no prices for a holding or the benchmark in the window",
        ));
    }
    if has_body {
        errors.push(("413", "body too large"));
        errors.push(("415", "unsupported content type"));
    }
    errors
}

/// Completes the generated document (see [`document_value`]).
fn complete(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["Envelope"] = json!({
        "type": "object",
        "description": "Every successful JSON answer.",
        "required": ["success", "data", "meta"],
        "properties": {
            "success": {"type": "boolean", "enum": [true]},
            "data": {},
            "meta": {"$ref": "#/components/schemas/Meta"}
        }
    });
    schemas["ErrorEnvelope"] = json!({
        "type": "object",
        "description": "Every error answer.",
        "required": ["success", "error", "meta"],
        "properties": {
            "success": {"type": "boolean", "enum": [false]},
            "error": {"$ref": "#/components/schemas/ErrorBody"},
            "meta": {"$ref": "#/components/schemas/Meta"}
        }
    });
    for (name, schema) in portfolio_schemas() {
        doc["components"]["schemas"][name] = schema;
    }
    doc["components"]["securitySchemes"] = json!({
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in operations.iter_mut() {
            complete_operation(path, method, op);
        }
    }
}

fn complete_operation(path: &str, method: &str, op: &mut Value) {
    let in_path: Vec<&str> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    // utoipa puts `IntoParams` fields "in path" with `Option`s required and
    // nullable: they are optional query parameters.
    let mut params: Vec<Value> = op["parameters"].as_array().cloned().unwrap_or_default();
    for p in params.iter_mut() {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        if p["in"] == "path" && !in_path.contains(&name.as_str()) {
            p["in"] = json!("query");
            let mut optional = false;
            if let Some(types) = p["schema"]["type"].as_array() {
                optional = types.iter().any(|t| t == "null");
                let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if let [one] = types.as_slice() {
                    p["schema"]["type"] = one.clone();
                }
            }
            p["required"] = json!(!optional);
        }
    }
    for name in &in_path {
        if !params
            .iter()
            .any(|p| p["in"] == "path" && p["name"] == *name)
        {
            params.push(json!({
                "name": name, "in": "path", "required": true,
                "schema": path_parameter_schema(name)
            }));
        }
    }
    for (name, schema) in extra_query_parameters(path) {
        if !params.iter().any(|p| p["name"] == name) {
            params.push(json!({"name": name, "in": "query", "required": false, "schema": schema}));
        }
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }

    let secured = (path.starts_with("/api/v1/") || path.starts_with("/api/graphql/"))
        && !PUBLIC_OPERATIONS.contains(&path);
    if secured {
        op["security"] = json!([{"bearerAuth": []}]);
    }
    if op.get("requestBody").is_none()
        && let Some((content_type, schema)) = request_body(method, path)
    {
        op["requestBody"] = json!({
            "required": true,
            "content": {content_type: {"schema": schema}}
        });
    }
    // Bodies the handlers take as `api::OptionalJson`.
    if OPTIONAL_BODIES.contains(&path)
        && let Some(body) = op.get_mut("requestBody")
    {
        body["required"] = json!(false);
    }
    let has_body = op.get("requestBody").is_some();

    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    for (status, why) in common_errors(path, secured, has_body) {
        responses
            .entry(status)
            .or_insert_with(|| json!({"description": why}));
    }
    for (status, response) in responses.iter_mut() {
        // A declared JSON body is the envelope's `data` (the 503 of `/ready`
        // carries the report too).
        let declared = response
            .get_mut("content")
            .and_then(|c| c.get_mut("application/json"))
            .and_then(|c| c.get_mut("schema"));
        if let Some(declared) = declared
            && !status.starts_with('4')
            && let Some(reference) = declared.get("$ref").cloned()
        {
            *declared = json!({"allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"properties": {"data": {"$ref": reference}}}
            ]});
        }
        if response.get("content").is_some() {
            continue;
        }
        if status.starts_with('2') {
            response["content"] = success_content(method, path);
        } else if status.starts_with('4') || status.starts_with('5') {
            response["content"] = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}});
        }
        if status == "429" {
            response["headers"] = json!({"Retry-After": {
                "description": "seconds until a request may succeed",
                "schema": {"type": "integer"}
            }});
        }
    }
}
