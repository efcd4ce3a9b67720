//! Starts real PostgreSQL servers with the installed binaries.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_pgembed::{PgError, PgOptions, PgServer};

fn select_one(pg: &PgServer) -> String {
    pg.run_tool("psql", ["-tAc", "SELECT 1", "postgres"])
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn temporary_cluster_is_deleted_on_shutdown() {
    let pg = PgServer::start().unwrap();
    assert!(pg.url("app").ends_with(&format!(":{}/app", pg.port())));
    assert_eq!(select_one(&pg), "1");
    let log = pg.log_path();
    assert!(log.is_file());
    pg.stop().unwrap();
    assert!(
        pg.run_tool("psql", ["-tAc", "SELECT 1", "postgres"])
            .is_err()
    );
    pg.restart().unwrap();
    assert_eq!(select_one(&pg), "1");
    pg.shutdown().unwrap();
    assert!(!log.exists(), "temporary cluster left behind");
}

#[test]
fn kept_cluster_survives_a_restart_on_a_fixed_port() {
    let dir = tempfile::tempdir().unwrap();
    // Run as root, the server's account must be able to reach its directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let options = PgOptions {
        data_dir: Some(dir.path().join("pg")),
        port: Some(rampart_pgembed::free_port().unwrap()),
        settings: vec![("max_locks_per_transaction".into(), "128".into())],
        ..PgOptions::default()
    };
    let pg = PgServer::start_with(options.clone()).unwrap();
    pg.run_tool("psql", ["-c", "CREATE DATABASE kept", "postgres"])
        .unwrap();
    let setting = pg
        .run_tool(
            "psql",
            ["-tAc", "SHOW max_locks_per_transaction", "postgres"],
        )
        .unwrap();
    assert_eq!(setting.trim(), "128");
    // A second server on the directory while this one runs is refused with
    // the running server's pid, before anything is started.
    let refused =
        PgServer::start_with(options.clone()).expect_err("a second server on a directory in use");
    assert!(
        matches!(refused, PgError::InUse { pid, .. } if pid > 0),
        "{refused}"
    );
    assert_eq!(select_one(&pg), "1", "the running server is untouched");
    pg.shutdown().unwrap();
    assert!(dir.path().join("pg/data/PG_VERSION").is_file());
    // A stale lock file naming a live process that is not PostgreSQL (here
    // this test process) is not in the way either.
    std::fs::write(
        dir.path().join("pg/data/postmaster.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let pg = PgServer::start_with(options.clone()).unwrap();
    assert_eq!(select_one(&pg), "1");
    pg.shutdown().unwrap();
    // A lock file left by a server that died (its pid gone) is not in the way.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(
        dir.path().join("pg/data/postmaster.pid"),
        format!("{}\n", gone.id()),
    )
    .unwrap();

    let pg = PgServer::start_with(options).unwrap();
    let found = pg
        .run_tool(
            "psql",
            [
                "-tAc",
                "SELECT count(*) FROM pg_database WHERE datname = 'kept'",
                "postgres",
            ],
        )
        .unwrap();
    assert_eq!(found.trim(), "1");
    pg.shutdown().unwrap();
}
