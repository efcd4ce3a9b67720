//! `rampart market backfill`, through the server's command line.

use clap::Parser;
use rampart_server::cli::{Cli, Command};
use rampart_server::market_cmd;

fn market(argv: &[&str]) -> market_cmd::MarketArgs {
    let argv = ["rampart", "market"].iter().chain(argv);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Market(m) => m,
        other => panic!("not a market command: {other:?}"),
    }
}

fn backfill(args: &[&str]) -> market_cmd::BackfillArgs {
    let argv: Vec<&str> = ["backfill"].iter().chain(args).copied().collect();
    let market_cmd::MarketCommand::Backfill(b) = market(&argv).command;
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_command_fills_the_store() {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::fresh_database().await.unwrap();
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

    // Through the subcommand's `run`, as the server's main calls it.
    let argv = [
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
    let missing = market(&argv).run().await;
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
