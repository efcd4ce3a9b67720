//! Access and ID tokens: claims, encrypted tenant, refusals, cache.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rampart_auth::{AccessTokenRequest, AuthConfig, AuthError, IdTokenClaims, SigningAlg};
use uuid::Uuid;

pub fn request(config: &AuthConfig, tenant: Uuid, alg: SigningAlg) -> AccessTokenRequest {
    AccessTokenRequest {
        tenant_id: tenant,
        issuer: config.issuer("acme"),
        audience: config.access_token_audience.clone(),
        subject: "user-1".into(),
        client_id: "web".into(),
        scope: "openid portfolio:read".into(),
        roles: vec!["trader".into()],
        session_id: Some(Uuid::new_v4()),
        family_id: None,
        auth_time: Some(1),
        alg,
    }
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let seg = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&B64.decode(seg).unwrap()).unwrap()
}

fn forge(header: &serde_json::Value, payload: &serde_json::Value, sig: &str) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(serde_json::to_vec(header).unwrap()),
        B64.encode(serde_json::to_vec(payload).unwrap()),
        sig
    )
}

fn is_invalid_token(r: Result<rampart_auth::VerifiedAccessToken, AuthError>) -> bool {
    matches!(r, Err(AuthError::InvalidToken(_)))
}

#[tokio::test]
async fn access_token_has_rfc9068_shape_and_encrypted_tenant() {
    let (_ring, tokens, config) = crate::common::memory_tokens().await;
    let tenant = Uuid::new_v4();
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let (jwt, claims) = tokens
            .issue_access_token(&request(&config, tenant, alg))
            .unwrap();
        let header = part(&jwt, 0);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], alg.as_str());
        assert!(header["kid"].is_string());
        let body = part(&jwt, 1);
        for claim in [
            "iss",
            "exp",
            "aud",
            "sub",
            "client_id",
            "iat",
            "jti",
            "scope",
            "roles",
            "tid",
        ] {
            assert!(body.get(claim).is_some(), "missing {claim}");
        }
        assert_eq!(
            body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(),
            900
        );
        // The tenant id never appears in clear.
        assert!(!jwt.contains(&tenant.to_string()));
        assert!(!body.to_string().contains(&tenant.to_string()));
        let tid = body["tid"].as_str().unwrap();
        assert_eq!(tid.split('.').count(), 5);
        let tid_header = part(tid, 0);
        assert_eq!(tid_header["alg"], "dir");
        assert_eq!(tid_header["enc"], "A256GCM");
        assert!(tid_header["kid"].is_string());
        let verified = tokens
            .verify_access_token(&jwt, &config.issuer("acme"), "rampart")
            .unwrap();
        assert_eq!(verified.tenant_id, tenant);
        assert_eq!(verified.claims, claims);
    }
    // Same tenant, different tid every time.
    let (a, _) = tokens
        .issue_access_token(&request(&config, tenant, SigningAlg::ES256))
        .unwrap();
    let (b, _) = tokens
        .issue_access_token(&request(&config, tenant, SigningAlg::ES256))
        .unwrap();
    assert_ne!(part(&a, 1)["tid"], part(&b, 1)["tid"]);
}

