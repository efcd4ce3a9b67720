//! Access-token verification and `tid` JWE decryption on arbitrary input,
//! against a real key ring (ES256, RS256 and tenant-encryption keys generated
//! once per process by `KeyRing::open` over a `MemoryKeyStore`).
//!
//! The first byte picks a mode:
//! * raw: the rest is a token; nothing but a token we issued may verify, and
//!   we never issue one from here, so every call must fail (without panicking);
//! * mutate: one of our real tokens (access ES256/RS256, ID token, `tid`)
//!   edited by the rest (overwrite, insert, delete, truncate): it must verify
//!   only if the edits left it byte-for-byte unchanged, and then with the
//!   original claims and tenant;
//! * roundtrip: the rest fills an access-token request (subject, client,
//!   scope, roles, tenant, algorithm); issuing and verifying it must give back
//!   exactly those claims and that tenant.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use rampart_auth::token::peek_claims;
use rampart_auth::{
    AccessTokenRequest, AuthConfig, IdTokenClaims, KeyEncryptionKey, KeyRing, MemoryKeyStore,
    RotationPolicy, SigningAlg, TokenService, VerifiedAccessToken,
};
use uuid::Uuid;

const ISSUER: &str = "https://acme.rampart.test";
const AUDIENCE: &str = "rampart";

struct Fixture {
    tokens: TokenService,
    /// Unix time the fixture tokens were issued at (verification uses it, so
    /// long runs do not see them expire).
    now: i64,
    access_es: (String, VerifiedAccessToken),
    access_rs: (String, VerifiedAccessToken),
    id_token: String,
    tid: (String, Uuid),
}

fn request(alg: SigningAlg, tenant: Uuid) -> AccessTokenRequest {
    AccessTokenRequest {
        tenant_id: tenant,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        subject: Uuid::new_v4().to_string(),
        client_id: "portal".into(),
        scope: "openid portfolios:read".into(),
        roles: vec!["trader".into()],
        session_id: Some(Uuid::new_v4()),
        family_id: None,
        auth_time: Some(chrono::Utc::now().timestamp()),
        alg,
    }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let config = AuthConfig::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let ring: Arc<KeyRing> = runtime
        .block_on(KeyRing::open(
            Arc::new(MemoryKeyStore::new()),
            KeyEncryptionKey::generate(),
            RotationPolicy::from_config(&config),
        ))
        .expect("key ring");
    let tokens = TokenService::new(ring, &config);
    let now = chrono::Utc::now().timestamp();
    let tenant = Uuid::new_v4();
    let issue = |alg| {
        let (token, claims) = tokens
            .issue_access_token(&request(alg, tenant))
            .expect("issue access token");
        let verified = VerifiedAccessToken {
            claims,
            tenant_id: tenant,
        };
        (token, verified)
    };
    let access_es = issue(SigningAlg::ES256);
    let access_rs = issue(SigningAlg::RS256);
    let id_token = tokens
        .issue_id_token(
            SigningAlg::ES256,
            IdTokenClaims {
                iss: ISSUER.into(),
                sub: access_es.1.claims.sub.clone(),
                aud: "portal".into(),
                exp: 0,
                iat: 0,
                auth_time: now,
                nonce: Some("n-0S6_WzA2Mj".into()),
                at_hash: None,
                sid: None,
                email: Some("ada@example.com".into()),
                name: Some("Ada".into()),
            },
            Some(&access_es.0),
        )
        .expect("issue id token");
    let tid = access_es.1.claims.tid.clone();
    Fixture {
        tokens,
        now,
        access_es,
        access_rs,
        id_token,
        tid: (tid, tenant),
    }
});

/// Every verifier on `token`; all must refuse it.
fn refuse_everywhere(f: &Fixture, token: &str) {
    assert!(f.tokens.verify_uncached(token, f.now).is_err(), "{token:?}");
    assert!(
        f.tokens
            .verify_access_token(token, ISSUER, AUDIENCE)
            .is_err(),
        "{token:?}"
    );
    assert!(f.tokens.verify_id_token(token).is_err(), "{token:?}");
    assert!(f.tokens.decrypt_tenant(token).is_err(), "{token:?}");
    // Display only; must not panic on anything.
    let _ = peek_claims(token);
}

