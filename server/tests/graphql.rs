//! `POST /api/graphql/t/{tenant}` over real TLS against real PostgreSQL:
//! refusals identical to REST (no token, another tenant's token, a role
//! without the permission), the same data as the REST routes, mutations
//! through the same crate calls, the depth, complexity and page-size
//! limits, introspection off in production mode, DataLoader batching
//! measured with `pg_stat_statements`, the SDL kept in the repository, and
//! the `quotes` subscription over `graphql-transport-ws`.
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rampart_auth::Role;
use rampart_server::config::{Mode, ServerConfig};
use rampart_testkit::PgServer;
use rampart_testkit::acme;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{
    Api, Env, Pki, Ws, assert_ws_refused, config, env, map_items, next_json, scoped_token, strs,
    web_client, ws_connect_with, ws_send,
};

const SCOPES: &str = "portfolio:read portfolio:write analytics:read market:read";

/// Status and body of one GraphQL operation.
async fn gql(
    api: &Api,
    tenant: &str,
    token: Option<&str>,
    query: &str,
    vars: Value,
) -> (u16, Value) {
    let path = format!("/api/graphql/t/{tenant}");
    let body = json!({"query": query, "variables": vars});
    api.call(Method::POST, &path, token, Some(body)).await
}

/// The `data` of an operation that must succeed.
async fn data(api: &Api, token: &str, query: &str, vars: Value) -> Value {
    let (s, body) = gql(api, "acme", Some(token), query, vars).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

/// The first error of an operation that must fail (HTTP 200, GraphQL error).
async fn error(api: &Api, token: &str, query: &str, vars: Value) -> Value {
    let (s, body) = gql(api, "acme", Some(token), query, vars).await;
    assert_eq!(s, 200, "{body}");
    let e = body["errors"][0].clone();
    assert!(e.is_object(), "{query}: expected an error: {body}");
    assert!(
        e["extensions"]["requestId"]
            .as_str()
            .is_some_and(|id| id.len() > 8),
        "{e}"
    );
    e
}

/// A viewer of `acme` with `portfolio:read` only (no write, analytics or
/// market scope).
async fn reader(auth: &rampart_auth::AuthServer) -> (uuid::Uuid, String) {
    let scopes = "portfolio:read";
    scoped_token(auth, "acme", "vic@acme.test", Role::Viewer, scopes).await
}

/// `(status, code)` of a REST error envelope.
fn rest_refusal(status: u16, body: &Value) -> (u16, String) {
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

/// `(status, code)` a GraphQL error carries in its extensions.
fn gql_refusal(e: &Value) -> (u16, String) {
    let ext = &e["extensions"];
    (
        u16::try_from(ext["status"].as_u64().unwrap()).unwrap(),
        ext["code"].as_str().unwrap().to_owned(),
    )
}

/// The error of an operation (on `acme`, no variables) refused as an
/// invalid request (400).
async fn invalid(api: &Api, token: &str, query: &str) -> Value {
    let e = error(api, token, query, json!({})).await;
    let refusal = (400, "invalid_request".to_owned());
    assert_eq!(gql_refusal(&e), refusal, "{query}: {e}");
    e
}

/// The REST request `rest` (method, path, body) with `token` and the
/// operation `query` (on `acme`, with `vars`, an error) are refused alike:
/// that `(status, code)`.
async fn refused_like_rest(
    api: &Api,
    token: &str,
    rest: (Method, &str, Option<Value>),
    query: &str,
    vars: Value,
) -> (u16, String) {
    let (method, path, body) = rest;
    let (status, body) = api.call(method, path, Some(token), body).await;
    let e = error(api, token, query, vars).await;
    let refusal = rest_refusal(status, &body);
    assert_eq!(gql_refusal(&e), refusal, "{query}: {path} {body}");
    refusal
}

const PORTFOLIO_FIELDS: &str = "id ownerId name description baseCurrency isPublic settings version \
     access positions { id symbol allocationType quantity targetWeight purchasePrice purchaseDate sector notes }";

/// A REST portfolio (`data` of `GET …/portfolios/{id}`) in the shape of
/// the GraphQL `Portfolio` (amounts as exact decimal strings).
fn rest_as_graphql(p: &Value) -> Value {
    let amount = |v: &Value| match v {
        Value::Null => Value::Null,
        n => json!(
            n.to_string()
                .parse::<rampart_portfolio::Decimal>()
                .unwrap()
                .normalize()
                .to_string()
        ),
    };
    let positions: Vec<Value> = p["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            json!({
                "id": x["id"], "symbol": x["symbol"],
                "allocationType": x["allocation_type"].as_str().unwrap().to_uppercase(),
                "quantity": amount(&x["quantity"]), "targetWeight": amount(&x["target_weight"]),
                "purchasePrice": amount(&x["purchase_price"]), "purchaseDate": x["purchase_date"],
                "sector": x["sector"], "notes": x["notes"],
            })
        })
        .collect();
    json!({
        "id": p["id"], "ownerId": p["owner_id"], "name": p["name"],
        "description": p["description"], "baseCurrency": p["base_currency"],
        "isPublic": p["is_public"], "settings": p["settings"], "version": p["version"],
        "access": p["access"].as_str().unwrap().to_uppercase(), "positions": positions,
    })
}

