//! rampart-portfolio against a real PostgreSQL (one database per test).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use rampart_portfolio::{
    Access, Actor, AllocationType, Collaborative, Decimal, NewComment, NewPortfolio,
    PortfolioError, PortfolioId, PortfolioPatch, PortfolioService, PositionInput, ShareGrant,
};
use rampart_tenancy::{TenancyConfig, TenantPool};
use rampart_testkit::{acme, globex, valid_slug};
use uuid::Uuid;

async fn pool() -> TenantPool {
    let db = rampart_testkit::fresh_database().await.unwrap();
    let pool = TenantPool::connect(TenancyConfig::new(db.url.clone(), 8))
        .await
        .unwrap();
    for slug in ["acme", "globex"] {
        pool.provision(&valid_slug(slug), slug).await.unwrap();
    }
    pool
}

async fn user(pool: &TenantPool, tenant: &str, email: &str) -> Uuid {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    pool.with_tenant(&valid_slug(tenant), async |conn| {
        let row: Id = diesel::sql_query("INSERT INTO users (email) VALUES ($1) RETURNING id")
            .bind::<Text, _>(email)
            .get_result(conn)
            .await?;
        Ok::<_, rampart_tenancy::TenancyError>(row.id)
    })
    .await
    .unwrap()
}

/// An exact decimal from its text.
fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn position(symbol: &str, quantity: f64) -> PositionInput {
    PositionInput {
        symbol: symbol.into(),
        quantity: Some(dec(&quantity.to_string())),
        purchase_price: Some(dec("100")),
        sector: Some("Tech".into()),
        ..PositionInput::default()
    }
}

fn new_portfolio(name: &str) -> NewPortfolio {
    NewPortfolio {
        name: name.into(),
        positions: vec![position("msft", 10.0)],
        ..NewPortfolio::default()
    }
}

/// A patch that only makes a portfolio public.
/// Creates `new` in `tenant` as `actor`; its id.
async fn created(
    svc: &PortfolioService,
    tenant: &str,
    actor: &Actor,
    new: NewPortfolio,
) -> PortfolioId {
    svc.create(&valid_slug(tenant), actor, new)
        .await
        .unwrap()
        .portfolio
        .id
}

/// A fresh database with user `email` of acme, the service and the user as
/// an actor.
async fn acme_user(email: &str) -> (TenantPool, PortfolioService, Actor) {
    let pool = pool().await;
    let id = user(&pool, "acme", email).await;
    (
        pool.clone(),
        PortfolioService::new(pool),
        Actor::user(id.into()),
    )
}

fn made_public() -> PortfolioPatch {
    PortfolioPatch {
        is_public: Some(true),
        ..PortfolioPatch::default()
    }
}

/// A comment that answers no other.
fn top_level_comment(body: &str) -> NewComment {
    NewComment {
        body: body.into(),
        parent_id: None,
    }
}

