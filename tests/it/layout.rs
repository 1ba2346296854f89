//! The shape of the code, checked: the import graph of `src/` has no cycle
//! between sibling modules, and only `store/` names sled.
//!
//! Every `crate::` and `super::` path in a file is an edge from that
//! file's module to the module the path names. An edge is counted between
//! the two modules just below their closest common ancestor (so
//! `poller::refresh` -> `poller::feed_comments` is an edge between siblings
//! of `poller`, and `metrics` -> `poller::refresh` one between `metrics` and
//! `poller`); a module naming its own parent or child is not an edge.
//! `cargo test layout` prints any cycle it finds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module of `src/`, with its file's text.
fn modules() -> BTreeMap<Module, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.to_vec();
                if !matches!(name.as_str(), "mod" | "lib" | "main") {
                    module.push(name);
                }
                // Test modules may reach anywhere.
                let text = std::fs::read_to_string(&path).unwrap();
                let text = match text.find("#[cfg(test)]") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                };
                out.entry(module).or_default().push_str(&text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The paths a text names: `crate::a::b` and `super::a`, with `use`
/// braces expanded (`use crate::{a::X, b}` names `a::X` and `b`).
fn paths(text: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        match tree.find('{') {
            Some(open) if tree.ends_with('}') => {
                let head = format!("{prefix}{}", &tree[..open]);
                let inner = &tree[open + 1..tree.len() - 1];
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(&head, &inner[start..i], out);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                expand(&head, &inner[start..], out);
            }
            _ if !tree.is_empty() => out.push(format!("{prefix}{tree}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for statement in text.split(';') {
        let s = statement.trim_start();
        let s = s.strip_prefix("pub ").unwrap_or(s);
        let s = s.strip_prefix("pub(crate) ").unwrap_or(s);
        if let Some(tree) = s.strip_prefix("use ") {
            let tree: String = tree.split_whitespace().collect();
            expand("", &tree, &mut out);
        }
    }
    // Paths written inline in code.
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        out.push(rest[..end].trim_end_matches(':').to_string());
    }
    out
}

/// The module a path names, from the module `from` it is written in.
fn target(from: &Module, path: &str, known: &BTreeSet<Module>) -> Option<Module> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let mut base: Module = match parts.first() {
        Some(&"crate") => {
            parts.remove(0);
            Vec::new()
        }
        Some(&"super") => {
            let mut base = from.clone();
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop();
            }
            base
        }
        _ => return None,
    };
    let mut found = base.clone();
    for p in parts {
        base.push(p.to_string());
        if known.contains(&base) {
            found = base.clone();
        } else {
            break;
        }
    }
    Some(found)
}

/// The edges between siblings: (parent, from child, to child).
fn edges() -> BTreeSet<(Module, String, String)> {
    let modules = modules();
    let known: BTreeSet<Module> = modules.keys().cloned().collect();
    let mut out = BTreeSet::new();
    for (from, text) in &modules {
        for path in paths(text) {
            let Some(to) = target(from, &path, &known) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // itself, a parent or a child
            }
            out.insert((
                from[..common].to_vec(),
                from[common].clone(),
                to[common].clone(),
            ));
        }
    }
    out
}

#[test]
fn the_module_graph_has_no_cycle() {
    let edges = edges();
    let mut cycles = Vec::new();
    let parents: BTreeSet<&Module> = edges.iter().map(|(p, _, _)| p).collect();
    for parent in parents {
        let graph: BTreeMap<&str, Vec<&str>> = edges.iter().filter(|(p, _, _)| p == parent).fold(
            BTreeMap::new(),
            |mut g, (_, a, b)| {
                g.entry(a.as_str()).or_default().push(b.as_str());
                g
            },
        );
        // Depth-first search from every node, reporting each cycle once
        // by its smallest node.
        for &start in graph.keys() {
            let mut stack = vec![(start, vec![start])];
            while let Some((node, path)) = stack.pop() {
                for &next in graph.get(node).into_iter().flatten() {
                    if next == start {
                        let mut cycle = path.clone();
                        cycle.push(start);
                        if path.iter().all(|n| *n >= start) {
                            cycles.push(format!("{}: {}", parent.join("::"), cycle.join(" -> ")));
                        }
                    } else if !path.contains(&next) && next > start {
                        let mut longer = path.clone();
                        longer.push(next);
                        stack.push((next, longer));
                    }
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    assert!(!edges.is_empty(), "the scan found no imports at all");
}

#[test]
fn only_the_store_names_sled() {
    for (module, text) in modules() {
        if module.first().map(String::as_str) == Some("store") {
            continue;
        }
        let code = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .any(|l| l.contains("sled"));
        assert!(!code, "{} names sled", module.join("::"));
    }
}

#[test]
fn only_the_postgres_backend_names_the_driver() {
    let mut named = 0;
    for (module, text) in modules() {
        let uses = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .any(|l| l.contains("tokio_postgres") || l.contains("deadpool"));
        let inside = module.starts_with(&["store".to_string(), "postgres".to_string()]);
        // The config reads `[storage].url` with the driver's own parser,
        // so that a URL it cannot read is a FILE:LINE:COL mistake.
        let config = module.first().map(String::as_str) == Some("config");
        if uses && inside {
            named += 1;
        }
        assert!(
            !uses || inside || config,
            "{} names the PostgreSQL driver",
            module.join("::")
        );
    }
    assert!(named > 0, "the scan found the backend itself");
}
