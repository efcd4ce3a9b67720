//! `rampart market backfill`, compiled from the server's source file.

use clap::Parser;

use crate::support::fresh_database;

#[path = "../../../server/src/market_cmd.rs"]
mod market_cmd;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(clap::Subcommand)]
enum Top {
    Market(market_cmd::MarketArgs),
}

fn backfill(args: &[&str]) -> market_cmd::BackfillArgs {
    let argv = ["rampart", "market", "backfill"].iter().chain(args);
    let Top::Market(market) = Cli::try_parse_from(argv).unwrap().command;
    let market_cmd::MarketCommand::Backfill(b) = market.command;
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_command_fills_the_store() {
    let db = fresh_database().await;
    let args = [
        "--symbols",
        "^GSPC,ibm",
        "--from",
        "2007-06-01",
        "--to",
        "2008-12-31",
        "--database-url",
        &db.url,
        "--quiet",
        "--json",
    ];
    let reports = backfill(&args).run().await.unwrap();
    assert_eq!(
        reports
            .iter()
            .map(|r| (r.symbol.as_str(), r.inserted))
            .collect::<Vec<_>>(),
        [("^GSPC", 148 + 253), ("IBM", 7 + 12)]
    );
    let again = backfill(&args).run().await.unwrap();
    assert!(
        again
            .iter()
            .all(|r| r.inserted == 0 && r.ranges_fetched == 0),
        "nothing fetched twice"
    );

    // Through the top-level `run`, as the server's main calls it.
    let argv = [
        "rampart",
        "market",
        "backfill",
        "--symbols",
        "NOPE",
        "--from",
        "2008-01-01",
        "--to",
        "2008-01-31",
        "--database-url",
        &db.url,
        "--quiet",
    ];
    let Top::Market(market) = Cli::try_parse_from(argv).unwrap().command;
    let missing = market.run().await;
    assert!(missing.unwrap_err().to_string().contains("1 of 1 symbols"));
    assert!(
        Cli::try_parse_from([
            "rampart",
            "market",
            "backfill",
            "--from",
            "2008-01-01",
            "--database-url",
            "x"
        ])
        .is_err(),
        "--symbols is required"
    );
}
