//! Per-tenant settings (a JSON object with typed getters) and feature flags.
use std::collections::BTreeMap;

use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::schema::tenants;
use crate::{TenancyError, TenantPool, TenantSlug};

/// The two JSON object columns of a tenant's registry row.
#[derive(Clone, Copy)]
enum JsonColumn {
    Settings,
    FeatureFlags,
}

fn check_key(key: &str) -> Result<(), TenancyError> {
    if key.is_empty()
        || key.len() > 100
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(TenancyError::Setting {
            key: key.chars().take(100).collect(),
            message: "keys are 1-100 of [A-Za-z0-9._-]".into(),
        });
    }
    Ok(())
}

impl TenantPool {
    async fn json_column(
        &self,
        slug: &TenantSlug,
        column: JsonColumn,
    ) -> Result<serde_json::Value, TenancyError> {
        let mut conn = self.conn().await?;
        let tenant = tenants::table.filter(tenants::slug.eq(slug.as_str()));
        let value: Option<serde_json::Value> = match column {
            JsonColumn::Settings => tenant.select(tenants::settings).first(&mut *conn).await,
            JsonColumn::FeatureFlags => {
                tenant
                    .select(tenants::feature_flags)
                    .first(&mut *conn)
                    .await
            }
        }
        .optional()?;
        value.ok_or(TenancyError::NotFound(slug.to_string()))
    }

    /// All settings of a tenant as JSON.
    pub async fn settings(&self, slug: &TenantSlug) -> Result<serde_json::Value, TenancyError> {
        self.json_column(slug, JsonColumn::Settings).await
    }

    /// All settings deserialized into `T` (use `#[serde(default)]` on `T`
    /// for defaults).
    pub async fn typed_settings<T: DeserializeOwned>(
        &self,
        slug: &TenantSlug,
    ) -> Result<T, TenancyError> {
        serde_json::from_value(self.settings(slug).await?).map_err(|e| TenancyError::Setting {
            key: "*".into(),
            message: e.to_string(),
        })
    }

    /// One setting, or `default` when unset.
    pub async fn setting_or<T: DeserializeOwned>(
        &self,
        slug: &TenantSlug,
        key: &str,
        default: T,
    ) -> Result<T, TenancyError> {
        check_key(key)?;
        match self.settings(slug).await?.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| TenancyError::Setting {
                key: key.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// Sets one setting.
    pub async fn set_setting<T: Serialize>(
        &self,
        slug: &TenantSlug,
        key: &str,
        value: &T,
    ) -> Result<(), TenancyError> {
        check_key(key)?;
        let value = serde_json::to_value(value).map_err(|e| TenancyError::Setting {
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        self.update_json(slug, JsonColumn::Settings, key, value)
            .await
    }

    /// Sets one key of a JSON column (`column || {key: value}`), so
    /// concurrent changes to other keys are kept.
    async fn update_json(
        &self,
        slug: &TenantSlug,
        column: JsonColumn,
        key: &str,
        value: serde_json::Value,
    ) -> Result<(), TenancyError> {
        let mut conn = self.conn().await?;
        let patch =
            serde_json::Value::Object(serde_json::Map::from_iter([(key.to_owned(), value)]));
        let tenant = diesel::update(
            tenants::table
                .filter(tenants::slug.eq(slug.as_str()))
                .filter(tenants::status.ne("purged")),
        );
        let n = match column {
            JsonColumn::Settings => {
                tenant
                    .set((
                        tenants::settings.eq(tenants::settings.concat(patch)),
                        tenants::updated_at.eq(now),
                    ))
                    .execute(&mut *conn)
                    .await
            }
            JsonColumn::FeatureFlags => {
                tenant
                    .set((
                        tenants::feature_flags.eq(tenants::feature_flags.concat(patch)),
                        tenants::updated_at.eq(now),
                    ))
                    .execute(&mut *conn)
                    .await
            }
        }?;
        if n == 0 {
            return Err(TenancyError::NotFound(slug.to_string()));
        }
        self.inner.settings_cache.invalidate(slug.as_str()).await;
        Ok(())
    }

    /// The tenant's feature flags merged over the configured defaults.
    pub async fn feature_flags(
        &self,
        slug: &TenantSlug,
    ) -> Result<BTreeMap<String, bool>, TenancyError> {
        let own: BTreeMap<String, bool> =
            serde_json::from_value(self.json_column(slug, JsonColumn::FeatureFlags).await?)
                .map_err(|e| TenancyError::Setting {
                    key: "feature_flags".into(),
                    message: e.to_string(),
                })?;
        let mut flags = self.inner.config.default_feature_flags.clone();
        flags.extend(own);
        Ok(flags)
    }

    /// Whether a feature is on for a tenant (its own flag, else the default,
    /// else off).
    pub async fn feature_enabled(
        &self,
        slug: &TenantSlug,
        flag: &str,
    ) -> Result<bool, TenancyError> {
        check_key(flag)?;
        Ok(self
            .feature_flags(slug)
            .await?
            .get(flag)
            .copied()
            .unwrap_or(false))
    }

    /// Turns a feature on or off for a tenant.
    pub async fn set_feature(
        &self,
        slug: &TenantSlug,
        flag: &str,
        enabled: bool,
    ) -> Result<(), TenancyError> {
        check_key(flag)?;
        self.update_json(
            slug,
            JsonColumn::FeatureFlags,
            flag,
            serde_json::Value::Bool(enabled),
        )
        .await
    }
}
