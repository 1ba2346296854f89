//! The integration suite again, on PostgreSQL: this test runs the suite's
//! binary once more with `PADDOCK_TEST_BACKEND=postgres`, which makes
//! every test config (`support::storage_keys`) keep its store in a
//! database of its own. Tests that touch no store are left out of the
//! second pass: the parsers' properties, feedparser's documents, the
//! layout checks and the browser (whose page the first pass checks).

#[test]
fn the_integration_suite_passes_on_postgresql() {
    if paddock::store::scratch_database("postgres_pass").is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("PADDOCK_TEST_BACKEND", "postgres")
        .args([
            "--skip",
            "postgres_pass::",
            "--skip",
            "instances::",
            "--skip",
            "database_faults::",
            "--skip",
            "store_copy::",
            "--skip",
            "props::",
            "--skip",
            "feedparser_suite::",
            "--skip",
            "layout::",
            "--skip",
            "browser::",
            "--test-threads",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let passed = stdout
        .lines()
        .filter(|l| l.starts_with("test ") && l.ends_with(" ok"))
        .count();
    assert!(
        out.status.success(),
        "the suite fails on PostgreSQL:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        passed > 40,
        "only {passed} tests ran on PostgreSQL:\n{stdout}"
    );
}