#[tokio::test]
async fn refuses_wrong_issuer_audience_and_expired() {
    let (_ring, tokens, config) = crate::common::memory_tokens().await;
    let (jwt, _) = tokens
        .issue_access_token(&request(&config, Uuid::new_v4(), SigningAlg::ES256))
        .unwrap();
    // Twice each: uncached then cached.
    for _ in 0..2 {
        assert!(is_invalid_token(tokens.verify_access_token(
            &jwt,
            &config.issuer("other"),
            "rampart"
        )));
        assert!(is_invalid_token(tokens.verify_access_token(
            &jwt,
            &config.issuer("acme"),
            "other-api"
        )));
        tokens
            .verify_access_token(&jwt, &config.issuer("acme"), "rampart")
            .unwrap();
    }
    // Expired (beyond skew).
    let far_future = rampart_auth::token::peek_claims(&jwt).unwrap()["exp"]
        .as_i64()
        .unwrap()
        + 61;
    assert!(matches!(
        tokens.verify_uncached(&jwt, far_future),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(tokens.verify_uncached(&jwt, far_future - 2).is_ok());
}

#[tokio::test]
async fn refuses_tampering_alg_none_hs256_confusion_and_kid_injection() {
    let (ring, tokens, config) = crate::common::memory_tokens().await;
    let iss = config.issuer("acme");
    let (jwt, _) = tokens
        .issue_access_token(&request(&config, Uuid::new_v4(), SigningAlg::ES256))
        .unwrap();
    let header = part(&jwt, 0);
    let body = part(&jwt, 1);
    let sig = jwt.split('.').nth(2).unwrap();
    // A forged token is refused as invalid.
    let refused = |h: &serde_json::Value, b: &serde_json::Value, sig: &str| {
        is_invalid_token(tokens.verify_access_token(&forge(h, b, sig), &iss, "rampart"))
    };

    // Tampered payload with the original signature.
    let mut evil = body.clone();
    evil["roles"] = serde_json::json!(["admin"]);
    assert!(refused(&header, &evil, sig));

    // alg: none with an empty signature.
    let mut none = header.clone();
    none["alg"] = "none".into();
    assert!(refused(&none, &body, ""));

    // HS256 keyed with the public key (classic confusion).
    let jwks = ring.jwks();
    let kid = header["kid"].as_str().unwrap();
    let public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()
        .to_string();
    let mut hs = header.clone();
    hs["alg"] = "HS256".into();
    let signing_input = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(&hs).unwrap()),
        B64.encode(serde_json::to_vec(&body).unwrap())
    );
    let mut oct = josekit::jwk::Jwk::new("oct");
    oct.set_key_value(public.as_bytes());
    let signer = josekit::jws::HS256.signer_from_jwk(&oct).unwrap();
    let mac = josekit::jws::JwsSigner::sign(&signer, signing_input.as_bytes()).unwrap();
    let hs_token = format!("{signing_input}.{}", B64.encode(mac));
    assert!(is_invalid_token(
        tokens.verify_access_token(&hs_token, &iss, "rampart")
    ));

    // ES256 header pointing at the RS256 key (alg/key mismatch).
    let rs_kid = ring.active_kid(rampart_auth::KeyKind::Rs256).unwrap();
    let mut mismatch = header.clone();
    mismatch["kid"] = rs_kid.into();
    assert!(refused(&mismatch, &body, sig));

    // kid injection attempts.
    for kid in [
        "../../etc/passwd",
        "' OR 1=1 --",
        "",
        "es-unknown",
        &"a".repeat(200),
    ] {
        let mut h = header.clone();
        h["kid"] = kid.into();
        assert!(refused(&h, &body, sig));
    }
    // Embedded keys and key URLs are refused.
    for (name, value) in [
        ("jku", serde_json::json!("http://evil.example/jwks")),
        ("jwk", serde_json::json!({"kty": "EC"})),
        ("x5u", serde_json::json!("http://evil.example/x5u")),
        ("crit", serde_json::json!(["exp"])),
    ] {
        let mut h = header.clone();
        h[name] = value;
        assert!(refused(&h, &body, sig));
    }
    // Wrong typ (an ID token is not an access token).
    let mut typ = header.clone();
    typ["typ"] = "JWT".into();
    assert!(refused(&typ, &body, sig));
    // A tid from another token swapped in breaks the signature.
    let (other, _) = tokens
        .issue_access_token(&request(&config, Uuid::new_v4(), SigningAlg::ES256))
        .unwrap();
    let mut swapped = body.clone();
    swapped["tid"] = part(&other, 1)["tid"].clone();
    assert!(refused(&header, &swapped, sig));
    // The original still verifies.
    tokens.verify_access_token(&jwt, &iss, "rampart").unwrap();
}

#[tokio::test]
async fn a_token_signed_by_a_foreign_key_with_our_kid_fails() {
    let (_ring, tokens, config) = crate::common::memory_tokens().await;
    let (_ring2, tokens2, _) = crate::common::memory_tokens().await;
    let (foreign, _) = tokens2
        .issue_access_token(&request(&config, Uuid::new_v4(), SigningAlg::ES256))
        .unwrap();
    assert!(is_invalid_token(tokens.verify_access_token(
        &foreign,
        &config.issuer("acme"),
        "rampart"
    )));
}

#[tokio::test]
async fn id_token_carries_nonce_and_at_hash() {
    let (_ring, tokens, config) = crate::common::memory_tokens().await;
    let claims = IdTokenClaims {
        iss: config.issuer("acme"),
        sub: "user-1".into(),
        aud: "web".into(),
        exp: 0,
        iat: 0,
        auth_time: 5,
        nonce: Some("n-123".into()),
        at_hash: None,
        sid: None,
        email: Some("a@example.com".into()),
        name: None,
    };
    let id = tokens
        .issue_id_token(SigningAlg::RS256, claims, Some("access"))
        .unwrap();
    assert_eq!(part(&id, 0)["typ"], "JWT");
    let back = tokens.verify_id_token(&id).unwrap();
    assert_eq!(back.nonce.as_deref(), Some("n-123"));
    assert!(back.at_hash.is_some());
    assert!(back.exp > back.iat);
    // An ID token is not accepted as an access token.
    assert!(is_invalid_token(tokens.verify_access_token(
        &id,
        &config.issuer("acme"),
        "web"
    )));
}