/// Applies edits from `ops` to `base` (ASCII only, so the result stays text).
fn mutate(base: &str, ops: &[u8]) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for op in ops.chunks(3) {
        let [kind, pos, value] = *op else { break };
        let len = bytes.len().max(1);
        // Positions near the end matter as much as near the start.
        let at = (usize::from(pos) * 7 + usize::from(value)) % len;
        let ch = value & 0x7f;
        match kind % 5 {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = ch;
                }
            }
            1 => bytes.insert(at.min(bytes.len()), ch),
            2 => {
                if at < bytes.len() {
                    bytes.remove(at);
                }
            }
            3 => bytes.truncate(at),
            _ => {
                // Flip one bit of a base64url character into another one.
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << (value % 7);
                    *b &= 0x7f;
                }
            }
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

fn mutated(f: &Fixture, which: u8, ops: &[u8]) {
    match which % 4 {
        kind @ (0 | 1) => {
            let (base, expected) = if kind == 0 {
                &f.access_es
            } else {
                &f.access_rs
            };
            let token = mutate(base, ops);
            if &token == base {
                let verified = f.tokens.verify_uncached(&token, f.now);
                assert_eq!(verified.as_ref().ok(), Some(expected), "{verified:?}");
            } else {
                refuse_everywhere(f, &token);
            }
        }
        2 => {
            let token = mutate(&f.id_token, ops);
            if token != f.id_token {
                refuse_everywhere(f, &token);
            }
        }
        _ => {
            let (base, tenant) = &f.tid;
            let tid = mutate(base, ops);
            let opened = f.tokens.decrypt_tenant(&tid);
            if &tid == base {
                assert_eq!(opened.ok(), Some(*tenant));
            } else {
                assert!(opened.is_err(), "mutated tid opened: {tid:?}");
                refuse_everywhere(f, &tid);
            }
        }
    }
}

fn roundtrip(f: &Fixture, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\u{0}');
    let mut next = || fields.next().unwrap_or_default().to_owned();
    let alg = if data.first().is_some_and(|b| b.is_multiple_of(2)) {
        SigningAlg::ES256
    } else {
        SigningAlg::RS256
    };
    let mut tenant = [0u8; 16];
    for (slot, b) in tenant.iter_mut().zip(data.iter().rev()) {
        *slot = *b;
    }
    let tenant = Uuid::from_bytes(tenant);
    let request = AccessTokenRequest {
        tenant_id: tenant,
        issuer: next(),
        audience: next(),
        subject: next(),
        client_id: next(),
        scope: next(),
        roles: next().split(',').map(str::to_owned).collect(),
        session_id: None,
        family_id: None,
        auth_time: None,
        alg,
    };
    let (token, claims) = f
        .tokens
        .issue_access_token(&request)
        .expect("issuing never fails with a live key ring");
    let verified = f
        .tokens
        .verify_uncached(&token, claims.iat)
        .expect("a token we just issued verifies");
    assert_eq!(verified.claims, claims);
    assert_eq!(verified.tenant_id, tenant);
    assert_eq!(f.tokens.decrypt_tenant(&claims.tid).ok(), Some(tenant));
    // The tenant travels only inside the encrypted `tid`.
    let peeked = peek_claims(&token).expect("our tokens have JSON claims");
    assert_eq!(
        peeked.get("tid").and_then(|t| t.as_str()),
        Some(claims.tid.as_str())
    );
    assert!(!claims.tid.contains(&tenant.to_string()));
    let checked = f
        .tokens
        .verify_access_token(&token, &request.issuer, &request.audience);
    assert_eq!(checked.ok().map(|v| v.claims), Some(claims));
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            let ours = [&f.access_es.0, &f.access_rs.0, &f.id_token, &f.tid.0];
            if !ours.iter().any(|t| **t == token) {
                refuse_everywhere(f, &token);
            }
        }
        1 => {
            let Some((&which, ops)) = rest.split_first() else {
                return;
            };
            mutated(f, which, ops);
        }
        _ => roundtrip(f, rest),
    }
});
