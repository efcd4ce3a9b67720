//! Embeds the SQL migrations of `migrations/platform` and `migrations/tenant`
//! (diesel's directory format: `<version>_<name>/up.sql`, inside this crate)
//! into the crate.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    // Inside the crate, so that `cargo package` ships them.
    let root = Path::new(&manifest).join("migrations");
    let mut out = String::new();
    for set in ["platform", "tenant"] {
        let dir = root.join(set);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("up.sql").is_file())
                .collect(),
            Err(e) => fail(&format!("cannot read {}: {e}", dir.display())),
        };
        // A crate without its migrations would provision empty tenants.
        if entries.is_empty() {
            fail(&format!(
                "no migrations (<version>_<name>/up.sql) in {}",
                dir.display()
            ));
        }
        entries.sort();
        let _ = writeln!(out, "/// Embedded `{set}` migrations, oldest first.");
        let _ = writeln!(
            out,
            "pub(crate) static {}: &[EmbeddedMigration] = &[",
            set.to_uppercase()
        );
        for path in entries {
            let dir_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (version, name) = dir_name.split_once('_').unwrap_or((&dir_name, ""));
            let version: String = version.chars().filter(|c| c.is_ascii_digit()).collect();
            let up = path.join("up.sql");
            println!("cargo:rerun-if-changed={}", up.display());
            let _ = writeln!(
                out,
                "    EmbeddedMigration {{ version: {version:?}, name: {name:?}, up_sql: include_str!({:?}) }},",
                up.canonicalize()
                    .unwrap_or(up.clone())
                    .display()
                    .to_string()
            );
        }
        let _ = writeln!(out, "];");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("embedded_migrations.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
    }
}

/// Stops the build with `message`.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
