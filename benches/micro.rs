//! criterion micro-benchmarks: `cargo bench --bench micro`.

#[path = "support/corpus.rs"]
mod corpus;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use paddock::render::{Channel, Directory, atom};

/// Parse plus normalize a ~200 KB WordPress feed.
fn parse(c: &mut Criterion) {
    // Site 0 is WordPress; 100 stories of ~2 KB make ~200 KB.
    let site = corpus::generate(1, 100, "http://127.0.0.1:1").remove(0);
    let base = url::Url::parse("https://site0.example/feed/").unwrap();
    let mut group = c.benchmark_group("wordpress");
    group.throughput(criterion::Throughput::Bytes(site.feed.len() as u64));
    group.bench_function(
        format!("parse+normalize {} KB", site.feed.len() / 1024),
        |b| {
            b.iter(|| {
                let parsed =
                    paddock::parse::parse_feed(black_box(&site.feed), &base, None).unwrap();
                black_box(paddock::normalize::candidates(
                    "site0",
                    parsed.entries,
                    1000,
                    chrono::Utc::now(),
                ))
            })
        },
    );
    group.bench_function(format!("parse {} KB", site.feed.len() / 1024), |b| {
        b.iter(|| paddock::parse::parse_feed(black_box(&site.feed), &base, None).unwrap())
    });
    group.finish();
}

/// Render a 50-story merged Atom feed.
fn render(c: &mut Criterion) {
    let site = corpus::generate(1, 52, "http://127.0.0.1:1").remove(0);
    let base = url::Url::parse("https://site0.example/feed/").unwrap();
    let parsed = paddock::parse::parse_feed(&site.feed, &base, None).unwrap();
    let now = chrono::Utc::now();
    let items: Vec<paddock::model::Item> =
        paddock::normalize::candidates("site0", parsed.entries, 1000, chrono::Utc::now())
            .into_iter()
            .take(50)
            .map(|c| paddock::model::Item::new("site0", c, now, now))
            .collect();
    assert_eq!(items.len(), 50);
    let channel = Channel {
        title: "Auto news".into(),
        self_url: "http://127.0.0.1:8080/feed.atom".into(),
        home_url: "http://127.0.0.1:8080/".into(),
        updated: now,
        hub: None,
    };
    let dir = Directory::new();
    c.bench_function("render atom, 50 stories", |b| {
        b.iter(|| black_box(atom(&channel, black_box(&items), &dir)))
    });
}

criterion_group!(benches, parse, render);
criterion_main!(benches);
