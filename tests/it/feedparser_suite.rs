//! feedparser's own test documents (its 6.0.11 sdist, BSD-licensed, not
//! vendored: `.ci/run` fetches it from PyPI into `target/feedparser/`).
//! `tests/fixtures/feedparser-clean.txt` lists the documents feedparser
//! reads without a bozo flag (CDF and the HTTP-only tests left out); the
//! list was made with `scripts/feedparser-clean.py`. Every one must parse,
//! but those named in `NOT_YET` with why; every document of the suite,
//! clean or not, must parse or fail without a panic.

use std::path::{Path, PathBuf};

use url::Url;

/// Clean documents Paddock does not read (yet), by the start of their
/// path, each with why.
const NOT_YET: &[(&str, &str)] = &[
    (
        "encoding/x80_",
        "EBCDIC code pages (cp037, cp500, cp875, ibm1140, ...): encoding_rs has no decoder for them",
    ),
    (
        "wellformed/base/cdf_",
        "CDF, which Paddock does not read (the list leaves CDF out, but for this one)",
    ),
];

/// How many clean documents `NOT_YET` may cover: its patterns must not
/// hide a document that stops being read.
const NOT_YET_COUNT: usize = 22;

fn suite() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/feedparser/tests");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "feedparser's test documents are required under CI (see .ci/run) but {} is missing",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: feedparser's test documents are not in {}; .ci/run fetches them",
        dir.display()
    );
    None
}

#[test]
fn every_document_feedparser_reads_cleanly_is_read() {
    let Some(dir) = suite() else { return };
    let list = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feedparser-clean.txt"),
    )
    .unwrap();
    let mut missed = Vec::new();
    let (mut read, mut not_yet) = (0, 0);
    for rel in list.lines().filter(|l| !l.trim().is_empty()) {
        let path = dir.join(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let base = Url::from_file_path(&path).unwrap();
        match paddock::parse::parse_feed(&bytes, &base, None) {
            Ok(_) => read += 1,
            Err(e) if NOT_YET.iter().any(|(n, _)| rel.starts_with(n)) => {
                eprintln!("not yet: {rel}: {e}");
                not_yet += 1;
            }
            Err(e) => missed.push(format!("{rel}: {e}")),
        }
    }
    eprintln!(
        "feedparser suite: {read} of {} clean documents read, {not_yet} not yet",
        list.lines().count()
    );
    assert!(
        not_yet <= NOT_YET_COUNT,
        "{not_yet} documents under NOT_YET"
    );
    assert!(
        missed.is_empty(),
        "{} missed:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

#[test]
fn no_document_of_the_suite_panics_the_parser() {
    let Some(dir) = suite() else { return };
    let mut n = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "xml" || e == "rdf" || e == "json")
            {
                let bytes = std::fs::read(&path).unwrap();
                let base = Url::from_file_path(&path).unwrap();
                let parsed = std::panic::catch_unwind(|| {
                    let _ = paddock::parse::parse_feed(&bytes, &base, None);
                });
                assert!(parsed.is_ok(), "{} panicked", path.display());
                n += 1;
            }
        }
    }
    assert!(n > 2000, "only {n} documents found");
}
