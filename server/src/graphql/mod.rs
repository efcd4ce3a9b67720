//! `POST /api/graphql/t/{tenant}`: GraphQL beside the REST API, over the
//! same crate services (async-graphql).
//!
//! The caller is authenticated by the REST routes' own extractor
//! ([`Caller`]: bearer token or API key, of the tenant in the path, else the
//! same 401 envelope as REST), before any GraphQL runs. Each resolver then
//! requires the permission its REST route requires, with the same checks
//! ([`extract::require`], [`Caller::user_id`]), and calls the same crate
//! service. A refusal is a GraphQL error whose `extensions.code` is the
//! REST error code ([`ApiError`] → [`gql_error`]), with `extensions.status`
//! (what REST would answer) and `extensions.requestId`.
//!
//! Protection: depth and complexity limits, a page-size cap, introspection
//! off in production mode unless configured ([`config::GraphqlConfig`]),
//! the body limit and envelope of every JSON route, one operation per
//! request (no batches), and DataLoader batching of positions
//! ([`loaders::PositionsLoader`]). Automatic persisted queries are
//! optional (`[graphql] persisted_queries`). Subscriptions (live prices)
//! run over a WebSocket: [`subscription`].
pub mod config;
pub mod loaders;
pub mod paging;
pub mod portfolio_fields;
pub mod schema;
pub mod subscription;
pub mod tenant_fields;

use actix_web::web;
use async_graphql::dataloader::DataLoader;
use async_graphql::{ErrorExtensions, Schema};
use async_graphql_actix_web::GraphQLResponse;
use rampart_auth::Permission;
use rampart_portfolio::{Actor, PortfolioService};
use rampart_tenancy::TenantSlug;

use crate::api::{JsonObject, current_request_id};
use crate::config::{Mode, ServerConfig};
use crate::error::ApiError;
use crate::extract::{self, Caller};
use crate::state::AppState;

/// The schema: queries, mutations and subscriptions (the latter over
/// [`subscription::PATH`]).
pub type RampartSchema =
    Schema<schema::QueryRoot, schema::MutationRoot, subscription::SubscriptionRoot>;

/// The route.
pub const PATH: &str = "/api/graphql/t/{tenant}";

/// Where the SDL is kept in the repository (relative to the server crate).
pub const SDL_FILE: &str = "graphql/schema.graphql";

/// Builds the schema with the configured limits.
pub fn build_schema(config: &ServerConfig) -> RampartSchema {
    let limits = &config.graphql;
    let mut builder = Schema::build(
        schema::QueryRoot,
        schema::MutationRoot,
        subscription::SubscriptionRoot,
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .data(limits.clone());
    if !limits.introspection_in(config.mode == Mode::Production) {
        builder = builder.disable_introspection();
    }
    if let Some(capacity) = std::num::NonZeroUsize::new(limits.persisted_queries) {
        use async_graphql::extensions::apollo_persisted_queries as apq;
        let storage = apq::LruCacheStorage::new(capacity.get());
        builder = builder.extension(apq::ApolloPersistedQueries::new(storage));
    }
    builder.finish()
}

/// The schema's SDL, as kept in [`SDL_FILE`].
pub fn sdl() -> String {
    build_schema(&ServerConfig::default()).sdl()
}

/// Registers the route (with a schema of `config`'s limits).
pub fn configure(cfg: &mut web::ServiceConfig, config: &ServerConfig) {
    cfg.app_data(web::Data::new(build_schema(config)))
        .route(PATH, web::post().to(execute))
        .configure(subscription::configure);
}

/// Who is asking, for the resolvers: the caller as the REST extractor
/// authenticated it, and the app state.
pub struct RequestCaller {
    caller: Caller,
    state: web::Data<AppState>,
}

impl RequestCaller {
    /// The tenant of the path (checked against the credential).
    pub fn tenant(&self) -> &TenantSlug {
        &self.caller.tenant
    }

    /// The app state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The caller as authenticated.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// `permission` required, as the REST extractor requires it.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        extract::require(&self.caller.principal, permission)
    }

    /// As REST's portfolio routes (`User<P>`): `permission` required, then
    /// a user (not a machine client); the actor the crate checks each
    /// portfolio's own access for.
    pub fn portfolio_actor(&self, permission: Permission) -> Result<Actor, ApiError> {
        self.require(permission)?;
        let user = self.caller.user_id()?;
        Ok(self.caller.portfolio_actor_for(user))
    }

    /// The portfolio service.
    pub fn portfolios(&self) -> PortfolioService {
        PortfolioService::new(self.state.tenants.clone())
    }
}