/// The `tid` is a standard compact JWE: josekit opens ours and we open
/// josekit's; a changed byte, another algorithm, compression, an encrypted
/// key or a key of another kind are refused.
#[tokio::test]
async fn tid_is_a_standard_jwe_and_tampering_is_refused() {
    use josekit::jwe::{self, JweHeader};
    use rampart_auth::KeyStore;
    let config = crate::common::config();
    let store = std::sync::Arc::new(rampart_auth::MemoryKeyStore::new());
    let kek = rampart_auth::KeyEncryptionKey::generate();
    let ring = rampart_auth::KeyRing::open(
        store.clone(),
        kek.clone(),
        rampart_auth::RotationPolicy::from_config(&config),
    )
    .await
    .unwrap();
    let tokens = rampart_auth::TokenService::new(ring.clone(), &config);
    let active = ring
        .active_kid(rampart_auth::KeyKind::TenantEncryption)
        .unwrap();
    let stored = store
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == active)
        .unwrap();
    let jwk = josekit::jwk::Jwk::from_bytes(kek.open(&stored.sealed_private).unwrap()).unwrap();
    let tenant = Uuid::new_v4();

    // Ours opens with josekit.
    let tid = tokens.encrypt_tenant(tenant).unwrap();
    let (plain, header) =
        jwe::deserialize_compact(&tid, &jwe::Dir.decrypter_from_jwk(&jwk).unwrap()).unwrap();
    assert_eq!(plain, tenant.as_bytes());
    assert_eq!(header.key_id(), Some(active.as_str()));
    assert_eq!(tokens.decrypt_tenant(&tid).unwrap(), tenant);

    // josekit's opens with ours (its header is not byte-for-byte ours).
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_key_id(active.clone());
    let theirs = jwe::serialize_compact(
        tenant.as_bytes(),
        &header,
        &jwe::Dir.encrypter_from_jwk(&jwk).unwrap(),
    )
    .unwrap();
    assert_eq!(tokens.decrypt_tenant(&theirs).unwrap(), tenant);

    // Every changed character of every part is refused.
    let refused = |t: &str| matches!(tokens.decrypt_tenant(t), Err(AuthError::InvalidToken(_)));
    for i in 0..tid.len() {
        let mut bytes = tid.clone().into_bytes();
        if bytes[i] == b'.' {
            continue;
        }
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        // A change in the last character's padding bits can decode the same.
        if B64.decode(changed.split('.').nth(4).unwrap()).ok()
            == B64.decode(tid.split('.').nth(4).unwrap()).ok()
            && i >= tid.rfind('.').unwrap()
        {
            continue;
        }
        assert!(refused(&changed), "changed byte {i} accepted");
    }
    let parts: Vec<&str> = tid.split('.').collect();
    let with_header = |h: serde_json::Value| {
        format!(
            "{}..{}.{}.{}",
            B64.encode(h.to_string()),
            parts[2],
            parts[3],
            parts[4]
        )
    };
    let es_kid = ring.active_kid(rampart_auth::KeyKind::Es256).unwrap();
    for h in [
        serde_json::json!({"alg": "A256KW", "enc": "A256GCM", "kid": active}),
        serde_json::json!({"alg": "dir", "enc": "A128GCM", "kid": active}),
        serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": active, "zip": "DEF"}),
        serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": active, "crit": ["x"]}),
        serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": es_kid}),
        serde_json::json!({"alg": "dir", "enc": "A256GCM", "kid": "../etc"}),
        serde_json::json!({"alg": "dir", "enc": "A256GCM"}),
        serde_json::json!({"alg": "none", "enc": "A256GCM", "kid": active}),
    ] {
        assert!(refused(&with_header(h.clone())), "header {h} accepted");
    }
    // A `dir` JWE carries no encrypted key; wrong IV and tag lengths.
    assert!(refused(&format!(
        "{}.AAAA.{}.{}.{}",
        parts[0], parts[2], parts[3], parts[4]
    )));
    assert!(refused(&format!(
        "{}..{}AA.{}.{}",
        parts[0], parts[2], parts[3], parts[4]
    )));
    assert!(refused(&format!(
        "{}..{}.{}.{}",
        parts[0],
        parts[2],
        parts[3],
        &parts[4][..parts[4].len() - 2]
    )));
    assert!(refused(&format!("{tid}.x")));
    assert!(refused(&parts[..4].join(".")));
    // Another platform's tid (its own key) is refused.
    let (_ring2, tokens2, _) = crate::common::memory_tokens().await;
    assert!(refused(&tokens2.encrypt_tenant(tenant).unwrap()));
}
