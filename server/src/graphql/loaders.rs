//! DataLoaders: the positions of every portfolio a query lists, fetched in
//! one batched crate call ([`PortfolioService::positions_of_many`]) instead
//! of one query per portfolio.
use rampart_tenancy::TenantSlug;
use std::collections::HashMap;

use actix_web::web;
use async_graphql::dataloader::Loader;
use rampart_portfolio::{Actor, PortfolioId, PortfolioService, Position};

use super::OrGql;
use crate::extract::{self, Caller};
use crate::state::AppState;

/// Positions by portfolio id, for one request's caller (the crate checks
/// the caller's access to each portfolio again).
pub struct PositionsLoader {
    svc: PortfolioService,
    tenant: TenantSlug,
    /// None for a machine client, which sees no portfolios.
    actor: Option<Actor>,
    principal: rampart_auth::Principal,
}

impl PositionsLoader {
    /// The loader of `caller`'s request.
    pub fn new(caller: &Caller, state: &web::Data<AppState>) -> Self {
        PositionsLoader {
            svc: PortfolioService::new(state.tenants.clone()),
            tenant: caller.tenant.clone(),
            actor: caller
                .user_id()
                .ok()
                .map(|user| caller.portfolio_actor_for(user)),
            principal: caller.principal.clone(),
        }
    }
}

impl Loader<PortfolioId> for PositionsLoader {
    type Value = Vec<Position>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[PortfolioId],
    ) -> Result<HashMap<PortfolioId, Vec<Position>>, Self::Error> {
        let Some(actor) = &self.actor else {
            // The REST refusal of a machine client.
            return extract::user_of(&self.principal)
                .map(|_| HashMap::new())
                .gql();
        };
        self.svc
            .positions_of_many(&self.tenant, actor, keys)
            .await
            .gql()
    }
}