/// The GraphQL portfolio with its amounts normalized (`10` and `10.0`
/// are the same decimal).
fn normalized(p: &Value) -> Value {
    let mut p = p.clone();
    for x in p["positions"].as_array_mut().unwrap() {
        for field in ["quantity", "targetWeight", "purchasePrice"] {
            if let Some(text) = x[field].as_str() {
                let d: rampart_portfolio::Decimal = text.parse().unwrap();
                x[field] = json!(d.normalize().to_string());
            }
        }
    }
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_those_of_rest() {
    let env = env().await;
    let auth = env.auth();
    let (_, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;
    let (_, viewer) = reader(&auth).await;
    let (_, other) = scoped_token(&auth, "globex", "gil@globex.test", Role::Trader, SCOPES).await;
    let me = "{ me { user { email } } }";

    // No token, a broken one, another tenant's: refused before any GraphQL
    // runs, with REST's status and envelope.
    for (tenant, token) in [
        ("acme", None),
        ("acme", Some("not-a-token")),
        ("acme", Some(other.as_str())),
        ("globex", Some(owner.as_str())),
        ("no-such-tenant", Some(owner.as_str())),
    ] {
        let (rs, rest) = env
            .call(
                Method::GET,
                &format!("/api/v1/t/{tenant}/portfolios"),
                token,
                None,
            )
            .await;
        let (gs, body) = gql(&env, tenant, token, me, json!({})).await;
        assert_eq!(rs, 401, "{rest}");
        assert_eq!(
            rest_refusal(gs, &body),
            rest_refusal(rs, &rest),
            "{tenant} {token:?}"
        );
        assert!(body["meta"]["requestId"].is_string(), "{body}");
    }

    // A role without `portfolio:write`: the same code (and the status REST
    // answers) as the REST route, and nothing created.
    let rest = (
        Method::POST,
        "/api/v1/t/acme/portfolios",
        Some(json!({"name": "Nope"})),
    );
    let create = "mutation { createPortfolio(input: {name: \"Nope\"}) { id } }";
    let refusal = refused_like_rest(&env, &viewer, rest, create, json!({})).await;
    assert_eq!(refusal, (403, "forbidden".to_owned()));
    let listed = data(
        &env,
        &viewer,
        "{ portfolios { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(listed["portfolios"]["edges"], json!([]));
    // A token without `market:read` on a quote.
    let rest = (Method::GET, "/api/v1/t/acme/quotes/MSFT", None);
    let quote = "{ quote(symbol: \"MSFT\") { price } }";
    refused_like_rest(&env, &viewer, rest, quote, json!({})).await;

    // Someone else's portfolio: "not found", as REST.
    let id = env
        .create("/api/v1/t/acme/portfolios", &owner, json!({"name": "Mine"}))
        .await;
    let path = format!("/api/v1/t/acme/portfolios/{id}");
    let q = "query($id: UUID!) { portfolio(id: $id) { name } }";
    let rest = (Method::GET, path.as_str(), None);
    let refusal = refused_like_rest(&env, &viewer, rest, q, json!({"id": id})).await;
    assert_eq!(refusal, (404, "not_found".to_owned()));
    // Another tenant's portfolio id on this tenant's path: exactly what a
    // random id gets.
    let theirs = env
        .create(
            "/api/v1/t/globex/portfolios",
            &other,
            json!({"name": "Theirs"}),
        )
        .await;
    let real = error(&env, &owner, q, json!({"id": theirs})).await;
    let random = error(&env, &owner, q, json!({"id": uuid::Uuid::new_v4()})).await;
    let strip = |mut e: Value| {
        e["extensions"]["requestId"] = Value::Null;
        e
    };
    assert_eq!(strip(real), strip(random));
    // Invalid input: the crate's refusal, REST's code.
    let rest = (
        Method::POST,
        "/api/v1/t/acme/portfolios",
        Some(json!({"name": " "})),
    );
    let create = "mutation { createPortfolio(input: {name: \" \"}) { id } }";
    refused_like_rest(&env, &owner, rest, create, json!({})).await;

    // Bodies that are not one operation: the envelope's 400/415, as REST.
    let path = "/api/graphql/t/acme";
    for body in [
        json!(["{ me { role } }"]),
        json!({"variables": {}}),
        json!({"query": 5}),
        json!({"query": "{ me { role } }", "variables": [1]}),
        json!({"query": "{ me { role } }", "typo": 1}),
        // A persisted query's hash with persisted queries off: no query.
        json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}),
    ] {
        let (s, res) = env
            .call(Method::POST, path, Some(&owner), Some(body.clone()))
            .await;
        assert_eq!(
            rest_refusal(s, &res),
            (400, "invalid_request".into()),
            "{body}"
        );
    }
    let (s, text) = env
        .raw(
            Method::POST,
            path,
            Some(&owner),
            "text/plain",
            b"{ me { role } }".to_vec(),
        )
        .await;
    let res: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        rest_refusal(s, &res),
        (415, "unsupported_media_type".into())
    );
    // A document that does not parse: a GraphQL error with a code.
    invalid(&env, &owner, "{ me { ").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_answer_what_rest_answers_and_mutations_go_through_the_same_calls() {
    let env = env().await;
    let auth = env.auth();
    let (ada, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;

    // me, as GET …/me.
    let rest = env.expect_get(200, "/api/v1/t/acme/me", &owner).await;
    let me = data(
        &env,
        &owner,
        "{ me { user { id email displayName role status totpEnabled } role scopes clientId } }",
        json!({}),
    )
    .await;
    let (r, g) = (&rest["data"], &me["me"]);
    assert_eq!(g["user"]["id"], ada.to_string());
    for (gf, rf) in [
        ("id", "id"),
        ("email", "email"),
        ("displayName", "display_name"),
        ("role", "role"),
        ("status", "status"),
        ("totpEnabled", "totp_enabled"),
    ] {
        assert_eq!(g["user"][gf], r["user"][rf], "{gf}");
    }
    assert_eq!(g["role"], r["role"]);
    assert_eq!(g["scopes"], r["scopes"]);
    assert_eq!(g["clientId"], r["client_id"]);

    // A portfolio made over REST reads the same over GraphQL.
    let body = env
        .with(&owner)
        .post(
            201,
            "/api/v1/t/acme/portfolios",
            json!({"name": "Core", "description": "long", "settings": {"benchmark": "^GSPC"},
                   "positions": [
                       {"symbol": "msft", "quantity": 10, "purchase_price": 25.5,
                        "purchase_date": "2005-01-03", "sector": "Tech"},
                       {"symbol": "IBM", "allocation_type": "weight", "target_weight": 0.25}]}),
        )
        .await;
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let rest = env
        .expect_get(200, &format!("/api/v1/t/acme/portfolios/{id}"), &owner)
        .await;
    let q = format!("query($id: UUID!) {{ portfolio(id: $id) {{ {PORTFOLIO_FIELDS} }} }}");
    let got = data(&env, &owner, &q, json!({"id": id})).await;
    assert_eq!(
        normalized(&got["portfolio"]),
        rest_as_graphql(&rest["data"])
    );
    // The list: the same portfolios as GET …/portfolios, with positions.
    let q = format!(
        "{{ portfolios {{ edges {{ cursor node {{ {PORTFOLIO_FIELDS} }} }} pageInfo {{ hasNextPage }} }} }}"
    );
    let got = data(&env, &owner, &q, json!({})).await;
    let rest_list = env
        .expect_get(200, "/api/v1/t/acme/portfolios", &owner)
        .await;
    let edges = got["portfolios"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), rest_list["data"].as_array().unwrap().len());
    assert_eq!(
        normalized(&edges[0]["node"]),
        rest_as_graphql(&rest["data"])
    );
    assert_eq!(got["portfolios"]["pageInfo"]["hasNextPage"], false);

    // Mutations, each checked over REST.
    let created = data(
        &env,
        &owner,
        "mutation($in: NewPortfolioInput!) { createPortfolio(input: $in) { id version access positions { id symbol quantity } } }",
        json!({"in": {"name": "Gql", "baseCurrency": "eur",
                      "positions": [{"symbol": "aapl", "quantity": "1.5"}]}}),
    )
    .await;
    let c = &created["createPortfolio"];
    let gid = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (c["version"].as_i64(), c["access"].as_str()),
        (Some(1), Some("OWNER"))
    );
    assert_eq!(c["positions"][0]["quantity"], "1.5");
    let path = format!("/api/v1/t/acme/portfolios/{gid}");
    let rest = env.expect_get(200, &path, &owner).await;
    assert_eq!(rest["data"]["base_currency"], "EUR");
    assert_eq!(rest["data"]["positions"][0]["symbol"], "AAPL");
    let pos = c["positions"][0]["id"].as_str().unwrap().to_owned();

    let renamed = data(
        &env,
        &owner,
        "mutation($id: UUID!) { updatePortfolio(id: $id, input: {name: \"Renamed\", isPublic: true}) { name version isPublic } }",
        json!({"id": gid}),
    )
    .await;
    assert_eq!(
        renamed["updatePortfolio"],
        json!({"name": "Renamed", "version": 2, "isPublic": true})
    );
    let added = data(
        &env,
        &owner,
        "mutation($id: UUID!) { addPosition(portfolioId: $id, input: {symbol: \"ibm\", allocationType: WEIGHT, targetWeight: \"0.4\"}) { version positions { symbol } } }",
        json!({"id": gid}),
    )
    .await;
    assert_eq!(added["addPosition"]["version"], 3);
    let changed = data(
        &env,
        &owner,
        "mutation($id: UUID!, $pos: UUID!) { updatePosition(portfolioId: $id, positionId: $pos, input: {symbol: \"AAPL\", quantity: 3}) { version } }",
        json!({"id": gid, "pos": pos}),
    )
    .await;
    assert_eq!(changed["updatePosition"]["version"], 4);
    let rest = env.expect_get(200, &path, &owner).await;
    let aapl = rest["data"]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "AAPL")
        .unwrap();
    assert_eq!(aapl["quantity"].as_f64(), Some(3.0));
    let removed = data(
        &env,
        &owner,
        "mutation($id: UUID!, $pos: UUID!) { removePosition(portfolioId: $id, positionId: $pos) { version positions { symbol } } }",
        json!({"id": gid, "pos": pos}),
    )
    .await;
    assert_eq!(
        removed["removePosition"]["positions"],
        json!([{"symbol": "IBM"}])
    );
    // The versions REST lists are the ones the mutations made.
    let versions = env
        .expect_get(200, &format!("{path}/versions"), &owner)
        .await;
    assert_eq!(versions["data"].as_array().unwrap().len(), 5);
    let deleted = data(
        &env,
        &owner,
        "mutation($id: UUID!) { deletePortfolio(id: $id) }",
        json!({"id": gid}),
    )
    .await;
    assert_eq!(deleted["deletePortfolio"], gid);
    env.with(&owner).get(404, &path).await;

    // Pages: Relay cursors over the same list as REST.
    for name in ["P2", "P3"] {
        env.create("/api/v1/t/acme/portfolios", &owner, json!({"name": name}))
            .await;
    }
    let page = "query($after: String) { portfolios(first: 2, after: $after) { edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let first = data(&env, &owner, page, json!({})).await;
    let info = &first["portfolios"]["pageInfo"];
    assert_eq!(
        (
            info["hasNextPage"].as_bool(),
            info["hasPreviousPage"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let after = info["endCursor"].as_str().unwrap().to_owned();
    let second = data(&env, &owner, page, json!({"after": after})).await;
    assert_eq!(second["portfolios"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(second["portfolios"]["pageInfo"]["hasNextPage"], false);
    let rest_page = env
        .expect_get(200, "/api/v1/t/acme/portfolios?limit=2", &owner)
        .await;
    let names = |edges: &Value| -> Vec<String> {
        map_items(edges, |e| e["node"]["name"].as_str().unwrap().to_owned())
    };
    let rest_names: Vec<String> = map_items(&rest_page["data"], |p| {
        p["name"].as_str().unwrap().to_owned()
    });
    assert_eq!(names(&first["portfolios"]["edges"]), rest_names);
    assert_eq!(
        Some(after.as_str()),
        rest_page["meta"]["nextCursor"].as_str()
    );

    // Market data through the same chain as REST.
    let rest = env
        .expect_get(200, "/api/v1/t/acme/quotes/%5EGSPC", &owner)
        .await;
    let got = data(
        &env,
        &owner,
        "{ quote(symbol: \"^gspc\") { symbol price asOf provenance { stale ageMs source } } }",
        json!({}),
    )
    .await;
    assert_eq!(got["quote"]["symbol"], rest["data"]["quote"]["symbol"]);
    assert_eq!(got["quote"]["price"], rest["data"]["quote"]["price"]);
    assert_eq!(got["quote"]["provenance"]["stale"], false);
    let rest = env
        .expect_get(
            200,
            "/api/v1/t/acme/bars/%5EGSPC?from=2008-01-01&to=2008-01-31",
            &owner,
        )
        .await;
    let got = data(
        &env,
        &owner,
        "{ bars(symbol: \"^GSPC\", from: \"2008-01-01\", to: \"2008-01-31\") { symbol from to bars { date close volume } } }",
        json!({}),
    )
    .await;
    let rest_bars = rest["data"]["bars"].as_array().unwrap();
    let bars = got["bars"]["bars"].as_array().unwrap();
    assert!(!bars.is_empty());
    assert_eq!(bars.len(), rest_bars.len());
    assert_eq!(bars[0]["date"], rest_bars[0]["date"]);
    assert_eq!(bars[0]["close"], rest_bars[0]["close"]);
    // A malformed symbol and a bad window: REST's 400 code.
    let rest = (
        Method::GET,
        "/api/v1/t/acme/bars/%20?from=2021-01-01&to=2020-01-01",
        None,
    );
    let malformed = "{ bars(symbol: \" \") { symbol } }";
    refused_like_rest(&env, &owner, rest, malformed, json!({})).await;
    invalid(
        &env,
        &owner,
        "{ bars(symbol: \"MSFT\", from: \"2021-01-01\", to: \"2020-01-01\") { symbol } }",
    )
    .await;

    // The leaderboard, as REST's first page (empty before any snapshot).
    let rest = env
        .expect_get(200, "/api/v1/t/acme/leaderboard?period=week", &owner)
        .await;
    let got = data(
        &env,
        &owner,
        "{ leaderboard(period: WEEK) { asOf period sort entries { rank name } } }",
        json!({}),
    )
    .await;
    assert_eq!(got["leaderboard"]["asOf"], rest["data"]["asOf"]);
    assert_eq!(got["leaderboard"]["period"], "WEEK");
    assert_eq!(
        got["leaderboard"]["entries"].as_array().unwrap().len(),
        rest["data"]["entries"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn depth_complexity_and_page_size_are_capped() {
    let env = env().await;
    let auth = env.auth();
    let (_, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;
    let limits = ServerConfig::default().graphql;

    // Deeper than `max_depth` (10): refused before anything runs.
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let e = invalid(&env, &owner, deep).await;
    assert!(
        e["message"].as_str().unwrap().contains("nested too deep"),
        "{e}"
    );
    // Within the depth, introspection answers (dev mode).
    let ok = data(
        &env,
        &owner,
        "{ __schema { queryType { name } } }",
        json!({}),
    )
    .await;
    assert_eq!(ok["__schema"]["queryType"]["name"], "QueryRoot");

    // Each page counts once per item it may hold: aliases of full pages
    // add up past `max_complexity`.
    let one = "portfolios(first: 100) { edges { cursor node { id name version } } }";
    let aliases: Vec<String> = (0..6).map(|i| format!("a{i}: {one}")).collect();
    let wide = format!("{{ {} }}", aliases.join(" "));
    assert!(6 * 100 * 5 > limits.max_complexity);
    let e = invalid(&env, &owner, &wide).await;
    assert!(
        e["message"].as_str().unwrap().contains("too complex"),
        "{e}"
    );
    // One full page is within it.
    data(&env, &owner, &format!("{{ {one} }}"), json!({})).await;

    // A page larger than the cap, or empty: refused with REST's 400 code.
    for first in [limits.max_page_size + 1, 0] {
        let q = format!("{{ portfolios(first: {first}) {{ edges {{ cursor }} }} }}");
        let e = invalid(&env, &owner, &q).await;
        assert!(
            e["message"].as_str().unwrap().contains("first: 1 to 100"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_is_off_in_production_mode_unless_configured() {
    // What a client learns of the schema: the query type's name and a type.
    let reveals = |config: ServerConfig| async move {
        let schema = rampart_server::graphql::build_schema(&config);
        let a = schema.execute("{ __schema { queryType { name } } }").await;
        let b = schema
            .execute("{ __type(name: \"Portfolio\") { name } }")
            .await;
        let text = format!("{} {}", a.data, b.data);
        (text.contains("QueryRoot"), text.contains("\"Portfolio\""))
    };
    let dev = ServerConfig::default();
    assert_eq!(dev.mode, Mode::Dev);
    assert_eq!(reveals(dev).await, (true, true));

    let mut production = ServerConfig {
        mode: Mode::Production,
        ..ServerConfig::default()
    };
    assert_eq!(reveals(production.clone()).await, (false, false));
    production.graphql.introspection = Some(true);
    assert_eq!(reveals(production).await, (true, true));
    let mut quiet_dev = ServerConfig::default();
    quiet_dev.graphql.introspection = Some(false);
    assert_eq!(reveals(quiet_dev).await, (false, false));
}

#[test]
fn the_sdl_in_the_repository_is_the_schema() {
    let path = rampart_testkit::package_dir().join(rampart_server::graphql::SDL_FILE);
    let sdl = rampart_server::graphql::sdl();
    if std::env::var_os("RAMPART_UPDATE_SDL").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &sdl).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == sdl,
        "{} is not the schema the server serves: regenerate with \
         `RAMPART_UPDATE_SDL=1 cargo test -p rampart-server --test tests graphql::the_sdl` \
         and commit it",
        path.display()
    );
}

/// Statements that touched the portfolio tables since the last reset, in
/// `url`'s database (`pg_stat_statements` counts every execution).
async fn portfolio_statements(url: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    // raw SQL: pg_stat_statements is a view of the extension.
    diesel::sql_query(
        "SELECT coalesce(sum(s.calls), 0)::bigint AS n FROM pg_stat_statements s \
         JOIN pg_database d ON d.oid = s.dbid \
         WHERE d.datname = current_database() \
           AND s.query NOT ILIKE '%pg_stat_statements%' \
           AND (s.query ILIKE '%positions%' OR s.query ILIKE '%portfolio%')",
    )
    .get_result::<Count>(&mut conn)
    .await
    .unwrap()
    .n
}

async fn reset_statements(url: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    // raw SQL: the extension's reset function.
    diesel::sql_query("SELECT pg_stat_statements_reset()")
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_portfolios_with_positions_costs_the_same_statements_for_3_or_12() {
    // A PostgreSQL of this test's own, with pg_stat_statements loaded.
    let pg = PgServer::start_with(rampart_pgembed::PgOptions {
        settings: vec![(
            "shared_preload_libraries".into(),
            "pg_stat_statements".into(),
        )],
        ..Default::default()
    })
    .unwrap();
    use diesel_async::RunQueryDsl;
    let db = pg.fresh_database().await.unwrap();
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    // raw SQL: an extension for the measurement only.
    diesel::sql_query("CREATE EXTENSION pg_stat_statements")
        .execute(&mut conn)
        .await
        .unwrap();
    let pki = Pki::new();
    let mut cfg = config(&pki).await;
    cfg.database.database_url = db.url.clone();
    let env = Env::start(pki, cfg).await;
    let auth = env.auth();
    env.state.tenants.provision(&acme(), "acme").await.unwrap();
    auth.register_client(&acme(), &web_client(&["authorization_code"]))
        .await
        .unwrap();
    let (_, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;

    let list =
        "{ portfolios(first: 50) { edges { node { name positions { symbol quantity } } } } }";
    let mut made = 0;
    let mut costs = Vec::new();
    for n in [3, 12] {
        while made < n {
            env.with(&owner)
                .post(
                    201,
                    "/api/v1/t/acme/portfolios",
                    json!({"name": format!("P{made}"), "positions": [
                        {"symbol": "MSFT", "quantity": made + 1},
                        {"symbol": "IBM", "quantity": 2}]}),
                )
                .await;
            made += 1;
        }
        reset_statements(&db.url).await;
        let got = data(&env, &owner, list, json!({})).await;
        let cost = portfolio_statements(&db.url).await;
        let edges = got["portfolios"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n);
        for e in edges {
            let symbols = strs(&e["node"]["positions"], "symbol");
            assert_eq!(symbols, ["IBM", "MSFT"], "{e}");
        }
        costs.push(cost);
    }
    println!(
        "statements on the portfolio tables: 3 portfolios {}, 12 portfolios {}",
        costs[0], costs[1]
    );
    // The page (1), which of them the caller may see (1), their positions
    // (1): the same for 3 as for 12, where one query per portfolio would be
    // 4 and 13.
    assert_eq!(costs[0], costs[1], "{costs:?}");
    assert!((1..=3).contains(&costs[1]), "{costs:?}");
    env.server.stop().await;
    pg.shutdown().unwrap();
}

/// The close frame the server ends with: (code, reason).
async fn close_frame(ws: &mut Ws) -> (u16, String) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(15), ws.next())
            .await
            .expect("no close within 15 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return (0, String::new()),
            Some(Ok(_)) => {}
        }
    }
}

/// Opens the subscription socket (`graphql-transport-ws`, plus the token as
/// the `bearer` subprotocol pair when given).
async fn gql_ws(env: &Env, tenant: &str, bearer: Option<&str>) -> Result<Ws, u16> {
    let protocols = match bearer {
        Some(t) => format!("bearer, {t}, graphql-transport-ws"),
        None => "graphql-transport-ws".to_owned(),
    };
    let path = format!("/api/graphql/t/{tenant}/ws");
    let (ws, res) = ws_connect_with(env, &path, Some(&protocols)).await?;
    assert_eq!(
        res.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    Ok(ws)
}

const QUOTES: &str = "subscription($s: [String!]!) { quotes(symbols: $s, intervalSeconds: 1) \
                      { at quotes { symbol price asOf stale source ageMs } errors { symbol code } } }";

#[tokio::test(flavor = "multi_thread")]
async fn subscription_streams_live_quotes_and_refuses_like_the_market_stream() {
    let env = env().await;
    let auth = env.auth();
    let (_, ada) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;
    let (_, no_market) = reader(&auth).await;
    let (_, globex) = scoped_token(&auth, "globex", "gil@globex.test", Role::Trader, SCOPES).await;

    // The token in connection_init: ack, subscribe, a `next` with prices
    // (the same pricing as the market stream), then another tick.
    let mut ws = gql_ws(&env, "acme", None).await.unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {ada}")}}),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await.unwrap(),
        json!({"type": "connection_ack"})
    );
    let subscribe = |id: &str, symbols: Value| json!({"id": id, "type": "subscribe", "payload": {"query": QUOTES, "variables": {"s": symbols}}});
    ws_send(&mut ws, subscribe("1", json!(["msft", "AAPL", "ZZZZ"]))).await;
    let next = next_json(&mut ws).await.unwrap();
    assert_eq!(
        (next["type"].as_str(), next["id"].as_str()),
        (Some("next"), Some("1")),
        "{next}"
    );
    let tick = &next["payload"]["data"]["quotes"];
    assert!(next["payload"].get("errors").is_none(), "{next}");
    let symbols = strs(&tick["quotes"], "symbol");
    assert_eq!(symbols, ["AAPL", "MSFT"], "{tick}");
    assert!(tick["quotes"][0]["price"].as_f64().unwrap() > 0.0, "{tick}");
    assert!(tick["quotes"][0]["asOf"].is_string(), "{tick}");
    assert!(tick["quotes"][0]["source"]["layer"].is_string(), "{tick}");
    assert_eq!(
        tick["errors"],
        json!([{"symbol": "ZZZZ", "code": "unknown_symbol"}])
    );
    let again = next_json(&mut ws).await.unwrap();
    assert_eq!(again["type"], "next", "{again}");
    assert_ne!(again["payload"]["data"]["quotes"]["at"], tick["at"]);
    // The client completes it: the server confirms; nothing more for "1".
    ws_send(&mut ws, json!({"id": "1", "type": "complete"})).await;
    loop {
        let m = next_json(&mut ws).await.unwrap();
        if m["type"] == "complete" {
            assert_eq!(m["id"], "1");
            break;
        }
        assert_eq!(m["type"], "next", "{m}");
    }

    // Bounded symbols and malformed ones: an error with REST's code in
    // `extensions`, then `complete`; the connection stays usable.
    let too_many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
    for (id, symbols) in [
        ("2", json!(too_many)),
        ("3", json!(["a b"])),
        ("4", json!([])),
    ] {
        ws_send(&mut ws, subscribe(id, symbols)).await;
        let m = next_json(&mut ws).await.unwrap();
        assert_eq!(
            (m["type"].as_str(), m["id"].as_str()),
            (Some("next"), Some(id)),
            "{m}"
        );
        let e = &m["payload"]["errors"][0];
        assert_eq!(e["extensions"]["code"], "invalid_request", "{m}");
        assert_eq!(e["extensions"]["status"], 400, "{m}");
        assert_eq!(
            next_json(&mut ws).await.unwrap(),
            json!({"id": id, "type": "complete"})
        );
    }
    // At most 10 subscriptions at once on a connection: the 11th is
    // refused (limit_reached); completing one frees its slot.
    for i in 0..10 {
        ws_send(&mut ws, subscribe(&format!("m{i}"), json!(["AAPL"]))).await;
    }
    let mut started = std::collections::BTreeSet::new();
    while started.len() < 10 {
        let m = next_json(&mut ws).await.unwrap();
        assert!(m["payload"].get("errors").is_none(), "{m}");
        started.insert(m["id"].as_str().unwrap().to_owned());
    }
    ws_send(&mut ws, subscribe("over", json!(["AAPL"]))).await;
    let refused = loop {
        let m = next_json(&mut ws).await.unwrap();
        if m["id"] == "over" {
            break m;
        }
    };
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "limit_reached",
        "{refused}"
    );
    ws_send(&mut ws, json!({"id": "m0", "type": "complete"})).await;
    ws_send(&mut ws, subscribe("again", json!(["AAPL"]))).await;
    let again = loop {
        let m = next_json(&mut ws).await.unwrap();
        if m["id"] == "again" {
            break m;
        }
    };
    assert_eq!(again["type"], "next", "{again}");
    assert!(again["payload"].get("errors").is_none(), "{again}");
    ws.close(None).await.unwrap();

    // The token as the `bearer` subprotocol pair: ack without a payload.
    let mut ws = gql_ws(&env, "acme", Some(&ada)).await.unwrap();
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    ws_send(&mut ws, subscribe("a", json!(["AAPL"]))).await;
    let next = next_json(&mut ws).await.unwrap();
    assert_eq!(
        next["payload"]["data"]["quotes"]["quotes"][0]["symbol"], "AAPL",
        "{next}"
    );
    ws.close(None).await.unwrap();

    // Refused in connection_init (no token, another tenant's, no
    // market:read): closed with 4403 and the stable code.
    for (payload, code) in [
        (json!({}), "unauthorized"),
        (
            json!({"Authorization": "Bearer not-a-token"}),
            "unauthorized",
        ),
        (
            json!({"Authorization": format!("Bearer {globex}")}),
            "unauthorized",
        ),
        (
            json!({"Authorization": format!("Bearer {no_market}")}),
            "forbidden",
        ),
    ] {
        let mut ws = gql_ws(&env, "acme", None).await.unwrap();
        ws_send(
            &mut ws,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        assert_eq!(
            close_frame(&mut ws).await,
            (4403, code.to_owned()),
            "{payload}"
        );
    }
    // Subscribing before connection_init is refused too (the protocol's 4401).
    let mut ws = gql_ws(&env, "acme", None).await.unwrap();
    ws_send(&mut ws, subscribe("x", json!(["AAPL"]))).await;
    let (code, _) = close_frame(&mut ws).await;
    assert!(code >= 4000 || code == 1011, "closed with {code}");

    // A token in the handshake: refused before the upgrade, as the REST
    // stream (another tenant's, a bad one, no market:read).
    let stream = "/api/graphql/t/acme/ws";
    let cases = [
        (Some(globex.as_str()), None, 401),
        (None, Some("nope"), 401),
        (Some(no_market.as_str()), None, 403),
    ];
    assert_ws_refused(&env, stream, &cases).await;
    assert_eq!(gql_ws(&env, "globex", Some(&ada)).await.err(), Some(401));
    // Without the graphql-transport-ws subprotocol: not this protocol.
    let (s, body) = env
        .call(
            Method::GET,
            &format!("{stream}?access_token={ada}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // Over POST, a subscription is not run.
    let (s, body) = gql(&env, "acme", Some(&ada), QUOTES, json!({"s": ["AAPL"]})).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    assert!(body["data"].is_null(), "{body}");

    let (_, doc) = env.call(Method::GET, "/openapi.json", None, None).await;
    assert!(doc["paths"]["/api/graphql/t/{tenant}/ws"]["get"].is_object());
    env.server.stop().await;
}

const PORTFOLIO_EXTRAS: &str = "query($id: UUID!) { portfolio(id: $id) { \
     versions(first: 10) { edges { cursor node { version change changedBy } } pageInfo { hasNextPage } } \
     shares { userId access grantedBy } \
     activity(first: 10) { edges { node { id action actorId } } } \
     analytics(from: \"2005-01-01\", to: \"2009-12-31\") { report series { date nav } window { from to basis } } \
     metrics(from: \"2005-01-01\", to: \"2009-12-31\") { date nav dailyReturn } } }";

#[tokio::test(flavor = "multi_thread")]
async fn portfolio_versions_shares_activity_analytics_and_metrics_are_those_of_rest() {
    let env = env().await;
    let auth = env.auth();
    let (ada, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;
    let (vic, viewer) = reader(&auth).await;
    let p = "/api/v1/t/acme/portfolios";
    let id = env
        .create(
            p,
            &owner,
            json!({"name": "Tech", "positions": [
                {"symbol": "MSFT", "quantity": 200, "purchase_date": "2006-06-01"},
                {"symbol": "IBM", "quantity": 10}]}),
        )
        .await;
    let pp = format!("{p}/{id}");
    env.with(&owner)
        .post(
            201,
            &format!("{pp}/positions"),
            json!({"symbol": "AAPL", "quantity": 5}),
        )
        .await;
    let (s, body) = env
        .call(
            Method::POST,
            &format!("{pp}/shares"),
            Some(&owner),
            Some(json!({"user_id": vic, "access": "view"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let rest = |path: String| {
        let env = &env;
        let owner = owner.clone();
        async move { env.expect_get(200, &path, &owner).await["data"].clone() }
    };
    let r_analytics = rest(format!("{pp}/analytics?from=2005-01-01&to=2009-12-31")).await;
    let r_versions = rest(format!("{pp}/versions?limit=10")).await;
    let r_shares = rest(format!("{pp}/shares")).await;
    let r_activity = rest(format!("{pp}/activity?limit=10")).await;
    let r_metrics = rest(format!("{pp}/metrics?from=2005-01-01&to=2009-12-31")).await;

    let got = data(&env, &owner, PORTFOLIO_EXTRAS, json!({"id": id})).await;
    let g = &got["portfolio"];
    // Versions, newest first, the cursor a version number.
    let versions: Vec<Value> = g["versions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["cursor"], e["node"]["version"].to_string());
            json!([
                e["node"]["version"],
                e["node"]["change"],
                e["node"]["changedBy"]
            ])
        })
        .collect();
    let r: Vec<Value> = map_items(&r_versions, |v| {
        json!([v["version"], v["change"], v["changed_by"]])
    });
    assert_eq!(versions, r);
    assert!(versions.len() >= 2, "{versions:?}");
    assert_eq!(versions[0][2], ada.to_string());
    // Shares.
    let r: Vec<Value> = map_items(
        &r_shares,
        |s| json!({"userId": s["user_id"], "access": s["access"].as_str().unwrap().to_uppercase(), "grantedBy": s["granted_by"]}),
    );
    assert_eq!(g["shares"], json!(r));
    assert_eq!(g["shares"][0]["userId"], vic.to_string());
    // Activity.
    let acts: Vec<Value> = map_items(&g["activity"]["edges"], |e| {
        json!([e["node"]["id"], e["node"]["action"], e["node"]["actorId"]])
    });
    let r: Vec<Value> = map_items(&r_activity, |a| {
        json!([a["id"], a["action"], a["actor_id"]])
    });
    assert_eq!(acts, r);
    assert!(acts.iter().any(|a| a[1] == "share"), "{acts:?}");
    // The analysis: the same report, series and window as REST's.
    let a = &g["analytics"];
    assert_eq!(a["report"], r_analytics["report"]);
    assert_eq!(a["window"]["from"], r_analytics["window"]["from"]);
    assert_eq!(a["window"]["to"], r_analytics["window"]["to"]);
    assert_eq!(a["window"]["basis"], r_analytics["window"]["basis"]);
    let series: Vec<Value> = map_items(
        &r_analytics["series"],
        |p| json!({"date": p["date"], "nav": p["nav"]}),
    );
    assert_eq!(a["series"], json!(series));
    assert!(series.len() > 10, "{}", series.len());
    // The stored days (written by the analysis).
    let days: Vec<Value> = map_items(
        &r_metrics["days"],
        |d| json!({"date": d["date"], "nav": d["nav"], "dailyReturn": d["daily_return"]}),
    );
    assert_eq!(g["metrics"], json!(days));
    assert!(!days.is_empty());

    // Refusals as REST's: a viewer the portfolio is shared with (view)
    // reads versions but not shares (admin); no analytics:read, no
    // analytics or metrics.
    let vq = "query($id: UUID!) { portfolio(id: $id) { versions { edges { node { version } } } } }";
    let got = data(&env, &viewer, vq, json!({"id": id})).await;
    assert_eq!(
        got["portfolio"]["versions"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        versions.len()
    );
    for (field, path) in [
        ("shares { userId }", format!("{pp}/shares")),
        ("analytics { window { from } }", format!("{pp}/analytics")),
        ("metrics { date }", format!("{pp}/metrics")),
    ] {
        let q = format!("query($id: UUID!) {{ portfolio(id: $id) {{ id {field} }} }}");
        let rest = (Method::GET, path.as_str(), None);
        let (status, _) = refused_like_rest(&env, &viewer, rest, &q, json!({"id": id})).await;
        assert!(status >= 400, "{path}");
    }
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn persisted_queries_by_hash_when_enabled() {
    use sha2::Digest;
    let env = crate::common::env_with(|c| c.graphql.persisted_queries = 100).await;
    let auth = env.auth();
    let (_, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;
    let query = "{ me { user { email } role } }";
    let hash = format!("{:x}", sha2::Sha256::digest(query.as_bytes()));
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let post = |body: Value| {
        let (env, owner) = (&env, owner.clone());
        async move {
            env.call(
                Method::POST,
                "/api/graphql/t/acme",
                Some(&owner),
                Some(body),
            )
            .await
        }
    };
    // The hash alone, unknown yet: the protocol's PersistedQueryNotFound.
    let (s, body) = post(json!({"extensions": ext})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["code"], "invalid_request");
    // A hash that is not the query's: refused, nothing stored.
    let (_, body) = post(json!({"query": "{ me { role } }", "extensions": ext})).await;
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    assert!(body["data"].is_null(), "{body}");
    // The hash with its query: run and kept.
    let (s, full) = post(json!({"query": query, "extensions": ext})).await;
    assert_eq!(s, 200, "{full}");
    assert_eq!(
        full["data"]["me"]["user"]["email"], "ada@acme.test",
        "{full}"
    );
    // Then the hash alone runs it.
    let (s, body) = post(json!({"extensions": ext})).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"], full["data"]);
    // Still authenticated per request: no token, no answer.
    let (s, _) = env
        .call(
            Method::POST,
            "/api/graphql/t/acme",
            None,
            Some(json!({"extensions": ext})),
        )
        .await;
    assert_eq!(s, 401);
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cases_members_and_chart_urls_are_those_of_rest() {
    let env = env().await;
    let auth = env.auth();
    let admin_scopes = "portfolio:read portfolio:write users:manage";
    let (_, admin) = scoped_token(&auth, "acme", "root@acme.test", Role::Admin, admin_scopes).await;
    let (_, owner) = scoped_token(&auth, "acme", "ada@acme.test", Role::Trader, SCOPES).await;
    let (_, viewer) = reader(&auth).await;

    // Cases: the owner's, as REST has them; the viewer sees none of them.
    let case = env
        .with(&owner)
        .post(201, "/api/v1/t/acme/cases", crate::common::epv_case("ACME"))
        .await["data"]
        .clone();
    let id = case["id"].as_str().unwrap();
    let q = "query($id: UUID!) { cases(first: 5) { edges { cursor node { id ticker version } } }
             case(id: $id) { id ticker name currency version access inputs valuation } }";
    let got = data(&env, &owner, q, json!({"id": id})).await;
    let edge = &got["cases"]["edges"][0];
    assert_eq!(
        (&edge["cursor"], &edge["node"]["id"]),
        (&json!(id), &json!(id))
    );
    let g = &got["case"];
    for field in [
        "ticker",
        "name",
        "currency",
        "version",
        "inputs",
        "valuation",
    ] {
        assert_eq!(g[field], case[field], "{field}");
    }
    assert_eq!(g["access"], "OWNER");
    let path = format!("/api/v1/t/acme/cases/{id}");
    let rest = (Method::GET, path.as_str(), None);
    let (status, _) = refused_like_rest(&env, &viewer, rest, q, json!({"id": id})).await;
    assert_eq!(status, 404);

    // Members: for admins (users:manage), the REST page and cursor.
    let m = "query($after: String) { members(first: 2, after: $after) {
             pageInfo { hasNextPage } edges { cursor node { id email role brokerAttached } } } }";
    let rest = env
        .expect_get(200, "/api/v1/t/acme/admin/members?limit=2", &admin)
        .await;
    let got = data(&env, &admin, m, json!({})).await;
    let emails: Vec<&Value> = map_items(&got["members"]["edges"], |e| &e["node"]["email"]);
    let rest_emails: Vec<&Value> = map_items(&rest["data"], |m| &m["email"]);
    assert_eq!(emails, rest_emails);
    assert_eq!(got["members"]["pageInfo"]["hasNextPage"], true);
    let last = got["members"]["edges"][1]["cursor"].as_str().unwrap();
    assert_eq!(last, rest["meta"]["nextCursor"].as_str().unwrap());
    let next = data(&env, &admin, m, json!({"after": last})).await;
    let rest_next = env
        .expect_get(
            200,
            &format!("/api/v1/t/acme/admin/members?limit=2&cursor={last}"),
            &admin,
        )
        .await;
    assert_eq!(
        next["members"]["edges"][0]["node"]["email"],
        rest_next["data"][0]["email"]
    );
    let rest = (Method::GET, "/api/v1/t/acme/admin/members", None);
    let (status, _) = refused_like_rest(&env, &owner, rest, m, json!({})).await;
    assert_eq!(status, 403);

    // Chart URLs: where REST draws them.
    let pid = env
        .create(
            "/api/v1/t/acme/portfolios",
            &owner,
            json!({"name": "Charted", "positions": [{"symbol": "MSFT", "quantity": 1}]}),
        )
        .await;
    let c = "query($id: UUID!) { portfolio(id: $id) { charts { equity returns fan } } }";
    let got = data(&env, &owner, c, json!({"id": pid})).await;
    let charts = &got["portfolio"]["charts"];
    for chart in ["equity", "returns", "fan"] {
        let url = charts[chart].as_str().unwrap();
        assert!(
            url.ends_with(&format!(
                "/api/v1/t/acme/portfolios/{pid}/charts/{chart}.svg"
            )),
            "{url}"
        );
    }
    let path = charts["equity"]
        .as_str()
        .unwrap()
        .split_once("/api/")
        .unwrap()
        .1;
    let (s, _) = env
        .call(
            Method::GET,
            &format!("/api/{path}?from=2005-01-01&to=2009-12-31"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, 200);
}
