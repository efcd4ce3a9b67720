//! TradeStation market data called as the signed-in user: the route asks
//! auth for the user's TradeStation access token (their upstream
//! connection, refreshed when it expired; `upstream_not_connected` when
//! there is none) and hands it to the market crate's adapter, which knows
//! nothing of auth.
use rampart_tenancy::TenantSlug;
use std::sync::Arc;

use rampart_auth::UpstreamPreset;
use rampart_market::vendor::{BearerSource, TradeStationProvider, VendorSettings};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;
use crate::state::AppState;

/// One access token for the calls of one request.
struct RequestBearer(SecretString);

#[async_trait::async_trait]
impl BearerSource for RequestBearer {
    async fn bearer(&self) -> rampart_market::Result<String> {
        Ok(self.0.expose_secret().to_owned())
    }
}

/// The adapter for `user` of `tenant`, with a valid access token of their
/// TradeStation connection (a provider made from the `tradestation` preset).
pub async fn for_user(
    state: &AppState,
    tenant: &TenantSlug,
    user: rampart_auth::UserId,
) -> Result<TradeStationProvider, ApiError> {
    let upstream = state.auth.upstream();
    let provider = upstream
        .connected_provider(tenant, user, UpstreamPreset::TradeStation)
        .await?;
    let token = upstream
        .upstream_access_token(tenant, user, &provider)
        .await?;
    let settings = VendorSettings {
        name: "tradestation".into(),
        base_url: Some(state.config.tradestation.api_url.clone()),
        ..VendorSettings::default()
    };
    Ok(TradeStationProvider::new(
        settings,
        Arc::new(RequestBearer(token)),
    )?)
}
