//! Envelope encryption through Vault's transit engine: a value sealed with a
//! fresh data key, stored as JSON, opened again.
//!
//! Needs a Vault or OpenBao dev server: `bao server -dev -dev-root-token-id=root`,
//! then `VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root cargo run -p rampart-vault --example envelope`.
use rampart_vault::{Sealed, SecretStore, VaultConfig, VaultError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), VaultError> {
    let address = std::env::var("VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".into());
    let token = std::env::var("VAULT_TOKEN").unwrap_or_else(|_| "root".into());
    let store = SecretStore::connect(VaultConfig::dev(address, token)).await?;
    store.ensure_transit_key().await?;
    let sealed = store.encrypt(b"broker api secret", b"tenant:acme").await?;
    let stored = sealed.to_json();
    println!("stored: {stored}");
    let opened = store
        .decrypt(&Sealed::from_json(&stored)?, b"tenant:acme")
        .await?;
    println!("opened: {}", String::from_utf8_lossy(&opened));
    // Another context (another tenant) cannot open it.
    let refused = store.decrypt(&sealed, b"tenant:other").await;
    println!(
        "with another context: {}",
        if refused.is_err() {
            "refused"
        } else {
            "opened!"
        }
    );
    Ok(())
}
