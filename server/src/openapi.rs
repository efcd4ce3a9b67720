//! The OpenAPI 3 document, generated from the handlers' annotations
//! (utoipa) as the routes register them (utoipa-actix-web, the tables of
//! [`crate::listeners`]) and completed with what every route shares; served at
//! `/openapi.json` ([`serve`], registered by `crate::app`) and printed by `rampart openapi`.
use std::sync::LazyLock;

use actix_web::App;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::path::PathItem;
use utoipa_actix_web::AppExt;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart",
        description = "Multi-tenant trading and portfolio platform"
    ),
    // The REST operations are collected from the route registration
    // (`crate::routes`, see [`api`]); GraphQL's routes are plain actix
    // routes registered by `crate::graphql::configure`.
    paths(crate::graphql::execute, crate::graphql::subscription::subscribe),
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

/// What the annotations say: [`ApiDoc`] and the operations of every route
/// module of both listeners, collected by registering each module on an
/// app of its own (the app is dropped) and tagged with the module.
pub fn api() -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    for (tag, mounted_at, configure) in crate::listeners::mounted() {
        let app = App::new().into_utoipa_app();
        let app = match mounted_at {
            Some(prefix) => app.service(utoipa_actix_web::scope(prefix).configure(configure)),
            None => app.configure(configure),
        };
        let (_, mut module) = app.split_for_parts();
        for item in module.paths.paths.values_mut() {
            tag_operations(item, tag);
        }
        api.merge(module);
    }
    api
}

/// Tags the operations of `item` that carry no tag.
fn tag_operations(item: &mut PathItem, tag: &str) {
    let operations = [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ];
    for op in operations.into_iter().flatten() {
        let tags = op.tags.get_or_insert_with(Vec::new);
        if tags.is_empty() {
            tags.push(tag.to_owned());
        }
    }
}

/// The document as JSON text (built once: it depends on nothing but the code).
pub fn document() -> String {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_string_pretty(&document_value()).unwrap_or_else(|_| "{}".into())
    });
    DOCUMENT.clone()
}

/// The document: what the handlers' annotations say, completed from the
/// tables below with what every route shares (path parameters, the bearer
/// scheme, the JSON envelope of every answer and the error statuses the
/// middleware and extractors produce), so that it describes what the server
/// really answers. `server/tests/schemathesis.rs` holds it to that.
pub fn document_value() -> Value {
    let mut doc = serde_json::to_value(api()).unwrap_or_default();
    complete(&mut doc);
    doc
}

/// The schema of each path parameter, by name.
fn path_parameter_schema(name: &str) -> Value {
    known_path_parameter(name).unwrap_or_else(|| json!({"type": "string"}))
}

/// The schema of the path parameters whose name says more than "a string".
fn known_path_parameter(name: &str) -> Option<Value> {
    Some(match name {
        "tenant" | "slug" => json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{2,39}$"}),
        "id" | "position" | "user" | "member" | "preview" => {
            json!({"type": "string", "format": "uuid"})
        }
        "version" => json!({"type": "integer", "format": "int32"}),
        "action" => json!({"type": "string", "enum": [
            "suspend", "resume", "deactivate", "reactivate", "purge"
        ]}),
        _ => return None,
    })
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
        ("put", "/portfolios/{id}/positions.csv") => Some(("text/csv", json!({"type": "string"}))),
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
    let mut params: Vec<Value> = op["parameters"].as_array().cloned().unwrap_or_default();
    for p in params.iter_mut() {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        // utoipa puts the fields of an `IntoParams` it cannot tie to a
        // `web::Query` argument (one behind a type alias) "in path", with
        // `Option`s required and nullable: they are optional query
        // parameters.
        let misplaced = p["in"] == "path" && !in_path.contains(&name.as_str());
        if misplaced {
            p["in"] = json!("query");
        }
        if p["in"] == "query" {
            // An absent query parameter is the `None`, never a JSON null.
            let mut optional = false;
            if let Some(types) = p["schema"]["type"].as_array() {
                optional = types.iter().any(|t| t == "null");
                let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if let [one] = types.as_slice() {
                    p["schema"]["type"] = one.clone();
                }
            }
            if misplaced {
                p["required"] = json!(!optional);
            }
        } else if p["in"] == "path"
            && let (Some(schema), Some(Value::Object(known))) =
                (p["schema"].as_object_mut(), known_path_parameter(&name))
        {
            // Inferred from a `web::Path<String>` (or tuple) argument: the
            // table says more.
            schema.extend(known);
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

/// `GET /openapi.json`: [`document`].
pub async fn serve() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
