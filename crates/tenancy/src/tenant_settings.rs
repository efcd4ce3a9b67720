//! The typed tenant settings ([`TenantSettings`]): defaults, validation
//! against the platform's bounds ([`SettingsBounds`]), a per-process cache,
//! and changes as JSON merge patches.
//!
//! They live in the registry row's `settings` column (next to any untyped
//! keys of [`TenantPool::set_setting`], which they leave alone). Reads go
//! through a cache of `TenancyConfig::settings_cache_ttl_ms`: a change made
//! through this pool is seen by it at once; other replicas see it within
//! that TTL (the bound the documentation promises: 2 s by default).
use std::sync::Arc;

use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::schema::tenants;
use crate::settings_model::{TenantSettings, merge_patch, out_of_bounds};
use crate::{TenancyError, TenantPool, TenantSlug};

fn parse_settings(value: serde_json::Value) -> Result<TenantSettings, TenancyError> {
    serde_json::from_value(value).map_err(|e| TenancyError::Setting {
        key: "*".into(),
        message: e.to_string(),
    })
}

impl TenantPool {
    /// The typed settings of a tenant (defaults for what is unset), from the
    /// cache (see the module documentation for how fresh).
    pub async fn tenant_settings(
        &self,
        slug: &TenantSlug,
    ) -> Result<Arc<TenantSettings>, TenancyError> {
        self.watch_registry().await;
        if let Some(s) = self.inner.settings_cache.get(slug.as_str()).await {
            return Ok(s);
        }
        let settings = Arc::new(parse_settings(self.settings(slug).await?)?);
        self.inner
            .settings_cache
            .insert(slug.as_str().to_owned(), settings.clone())
            .await;
        Ok(settings)
    }

    /// Applies a JSON merge patch (RFC 7396: `null` resets a setting to its
    /// default) to the typed settings, validates the result against the
    /// platform bounds and stores it. Returns the settings before and after.
    /// Unknown keys and wrong types are [`TenancyError::Setting`].
    pub async fn update_tenant_settings(
        &self,
        slug: &TenantSlug,
        patch: &serde_json::Value,
    ) -> Result<(TenantSettings, TenantSettings), TenancyError> {
        if !patch.is_object() {
            return Err(out_of_bounds("*", "the patch must be a JSON object".into()));
        }
        let bounds = &self.inner.config.settings_bounds;
        let keys = TenantSettings::keys();
        if let serde_json::Value::Object(p) = patch
            && let Some(unknown) = p.keys().find(|k| !keys.contains(k))
        {
            return Err(out_of_bounds(
                &unknown.chars().take(100).collect::<String>(),
                "unknown setting".into(),
            ));
        }
        let mut conn = self.conn().await?;
        let result = conn
            .transaction::<_, TenancyError, _>(async |conn| {
                {
                    // FOR UPDATE: concurrent patches apply one after the other.
                    let stored: serde_json::Value = tenants::table
                        .filter(tenants::slug.eq(slug.as_str()))
                        .filter(tenants::status.ne("purged"))
                        .select(tenants::settings)
                        .for_update()
                        .first(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| TenancyError::NotFound(slug.to_string()))?;
                    let before = parse_settings(stored.clone())?;
                    // Only the typed keys: untyped ones stay as they are.
                    let mut typed = serde_json::to_value(&before)
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    merge_patch(&mut typed, patch);
                    // Keys reset with `null` fall back to their defaults.
                    let mut full = serde_json::to_value(TenantSettings::default())
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    merge_patch(&mut full, &typed);
                    let after: TenantSettings = serde_json::from_value(full)
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    after.validate(bounds)?;
                    let after_json = serde_json::to_value(&after)
                        .map_err(|e| out_of_bounds("*", e.to_string()))?;
                    diesel::update(tenants::table.filter(tenants::slug.eq(slug.as_str())))
                        .set((
                            tenants::settings.eq(tenants::settings.concat(after_json)),
                            tenants::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    Ok::<_, TenancyError>((before, after))
                }
            })
            .await;
        self.inner.settings_cache.invalidate(slug.as_str()).await;
        result
    }

    /// Forgets the cached settings of a tenant (e.g. after a change made
    /// with [`TenantPool::set_setting`]).
    pub async fn forget_tenant_settings(&self, slug: &TenantSlug) {
        self.inner.settings_cache.invalidate(slug.as_str()).await;
    }
}