/// A GraphQL error from the server's one error table: the REST code in
/// `extensions.code`, the REST status in `extensions.status`, and the
/// details REST would give.
pub fn gql_error(e: ApiError) -> async_graphql::Error {
    async_graphql::Error::new(e.message.to_string()).extend_with(|_, ext| {
        ext.set("code", e.code.as_str());
        ext.set("status", e.status.as_u16());
        if let Some(details) = e.details.as_deref()
            && let Ok(value) = async_graphql::Value::from_json(details.clone())
        {
            ext.set("details", value);
        }
    })
}

/// `?`-friendly conversion of any error the REST routes map ([`ApiError`]
/// and every crate error it has a `From` for) into [`gql_error`].
pub trait OrGql<T> {
    /// The result with its error as a GraphQL error carrying the REST code.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<ApiError>> OrGql<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| gql_error(e.into()))
    }
}

/// The body of a request: one operation (async-graphql's own request type
/// takes a missing query for an empty one and an array for variables).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GraphqlBody {
    /// The document; absent only for a persisted query sent by its hash
    /// (`extensions.persistedQuery`).
    #[serde(default)]
    pub query: Option<String>,
    /// Which operation of the document to run.
    #[serde(default)]
    pub operation_name: Option<String>,
    /// The variables.
    #[serde(default)]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// Protocol extensions: `persistedQuery` (`{"version": 1,
    /// "sha256Hash"}`) when `[graphql] persisted_queries` is on; others
    /// are ignored.
    #[serde(default)]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

impl GraphqlBody {
    /// The async-graphql request; 400 without a `query`, unless it is a
    /// persisted query's hash and `persisted` (persisted queries are on).
    pub fn request(self, persisted: bool) -> Result<async_graphql::Request, ApiError> {
        let hash = self
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .filter(|_| persisted);
        if self.query.is_none() && hash.is_none() {
            return Err(ApiError::bad_request(
                "query: a GraphQL document is required",
            ));
        }
        let mut request = async_graphql::Request::new(self.query.unwrap_or_default());
        if let Some(hash) = hash
            && let Ok(value) = async_graphql::Value::from_json(hash.clone())
        {
            request
                .extensions
                .insert("persistedQuery".to_owned(), value);
        }
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(async_graphql::Variables::from_json(
                serde_json::Value::Object(variables),
            ));
        }
        Ok(request)
    }

    /// Its OpenAPI schema.
    pub fn openapi_schema() -> serde_json::Value {
        let object_or_null = serde_json::json!({"type": ["object", "null"]});
        serde_json::json!({
            "type": "object",
            // Without `query` only a persisted query's hash, when
            // `[graphql] persisted_queries` is on (off by default).
            "required": ["query"],
            "additionalProperties": false,
            "properties": {
                "query": {"type": "string"},
                "operationName": {"type": ["string", "null"]},
                "variables": object_or_null,
                "extensions": object_or_null,
            }
        })
    }
}

/// Runs one GraphQL operation for the authenticated caller.
#[utoipa::path(post, path = "/api/graphql/t/{tenant}", responses((status = 200, description = "`{\"data\", \"errors\"}`: a refusal inside the operation is an error with the REST code in `extensions.code` (and `status`, `requestId`)", content_type = "application/graphql-response+json", body = Object), (status = 400, description = "malformed body (one operation: `query`, optional `variables` and `operationName`)"), (status = 401, description = "no valid credential for this tenant"), (status = 403, description = "tenant suspended or deactivated"), (status = 404, description = "unknown tenant"), (status = 413, description = "body too large"), (status = 415, description = "not JSON"), (status = 503, description = "the database is unavailable (see `Retry-After`)")))]
pub async fn execute(
    caller: Caller,
    state: web::Data<AppState>,
    schema: web::Data<RampartSchema>,
    body: JsonObject<GraphqlBody>,
) -> Result<GraphQLResponse, ApiError> {
    let loader = loaders::PositionsLoader::new(&caller, &state);
    let persisted = state.config.graphql.persisted_queries > 0;
    let request = body
        .into_inner()
        .request(persisted)?
        .data(RequestCaller { caller, state })
        .data(DataLoader::new(loader, tokio::spawn));
    let mut response = schema.execute(request).await;
    let request_id = current_request_id();
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        // Parse, validation and limit errors: the request is refused.
        if ext.get("code").is_none() {
            ext.set("code", crate::error::ErrorCode::InvalidRequest.as_str());
            ext.set("status", 400u16);
        }
        ext.set("requestId", request_id.clone());
    }
    Ok(response.into())
}