/// Quantities, prices and weights are exact decimals: stored in `numeric`,
/// read back through the crate API with every digit, written to JSON with
/// exactly those digits, and read from JSON exactly (up to 15 significant
/// digits, see `rampart_portfolio::amount`).
#[tokio::test(flavor = "multi_thread")]
async fn amounts_read_back_exactly_through_the_api_and_json() {
    let (_, svc, me) = acme_user("ada@acme.test").await;
    let created = svc
        .create(
            &acme(),
            &me,
            NewPortfolio {
                name: "Exact".into(),
                positions: vec![
                    PositionInput {
                        symbol: "AAPL".into(),
                        quantity: Some(dec("0.1")),
                        purchase_price: Some(dec("0.2")),
                        ..PositionInput::default()
                    },
                    PositionInput {
                        symbol: "MSFT".into(),
                        // 25 significant digits: the largest quantity allowed,
                        // with all ten decimals of numeric(28, 10).
                        quantity: Some(dec("999999999999999.0123456789")),
                        purchase_price: Some(dec("1234.0123456789")),
                        target_weight: Some(dec("0.1234567891")),
                        ..PositionInput::default()
                    },
                ],
                ..NewPortfolio::default()
            },
        )
        .await
        .unwrap();
    let id = created.portfolio.id;
    let got = svc.get(&acme(), &me, id).await.unwrap();
    let (tenth, fine) = (&got.positions[0], &got.positions[1]);

    // The crate API: the very decimals that went in, digit for digit.
    let text = |d: Option<Decimal>| d.map(|d| d.to_string());
    assert_eq!(text(tenth.quantity).as_deref(), Some("0.1"));
    assert_eq!(text(tenth.purchase_price).as_deref(), Some("0.2"));
    assert_eq!(
        tenth.quantity.unwrap() * tenth.purchase_price.unwrap(),
        dec("0.02")
    );
    assert_eq!(
        text(fine.quantity).as_deref(),
        Some("999999999999999.0123456789")
    );
    assert_eq!(
        text(fine.purchase_price).as_deref(),
        Some("1234.0123456789")
    );
    assert_eq!(text(fine.target_weight).as_deref(), Some("0.1234567891"));

    // Its JSON: numbers with exactly those digits.
    let json = serde_json::to_string(&got).unwrap();
    for field in [
        r#""quantity":0.1,"#,
        r#""purchase_price":0.2,"#,
        r#""quantity":999999999999999.0123456789,"#,
        r#""target_weight":0.1234567891,"#,
        r#""purchase_price":1234.0123456789,"#,
    ] {
        assert!(json.contains(field), "{field} in {json}");
    }
    // And back from JSON into the API's input type.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let input: PositionInput = serde_json::from_value(serde_json::json!({
        "symbol": "AAPL",
        "quantity": value["positions"][0]["quantity"],
        "purchase_price": value["positions"][1]["purchase_price"],
        "target_weight": value["positions"][1]["target_weight"],
    }))
    .unwrap();
    assert_eq!(text(input.quantity).as_deref(), Some("0.1"));
    assert_eq!(
        text(input.purchase_price).as_deref(),
        Some("1234.0123456789")
    );
    assert_eq!(text(input.target_weight).as_deref(), Some("0.1234567891"));

    // The stored version and the CSV export carry the same numbers.
    let version = svc.version(&acme(), &me, id, 1).await.unwrap();
    assert_eq!(
        version.snapshot["positions"][0]["quantity"],
        serde_json::json!(0.1)
    );
    let csv = svc.export_csv(&acme(), &me, id).await.unwrap();
    assert!(csv.contains("AAPL,quantity,0.1,,0.2,"), "{csv}");
    assert!(
        csv.contains("MSFT,quantity,999999999999999.0123456789,0.1234567891,1234.0123456789,"),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn positions_of_many_answers_what_get_answers_for_visible_portfolios_only() {
    let pool = pool().await;
    let ada = user(&pool, "acme", "ada@acme.test").await;
    let bob = user(&pool, "acme", "bob@acme.test").await;
    let svc = PortfolioService::new(pool);
    let (ada, bob) = (Actor::user(ada.into()), Actor::user(bob.into()));
    let mut mine = Vec::new();
    for name in ["A", "B"] {
        let mut new = new_portfolio(name);
        new.positions.push(position("ibm", 2.5));
        mine.push(svc.create(&acme(), &ada, new).await.unwrap());
    }
    let empty = NewPortfolio {
        name: "Empty".into(),
        ..NewPortfolio::default()
    };
    let empty = svc.create(&acme(), &ada, empty).await.unwrap();
    let bobs = svc
        .create(&acme(), &bob, new_portfolio("Bob's"))
        .await
        .unwrap();
    let ids: Vec<PortfolioId> = mine
        .iter()
        .chain([&empty, &bobs])
        .map(|d| d.portfolio.id)
        .chain([PortfolioId::new_v4()])
        .collect();

    let batch = svc.positions_of_many(&acme(), &ada, &ids).await.unwrap();
    // Each list as `get` gives it; Bob's private one and an unknown id are
    // left out, an empty portfolio has an empty list.
    assert_eq!(batch.len(), 3, "{batch:?}");
    for d in &mine {
        let got = svc.get(&acme(), &ada, d.portfolio.id).await.unwrap();
        assert_eq!(batch[&d.portfolio.id], got.positions);
        assert_eq!(got.positions.len(), 2);
    }
    assert!(batch[&empty.portfolio.id].is_empty());
    assert!(!batch.contains_key(&bobs.portfolio.id));
    // Another tenant sees none of them.
    let other = svc.positions_of_many(&globex(), &ada, &ids).await.unwrap();
    assert!(other.is_empty());
    assert!(
        svc.positions_of_many(&acme(), &ada, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_creates_a_version_per_change_and_an_activity_trail() {
    let pool = pool().await;
    let ada = user(&pool, "acme", "ada@acme.test").await;
    let svc = PortfolioService::new(pool);
    let me = Actor {
        ip: Some("10.0.0.1".into()),
        ..Actor::user(ada.into())
    };
    let p = svc
        .create(&acme(), &me, new_portfolio("Core"))
        .await
        .unwrap();
    let id = p.portfolio.id;
    assert_eq!(p.portfolio.version, 1);
    assert_eq!(p.portfolio.access, Access::Owner);
    assert_eq!(p.positions[0].symbol, "MSFT");

    let p = svc
        .update(
            &acme(),
            &me,
            id,
            PortfolioPatch {
                name: Some("Core 2".into()),
                ..made_public()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (p.portfolio.version, p.portfolio.name.as_str()),
        (2, "Core 2")
    );
    let p = svc
        .add_position(
            &acme(),
            &me,
            id,
            PositionInput {
                symbol: "IBM".into(),
                allocation_type: AllocationType::Weight,
                target_weight: Some(crate::dec("0.5")),
                ..PositionInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.portfolio.version, 3);
    let ibm = p.positions.iter().find(|x| x.symbol == "IBM").unwrap().id;
    let p = svc
        .update_position(&acme(), &me, id, ibm, position("IBM", 3.0))
        .await
        .unwrap();
    assert_eq!(p.portfolio.version, 4);
    let p = svc.remove_position(&acme(), &me, id, ibm).await.unwrap();
    assert_eq!(p.portfolio.version, 5);
    assert_eq!(p.positions.len(), 1);

    // Every version is readable; version 2 still has one position and the new name.
    let versions = svc.versions(&acme(), &me, id, None, 2).await.unwrap();
    assert_eq!(versions.items.len(), 2);
    assert_eq!(versions.items[0].version, 5);
    let rest = svc
        .versions(&acme(), &me, id, versions.next.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    let v3 = svc.version(&acme(), &me, id, 3).await.unwrap();
    assert_eq!(v3.change, "add_position");
    assert_eq!(v3.snapshot["positions"].as_array().unwrap().len(), 2);
    assert_eq!(v3.snapshot["name"], "Core 2");
    assert!(v3.snapshot.get("access").is_none());
    assert!(matches!(
        svc.version(&acme(), &me, id, 99).await,
        Err(PortfolioError::NotFound)
    ));

    let activity = svc.activity(&acme(), &me, id, None, 50).await.unwrap();
    let actions: Vec<_> = activity.items.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "remove_position",
            "update_position",
            "add_position",
            "update",
            "create"
        ]
    );
    let update = &activity.items[3];
    assert_eq!(update.before.as_ref().unwrap()["name"], "Core");
    assert_eq!(update.after.as_ref().unwrap()["name"], "Core 2");
    assert_eq!(update.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(update.actor_id, Some(ada));

    svc.delete(&acme(), &me, id).await.unwrap();
    assert!(matches!(
        svc.get(&acme(), &me, id).await,
        Err(PortfolioError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_inputs_are_refused() {
    let (_, svc, me) = acme_user("ada@acme.test").await;
    for bad in [
        NewPortfolio {
            name: " ".into(),
            ..NewPortfolio::default()
        },
        NewPortfolio {
            base_currency: Some("dollars".into()),
            ..new_portfolio("x")
        },
        NewPortfolio {
            settings: Some(serde_json::json!([1])),
            ..new_portfolio("x")
        },
        NewPortfolio {
            positions: vec![position("BAD SYMBOL", 1.0)],
            ..new_portfolio("x")
        },
        NewPortfolio {
            positions: vec![position("MSFT", -1.0)],
            ..new_portfolio("x")
        },
        NewPortfolio {
            positions: vec![
                PositionInput {
                    symbol: "A".into(),
                    allocation_type: AllocationType::Weight,
                    target_weight: Some(crate::dec("0.7")),
                    ..PositionInput::default()
                },
                PositionInput {
                    symbol: "B".into(),
                    allocation_type: AllocationType::Weight,
                    target_weight: Some(crate::dec("0.7")),
                    ..PositionInput::default()
                },
            ],
            ..new_portfolio("x")
        },
    ] {
        let r = svc.create(&acme(), &me, bad.clone()).await;
        assert!(
            matches!(r, Err(PortfolioError::Invalid(_))),
            "{bad:?}: {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sharing_levels_expiry_revocation_and_tenant_boundaries() {
    let pool = pool().await;
    let ada = user(&pool, "acme", "ada@acme.test").await;
    let bob = user(&pool, "acme", "bob@acme.test").await;
    let eve = user(&pool, "acme", "eve@acme.test").await;
    let gus = user(&pool, "globex", "gus@globex.test").await;
    let svc = PortfolioService::new(pool.clone());
    let (owner, b, e) = (
        Actor::user(ada.into()),
        Actor::user(bob.into()),
        Actor::user(eve.into()),
    );
    let id = created(&svc, "acme", &owner, new_portfolio("Core")).await;

    // Not shared: bob sees nothing (not found, not forbidden).
    assert!(matches!(
        svc.get(&acme(), &b, id).await,
        Err(PortfolioError::NotFound)
    ));
    assert!(
        svc.list(&acme(), &b, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let grant = |user_id, access| ShareGrant {
        user_id,
        access,
        expires_at: None,
    };
    svc.share(&acme(), &owner, id, grant(bob.into(), Access::View))
        .await
        .unwrap();
    assert_eq!(
        svc.get(&acme(), &b, id).await.unwrap().portfolio.access,
        Access::View
    );
    assert_eq!(
        svc.list(&acme(), &b, None, 10).await.unwrap().items.len(),
        1
    );
    let forbidden = svc.comment(&acme(), &b, id, top_level_comment("hi")).await;
    assert!(matches!(
        forbidden,
        Err(PortfolioError::Forbidden { needed: "comment" })
    ));

    svc.share(&acme(), &owner, id, grant(bob.into(), Access::Comment))
        .await
        .unwrap();
    let c = svc
        .comment(&acme(), &b, id, top_level_comment("hi"))
        .await
        .unwrap();
    let reply = svc
        .comment(
            &acme(),
            &owner,
            id,
            NewComment {
                body: "hello".into(),
                parent_id: Some(c.id),
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.parent_id, Some(c.id));
    assert_eq!(svc.comments(&acme(), &b, id).await.unwrap().len(), 2);
    assert!(matches!(
        svc.add_position(&acme(), &b, id, position("IBM", 1.0))
            .await,
        Err(PortfolioError::Forbidden { needed: "edit" })
    ));

    svc.share(&acme(), &owner, id, grant(bob.into(), Access::Edit))
        .await
        .unwrap();
    svc.add_position(&acme(), &b, id, position("IBM", 1.0))
        .await
        .unwrap();
    assert!(matches!(
        svc.share(&acme(), &b, id, grant(eve.into(), Access::View))
            .await,
        Err(PortfolioError::Forbidden { needed: "admin" })
    ));
    assert!(matches!(
        svc.delete(&acme(), &b, id).await,
        Err(PortfolioError::Forbidden { .. })
    ));

    svc.share(&acme(), &owner, id, grant(bob.into(), Access::Admin))
        .await
        .unwrap();
    svc.share(&acme(), &b, id, grant(eve.into(), Access::View))
        .await
        .unwrap();
    assert_eq!(svc.shares(&acme(), &b, id).await.unwrap().len(), 2);
    svc.revoke(&acme(), &b, id, eve.into()).await.unwrap();
    assert!(matches!(
        svc.get(&acme(), &e, id).await,
        Err(PortfolioError::NotFound)
    ));
    assert!(matches!(
        svc.revoke(&acme(), &b, id, eve.into()).await,
        Err(PortfolioError::NotFound)
    ));

    // Refusals of the grant itself.
    assert!(matches!(
        svc.share(&acme(), &owner, id, grant(ada.into(), Access::View))
            .await,
        Err(PortfolioError::Invalid(_))
    ));
    assert!(matches!(
        svc.share(&acme(), &owner, id, grant(gus.into(), Access::View))
            .await,
        Err(PortfolioError::Invalid(_))
    ));
    assert!(matches!(
        svc.share(&acme(), &owner, id, grant(eve.into(), Access::Owner))
            .await,
        Err(PortfolioError::Invalid(_))
    ));

    // An expired share is no share: make eve's expire by moving it back.
    svc.share(
        &acme(),
        &owner,
        id,
        ShareGrant {
            user_id: eve.into(),
            access: Access::Edit,
            expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        svc.get(&acme(), &e, id).await.unwrap().portfolio.access,
        Access::Edit
    );
    pool.with_tenant(&acme(), async |conn| {
        diesel::sql_query("UPDATE document_shares SET expires_at = now() - interval '1 second' WHERE user_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(eve)
            .execute(conn)
            .await?;
        Ok::<_, rampart_tenancy::TenancyError>(())
    })
    .await
    .unwrap();
    assert!(matches!(
        svc.get(&acme(), &e, id).await,
        Err(PortfolioError::NotFound)
    ));

    // A tenant administrator sees it; another tenant never does, even with the same id.
    let admin = Actor {
        tenant_admin: true,
        ..Actor::user(eve.into())
    };
    assert_eq!(
        svc.get(&acme(), &admin, id).await.unwrap().portfolio.access,
        Access::Admin
    );
    let g = Actor {
        tenant_admin: true,
        ..Actor::user(gus.into())
    };
    assert!(matches!(
        svc.get(&globex(), &g, id).await,
        Err(PortfolioError::NotFound)
    ));
    assert!(matches!(
        svc.get(&globex(), &owner, id).await,
        Err(PortfolioError::NotFound)
    ));

    // Public: every user of the tenant may view.
    svc.update(&acme(), &owner, id, made_public())
        .await
        .unwrap();
    assert_eq!(
        svc.get(&acme(), &e, id).await.unwrap().portfolio.access,
        Access::View
    );

    let actions: Vec<String> = svc
        .activity(&acme(), &owner, id, None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.action)
        .collect();
    for expected in ["share", "revoke", "comment", "add_position"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_import_is_all_or_nothing_and_export_round_trips() {
    let (_, svc, me) = acme_user("ada@acme.test").await;
    let id = created(&svc, "acme", &me, new_portfolio("Core")).await;

    let broken = "symbol,quantity,purchase_date,allocation_type\nAAPL,5,2005-01-03,\nBAD SYM,1,,\nIBM,abc,,\nGOOG,1,2005-13-01,\nAMZN,,,weight\nX,1,,bogus\n";
    let Err(PortfolioError::CsvRejected(report)) = svc
        .import_csv(&acme(), &me, id, broken.as_bytes(), true)
        .await
    else {
        panic!("broken rows must be refused")
    };
    assert_eq!(report.rows, 6);
    assert_eq!(report.applied, 0);
    let lines: Vec<(u64, &str)> = report
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (3, "symbol"),
            (4, "quantity"),
            (5, "purchase_date"),
            (6, "target_weight"),
            (7, "allocation_type")
        ]
    );
    // Nothing applied.
    let now = svc.get(&acme(), &me, id).await.unwrap();
    assert_eq!((now.portfolio.version, now.positions.len()), (1, 1));

    for bad_header in ["ticker,quantity\nAAPL,1\n", "quantity\n1\n"] {
        assert!(matches!(
            svc.import_csv(&acme(), &me, id, bad_header.as_bytes(), true)
                .await,
            Err(PortfolioError::CsvRejected(_))
        ));
    }
    let big = vec![b'a'; rampart_portfolio::transfer::MAX_BYTES + 1];
    assert!(matches!(
        svc.import_csv(&acme(), &me, id, &big, true).await,
        Err(PortfolioError::TooLarge { unit: "bytes", .. })
    ));
    let mut many = String::from("symbol,quantity\n");
    for _ in 0..=rampart_portfolio::transfer::MAX_ROWS {
        many.push_str("A,1\n");
    }
    assert!(matches!(
        svc.import_csv(&acme(), &me, id, many.as_bytes(), true)
            .await,
        Err(PortfolioError::TooLarge { unit: "rows", .. })
    ));

    let good = "symbol,allocation_type,quantity,target_weight,purchase_price,purchase_date,sector,notes\n\
                aapl,quantity,5,,30.5,2005-01-03,Tech,first\nIBM,weight,,0.25,,,,\"a, b\"\n";
    let (report, detail) = svc
        .import_csv(&acme(), &me, id, good.as_bytes(), true)
        .await
        .unwrap();
    assert_eq!((report.rows, report.applied), (2, 2));
    assert_eq!(detail.portfolio.version, 2);
    assert_eq!(detail.positions.len(), 2);
    let exported = svc.export_csv(&acme(), &me, id).await.unwrap();
    assert!(
        exported.starts_with("symbol,allocation_type,quantity"),
        "{exported}"
    );
    assert!(
        exported.contains("AAPL,quantity,5,,30.5,2005-01-03,Tech,first"),
        "{exported}"
    );
    assert!(exported.contains("\"a, b\""), "{exported}");
    // Append keeps what is there.
    let (_, detail) = svc
        .import_csv(&acme(), &me, id, b"symbol,quantity\nMSFT,2\n", false)
        .await
        .unwrap();
    assert_eq!(detail.positions.len(), 3);
    // The export imports back to the same positions.
    let (_, again) = svc
        .import_csv(&acme(), &me, id, exported.as_bytes(), true)
        .await
        .unwrap();
    let strip = |d: &rampart_portfolio::PortfolioDetail| {
        d.positions
            .iter()
            .map(|p| {
                (
                    p.symbol.clone(),
                    p.quantity,
                    p.target_weight,
                    p.notes.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&again),
        strip(&svc.get(&acme(), &me, id).await.unwrap())
    );
    assert_eq!(again.positions.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_export_neutralises_spreadsheet_formulas_in_text_cells() {
    let (_, svc, me) = acme_user("ada-csv@acme.test").await;
    let id = created(&svc, "acme", &me, new_portfolio("Formulas")).await;
    let hostile = "symbol,allocation_type,quantity,target_weight,purchase_price,purchase_date,sector,notes\n\
                   AAPL,quantity,5,,30.5,,@SUM(A1),\"=HYPERLINK(\"\"https://evil.test\"\",\"\"x\"\")\"\n\
                   MSFT,quantity,2,,,,+cmd,-2+3\n\
                   IBM,quantity,1,,,,Tech,plain note\n";
    svc.import_csv(&acme(), &me, id, hostile.as_bytes(), true)
        .await
        .unwrap();
    let exported = svc.export_csv(&acme(), &me, id).await.unwrap();
    let cells: Vec<Vec<String>> = csv::Reader::from_reader(exported.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let by_symbol = |symbol: &str| {
        cells
            .iter()
            .find(|row| row[0] == symbol)
            .unwrap_or_else(|| panic!("{symbol} missing: {exported}"))
    };
    let aapl = by_symbol("AAPL");
    assert_eq!(aapl[6], "'@SUM(A1)", "{exported}");
    assert_eq!(aapl[7], "'=HYPERLINK(\"https://evil.test\",\"x\")");
    assert_eq!(aapl[2], "5", "numbers stay numbers");
    let msft = by_symbol("MSFT");
    assert_eq!((msft[6].as_str(), msft[7].as_str()), ("'+cmd", "'-2+3"));
    let ibm = by_symbol("IBM");
    assert_eq!((ibm[6].as_str(), ibm[7].as_str()), ("Tech", "plain note"));
    // No cell of the export starts a formula.
    for cell in cells.iter().flatten() {
        assert!(
            !(cell.starts_with(['=', '+', '@', '\t', '\r'])
                || cell.starts_with('-') && cell.parse::<f64>().is_err()),
            "{cell:?} in {exported}"
        );
    }
}

mod analytics {

    use chrono::NaiveDate;
    use rampart_portfolio::analysis::{AnalysisInput, analyze, performance_csv};
    use rampart_portfolio::charts::{equity_svg, returns_histogram_svg};
    use rampart_portfolio::{NewPortfolio, PortfolioError, PositionInput, PriceHistory};
    use rampart_testkit::acme;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, day).unwrap()
    }

    fn prices() -> PriceHistory {
        let mut p = PriceHistory::new();
        p.insert(
            "A".into(),
            [10.0, 11.0, 12.0, 11.0, 13.0]
                .iter()
                .enumerate()
                .map(|(i, c)| (d(i as u32 + 1), *c))
                .collect(),
        );
        p.insert(
            "B".into(),
            [20.0, 20.0, 22.0, 22.0, 24.0]
                .iter()
                .enumerate()
                .map(|(i, c)| (d(i as u32 + 1), *c))
                .collect(),
        );
        p
    }

    fn portfolio() -> NewPortfolio {
        NewPortfolio {
            name: "Analytics".into(),
            positions: vec![
                PositionInput {
                    symbol: "A".into(),
                    quantity: Some(crate::dec("10.0")),
                    target_weight: Some(crate::dec("0.5")),
                    sector: Some("Tech".into()),
                    ..PositionInput::default()
                },
                PositionInput {
                    symbol: "B".into(),
                    quantity: Some(crate::dec("5.0")),
                    purchase_date: Some(d(3)),
                    sector: Some("Energy".into()),
                    ..PositionInput::default()
                },
            ],
            ..NewPortfolio::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn nav_flows_twr_allocation_rebalancing_stored_and_charted() {
        let (pool, svc, me) = super::acme_user("ada@acme.test").await;
        let id = super::created(&svc, "acme", &me, portfolio()).await;
        let prices = prices();
        let bench: Vec<(NaiveDate, f64)> = (1..=5).map(|i| (d(i), 100.0 + f64::from(i))).collect();
        let input = AnalysisInput {
            prices: &prices,
            benchmark: Some(("IDX", &bench)),
            from: d(1),
            to: d(5),
        };
        let (points, report) = svc.analyze(&acme(), &me, id, &input).await.unwrap();
        let navs: Vec<f64> = points.iter().map(|p| p.nav).collect();
        assert_eq!(navs, [100.0, 110.0, 230.0, 220.0, 250.0]);
        assert_eq!(points[2].flow, 110.0);
        assert!((points[2].daily_return.unwrap() - (120.0 / 110.0 - 1.0)).abs() < 1e-12);
        let twr = report.performance.twr.unwrap();
        assert!((twr - (300.0 / 230.0 - 1.0)).abs() < 1e-12, "{twr}");
        assert!((points[4].cumulative_return - twr).abs() < 1e-12);
        assert!(report.performance.mwr.is_some());
        assert!(report.risk.beta.is_some());
        assert!(report.risk.max_drawdown.unwrap() < 0.0);
        assert!(points[3].max_drawdown < 0.0);
        assert_eq!(report.frequency, "daily");
        let a = &report.allocation_by_symbol[0];
        assert_eq!((a.key.as_str(), a.value), ("A", 130.0));
        assert!((a.weight - 0.52).abs() < 1e-12);
        assert_eq!(report.allocation_by_sector.len(), 2);
        let trade = &report.rebalancing[0];
        assert_eq!(trade.symbol, "A");
        assert!((trade.quantity - (-5.0 / 13.0)).abs() < 1e-12);

        // Stored in portfolio_metrics_daily (and recomputing replaces, not duplicates).
        svc.analyze(&acme(), &me, id, &input).await.unwrap();
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n: N = pool
            .with_tenant(&acme(), async |conn| {
                use diesel_async::RunQueryDsl;
                Ok::<_, rampart_tenancy::TenancyError>(
                    diesel::sql_query(
                        "SELECT count(*) AS n FROM portfolio_metrics_daily WHERE nav > 0",
                    )
                    .get_result(conn)
                    .await?,
                )
            })
            .await
            .unwrap();
        assert_eq!(n.n, 5);

        let csv = performance_csv(&points);
        assert!(csv.starts_with("date,nav,daily_return,cumulative_return,volatility_30d,max_drawdown\n2024-01-01,100,,0,,0\n"), "{csv}");
        let svg = equity_svg(&points, "Analytics").unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("Drawdown") && svg.contains("<polygon"),
            "{svg}"
        );
        let returns: Vec<f64> = points.iter().filter_map(|p| p.daily_return).collect();
        let svg = returns_histogram_svg(&returns, -0.04, -0.05, "Returns").unwrap();
        assert!(
            svg.contains("VaR 95%: -4.00%") && svg.contains("CVaR 95%: -5.00%"),
            "{svg}"
        );

        // No prices for a symbol, and an empty window.
        let mut missing = prices.clone();
        missing.remove("B");
        let input = AnalysisInput {
            prices: &missing,
            benchmark: None,
            from: d(1),
            to: d(5),
        };
        assert!(matches!(
            svc.analyze(&acme(), &me, id, &input).await,
            Err(PortfolioError::MissingPrices { .. })
        ));
        let detail = svc.get(&acme(), &me, id).await.unwrap();
        let input = AnalysisInput {
            prices: &prices,
            benchmark: None,
            from: d(6),
            to: d(9),
        };
        assert!(analyze(&detail, &input).is_err());
    }

    #[test]
    fn weight_positions_use_the_notional_and_keep_the_rest_as_cash() {
        let detail = rampart_portfolio::PortfolioDetail {
            portfolio: rampart_portfolio::Portfolio {
                id: uuid::Uuid::nil().into(),
                owner_id: uuid::Uuid::nil().into(),
                name: "w".into(),
                description: String::new(),
                base_currency: "USD".into(),
                is_public: false,
                settings: serde_json::json!({"notional": 1000.0}),
                version: 1,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
                access: rampart_portfolio::Access::Owner,
            },
            positions: vec![rampart_portfolio::Position {
                id: uuid::Uuid::nil(),
                symbol: "A".into(),
                allocation_type: rampart_portfolio::AllocationType::Weight,
                quantity: None,
                target_weight: Some(crate::dec("0.6")),
                purchase_price: None,
                purchase_date: None,
                sector: None,
                notes: String::new(),
            }],
        };
        let prices = prices();
        let input = AnalysisInput {
            prices: &prices,
            benchmark: None,
            from: d(1),
            to: d(5),
        };
        let (points, report) = analyze(&detail, &input).unwrap();
        // 600 in A at 10 = 60 units, 400 cash.
        assert_eq!(points[0].nav, 1000.0);
        assert_eq!(points[4].nav, 60.0 * 13.0 + 400.0);
        assert!(
            report
                .allocation_by_symbol
                .iter()
                .any(|s| s.key == "CASH" && s.value == 400.0)
        );
        assert!(
            report
                .allocation_by_sector
                .iter()
                .any(|s| s.key == "Unclassified")
        );
    }
}

/// Every change of a document moves its tenant's generation of
/// `CHANGE_TOPIC` on the change feed (what the server keys cached analytics
/// by); a refused change and another tenant's changes do not.
#[tokio::test(flavor = "multi_thread")]
async fn every_document_change_is_announced_on_its_tenants_change_feed() {
    use rampart_portfolio::CHANGE_TOPIC;
    use rampart_tenancy::ChangeFeed;
    let pool = pool().await;
    let ada = user(&pool, "acme", "ada@acme.test").await;
    let bob = user(&pool, "acme", "bob@acme.test").await;
    let gus = user(&pool, "globex", "gus@globex.test").await;
    let acme = pool.tenant(&acme()).await.unwrap().id;
    let globex = pool.tenant(&globex()).await.unwrap().id;
    // Read on every call: what another replica sees once its bound passes.
    let feed = ChangeFeed::new(pool.clone(), std::time::Duration::ZERO);
    let svc = PortfolioService::new(pool.clone());
    let (owner, g) = (Actor::user(ada.into()), Actor::user(gus.into()));
    let generation = async |tenant| feed.generation(tenant, CHANGE_TOPIC).await.unwrap();

    let mut last = generation(acme).await;
    let globex_before = generation(globex).await;
    let id = created(&svc, "acme", &owner, new_portfolio("Core")).await;
    let mut moved = async |what: &str| {
        let now = generation(acme).await;
        assert_ne!(now, last, "{what} was not announced");
        last = now;
    };
    moved("create").await;
    svc.update(&valid_slug("acme"), &owner, id, made_public())
        .await
        .unwrap();
    moved("update").await;
    let grant = ShareGrant {
        user_id: bob.into(),
        access: Access::View,
        expires_at: None,
    };
    svc.share(&valid_slug("acme"), &owner, id, grant)
        .await
        .unwrap();
    moved("share").await;
    svc.revoke(&valid_slug("acme"), &owner, id, bob.into())
        .await
        .unwrap();
    moved("revoke").await;
    svc.comment(&valid_slug("acme"), &owner, id, top_level_comment("note"))
        .await
        .unwrap();
    moved("comment").await;

    // A refused change announces nothing.
    let refused = svc
        .create(
            &valid_slug("acme"),
            &owner,
            NewPortfolio {
                name: String::new(),
                ..NewPortfolio::default()
            },
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(generation(acme).await, last);
    // Another tenant's change moves only that tenant's generation.
    svc.create(&valid_slug("globex"), &g, new_portfolio("Theirs"))
        .await
        .unwrap();
    assert_eq!(generation(acme).await, last);
    assert_ne!(generation(globex).await, globex_before);
}
