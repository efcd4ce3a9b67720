//! EPV Valuation Pro's journey (seed 002) over real TLS against real
//! PostgreSQL: an analyst values a company (every figure of the hand-worked
//! case checked), changes an input (a new version, valued anew, and the
//! diff between versions), shares the case with a colleague who may comment
//! and attach an agent's analysis but not edit, reads the activity with
//! before/after values, exports it (JSON, CSV), imports the browser app's
//! cases (validated, all or nothing, idempotent), and bad inputs get a
//! clear error naming the field.

use crate::common::{env, epv_case, role_token, strs};
use rampart_auth::Role;
use serde_json::{Value, json};

const SCOPES: &str = "portfolio:read portfolio:write";
const C: &str = "/api/v1/t/acme/cases";

/// A decimal as text without trailing zeros (`"75.00"` → `"75"`), so the
/// figures compare by value whatever scale the arithmetic left.
fn num(v: &Value) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"));
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

fn changed<'a>(diff: &'a Value, path: &str) -> Option<&'a Value> {
    diff["data"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_analyst_values_versions_shares_exports_and_imports_cases() {
    let env = env().await;
    let auth = env.auth();
    let scopes = (SCOPES, SCOPES);
    let (_, ana) = role_token(&auth, "acme", "ana@acme.test", Role::Trader, scopes).await;
    let (colleague_id, col) =
        role_token(&auth, "acme", "col@acme.test", Role::Trader, scopes).await;
    let (_, other) = role_token(&auth, "globex", "eve@globex.test", Role::Trader, scopes).await;

    // Create: valued at once, every figure as worked by hand.
    let created = env.with(&ana).post(201, C, epv_case("acme")).await;
    let case = &created["data"];
    let id = case["id"].as_str().unwrap().to_owned();
    let path = format!("{C}/{id}");
    assert_eq!(
        (&case["ticker"], &case["version"], &case["access"]),
        (&json!("ACME"), &json!(1), &json!("owner"))
    );
    let v = &case["valuation"];
    let figures = [
        ("normalised_margin", "0.1"),
        ("normalised_operating_income", "100"),
        ("taxes", "25"),
        ("nopat", "75"),
        ("epv_operations", "750"),
        ("equity_value", "600"),
        ("value_per_share", "60"),
    ];
    for (figure, expected) in figures {
        assert_eq!(num(&v[figure]), expected, "{figure}");
    }
    assert_eq!(num(&v["capital"]["wacc"]), "0.1");
    assert!(
        v["margin_of_safety"]
            .as_str()
            .unwrap()
            .starts_with("0.16666")
    );

    // Change the tax rate: version 2, NOPAT 80, EPV 800, 650 / 10 = 65.
    let mut inputs = epv_case("ACME")["inputs"].clone();
    inputs["adjustments"]["tax_rate"] = json!("0.20");
    let updated = env
        .with(&ana)
        .patch(200, &path, json!({"inputs": inputs, "change": "lower tax"}))
        .await;
    assert_eq!(updated["data"]["version"], 2);
    assert_eq!(num(&updated["data"]["valuation"]["value_per_share"]), "65");
    let diff = env
        .with(&ana)
        .get(200, &format!("{path}/diff?from=1&to=2"))
        .await;
    let tax = changed(&diff, "inputs.adjustments.tax_rate").unwrap();
    assert_eq!(
        (&tax["before"], &tax["after"]),
        (&json!("0.25"), &json!("0.20"))
    );
    let nopat = changed(&diff, "valuation.nopat").unwrap();
    assert_eq!(num(&nopat["before"]), "75");
    assert_eq!(num(&nopat["after"]), "80");
    assert!(changed(&diff, "ticker").is_none());
    let versions = env.with(&ana).get(200, &format!("{path}/versions")).await;
    let changes = strs(&versions["data"], "change");
    assert_eq!(changes, ["lower tax", "create"]);
    let v1 = env.with(&ana).get(200, &format!("{path}/versions/1")).await;
    assert_eq!(
        num(&v1["data"]["snapshot"]["valuation"]["value_per_share"]),
        "60"
    );

    // A colleague sees nothing until it is shared, then may comment and
    // attach an analysis, not edit; another tenant never sees it.
    env.with(&col).get(404, &path).await;
    env.with(&other).get(401, &path).await;
    env.with(&ana)
        .post(
            200,
            &format!("{path}/shares"),
            json!({"user_id": colleague_id, "access": "comment"}),
        )
        .await;
    let seen = env.with(&col).get(200, &path).await;
    assert_eq!(seen["data"]["access"], "comment");
    let listed = env.with(&col).get(200, C).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    env.with(&col)
        .patch(403, &path, json!({"name": "mine now"}))
        .await;
    env.with(&col).delete(403, &path).await;
    env.with(&col)
        .post(
            201,
            &format!("{path}/comments"),
            json!({"body": "the 2024 margin looks cyclical"}),
        )
        .await;
    let analysis = json!({"moat": "narrow", "confidence": 0.7, "sources": ["10-K 2024"]});
    let attached = env
        .with(&col)
        .post(
            201,
            &format!("{path}/analyses"),
            json!({"source": "agent:moat-analyst", "document": analysis, "version": 1}),
        )
        .await;
    assert_eq!(attached["data"]["version"], 1);
    env.with(&col)
        .post(
            404,
            &format!("{path}/analyses"),
            json!({"source": "agent:x", "document": {}, "version": 9}),
        )
        .await;
    env.with(&col)
        .post(
            400,
            &format!("{path}/analyses"),
            json!({"source": "agent:x", "document": "just text"}),
        )
        .await;
    let of_v1 = env
        .with(&ana)
        .get(200, &format!("{path}/analyses?version=1"))
        .await;
    assert_eq!(of_v1["data"][0]["document"], analysis);
    let of_v2 = env
        .with(&ana)
        .get(200, &format!("{path}/analyses?version=2"))
        .await;
    assert_eq!(of_v2["data"].as_array().unwrap().len(), 0);

    // Activity, newest first, with before/after values.
    let activity = env.with(&ana).get(200, &format!("{path}/activity")).await;
    let actions = strs(&activity["data"], "action");
    assert_eq!(
        actions,
        ["analysis", "comment", "share", "lower tax", "create"]
    );
    let update = &activity["data"][3];
    assert_eq!(num(&update["before"]["valuation"]["nopat"]), "75");
    assert_eq!(num(&update["after"]["valuation"]["nopat"]), "80");

    // Export: JSON with the history, CSV with every figure exact.
    let export = env.with(&col).get(200, &format!("{path}/export")).await;
    let e = &export["data"];
    assert_eq!(e["versions"].as_array().unwrap().len(), 2);
    assert_eq!(e["comments"].as_array().unwrap().len(), 1);
    assert_eq!(e["analyses"].as_array().unwrap().len(), 1);
    let csv = env.expect_csv(&format!("{path}/export.csv"), &col).await;
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("section,path,value"));
    let cells: std::collections::HashMap<(String, String), String> = lines
        .map(|l| {
            let mut c = l.splitn(3, ',');
            let mut next = || c.next().unwrap_or_default().to_owned();
            ((next(), next()), next())
        })
        .collect();
    for (section, path, expected) in [
        ("case", "ticker", "ACME"),
        ("case", "version", "2"),
        ("inputs", "adjustments.tax_rate", "0.2"),
        ("inputs", "fiscal_years[1].operating_income", "80"),
        ("valuation", "nopat", "80"),
        ("valuation", "value_per_share", "65"),
    ] {
        let cell = cells.get(&(section.into(), path.into()));
        let cell = cell.unwrap_or_else(|| panic!("{section},{path} missing from\n{csv}"));
        assert_eq!(num(&json!(cell)), expected, "{section},{path}");
    }

    // Bad inputs: a clear error naming the field; nothing stored.
    let mut bad = epv_case("BAD");
    bad["inputs"]["claims"]["diluted_shares"] = json!("-5");
    let refused = env.with(&ana).post(400, C, bad).await;
    assert_eq!(refused["error"]["code"], "invalid_request");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claims.diluted_shares"),
        "{refused}"
    );
    let mut growth = epv_case("GRW");
    growth["inputs"]["growth"] =
        json!({"growth_rate": "0.12", "return_on_invested_capital": "0.2"});
    let refused = env.with(&ana).post(400, C, growth).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("below the cost of capital"),
        "{refused}"
    );
    env.with(&ana)
        .post(
            400,
            C,
            json!({"ticker": "A B", "inputs": epv_case("X")["inputs"]}),
        )
        .await;
    let mine = env.with(&ana).get(200, C).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);

    // Import from the browser app: all or nothing, then idempotent.
    let browser_case = |id: &str, ticker: &str| {
        json!({"id": id, "ticker": ticker, "companyName": format!("{ticker} Inc."),
               "inputs": epv_case(ticker)["inputs"],
               "analyses": [{"agent": "agent:summary", "result": {"text": "cheap"}}]})
    };
    let broken = json!({"cases": [
        browser_case("case-1", "AAA"),
        {"id": "case-2", "ticker": "BBB", "inputs": {"currency": "USD"}},
    ]});
    let refused = env
        .with(&ana)
        .post(422, &format!("{C}/import"), broken)
        .await;
    assert_eq!(refused["error"]["code"], "import_rejected");
    let items = &refused["error"]["details"]["items"];
    assert_eq!(items[0]["outcome"], "created");
    assert_eq!(items[1]["outcome"], "refused");
    assert!(
        items[1]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("cases[1].inputs")
    );
    assert_eq!(
        env.with(&ana).get(200, C).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let export = json!({"cases": [browser_case("case-1", "AAA"), browser_case("case-2", "BBB")]});
    let first = env
        .with(&ana)
        .post(200, &format!("{C}/import"), export.clone())
        .await;
    assert_eq!(
        (&first["data"]["created"], &first["data"]["skipped"]),
        (&json!(2), &json!(0))
    );
    let again = env
        .with(&ana)
        .post(200, &format!("{C}/import"), export)
        .await;
    assert_eq!(
        (&again["data"]["created"], &again["data"]["skipped"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(
        again["data"]["items"][0]["case_id"],
        first["data"]["items"][0]["case_id"]
    );
    let imported = first["data"]["items"][1]["case_id"].as_str().unwrap();
    let analyses = env
        .with(&ana)
        .get(200, &format!("{C}/{imported}/analyses"))
        .await;
    assert_eq!(analyses["data"][0]["source"], "agent:summary");
    let all = env.with(&ana).get(200, C).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);

    // Without a price in the inputs, the market's price is kept with the
    // version and the margin of safety measured against it.
    let mut unpriced = epv_case("^GSPC");
    unpriced["inputs"]["current_price"] = Value::Null;
    unpriced["ticker"] = json!("MSFT");
    let priced = env.with(&ana).post(201, C, unpriced).await;
    let price = &priced["data"]["inputs"]["current_price"];
    assert!(price.is_string(), "{priced}");
    assert!(priced["data"]["valuation"]["margin_of_safety"].is_string());

    // Deleting (owner): gone for everyone.
    env.with(&ana).delete(200, &path).await;
    env.with(&col).get(404, &path).await;
}
