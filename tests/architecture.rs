//! The pipeline runs one way: the front end (`src/experiment/`) turns text into a checked
//! experiment and never uses the graph; the graph (`src/graph/`) takes a checked experiment and
//! never reads TOML. These tests fail when an import crosses that line.

use std::path::{Path, PathBuf};

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in std::fs::read_dir(dir).expect("source folder") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("readable source");
                out.push((p, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut out);
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// Lines of code (comments stripped) that mention any of `needles`.
fn offending(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for (path, text) in sources(dir) {
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|n| code.contains(n)) {
                hits.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn the_front_end_does_not_use_the_graph() {
    let hits = offending(
        "src/experiment",
        &[
            "crate::graph",
            "runner::graph",
            "super::graph",
            "crate::check",
            "crate::model",
        ],
    );
    assert!(
        hits.is_empty(),
        "src/experiment/ imports a later stage:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_graph_reads_no_toml() {
    let hits = offending(
        "src/graph",
        &[
            "toml::",
            "DeValue",
            "DeTable",
            "experiment::read",
            "experiment::format",
            "experiment::decl",
            "experiment::expand::expand",
            "experiment::validate",
        ],
    );
    // The one allowed use of `experiment::format` is the table of op names.
    let hits: Vec<String> = hits
        .into_iter()
        .filter(|h| !h.contains("use crate::experiment::format::OpKind;"))
        .collect();
    assert!(
        hits.is_empty(),
        "src/graph/ reads TOML or front-end internals:\n{}",
        hits.join("\n")
    );
}
