//! `schemas/experiment.schema.json` is derived from the format's declarations; the committed
//! copy must be current, and a real JSON Schema validator (the `jsonschema` crate, Draft
//! 2020-12) must accept every shipped experiment and every resolved `config.toml`, and reject
//! the invalid fixtures whose mistake a schema can express. `.ci/run` repeats the shipped-file
//! check with Python's `jsonschema`, an implementation outside Rust.

use std::path::{Path, PathBuf};

use runner::check::check_file;
use runner::experiment::format::{OpKind, TransformKind};
use runner::experiment::print::to_toml;

const REGENERATE: &str =
    "schemas/experiment.schema.json is stale: run `cargo run -- schema > schemas/experiment.schema.json`";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed() -> String {
    let path = root().join("schemas/experiment.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{REGENERATE} ({e})"));
    // A checkout with CRLF line endings is not stale.
    text.replace("\r\n", "\n")
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&committed()).expect("the committed schema is JSON");
    jsonschema::draft202012::new(&schema)
        .expect("the committed schema is a valid Draft 2020-12 schema")
}

/// TOML text as the JSON value a TOML language server validates.
fn as_json(text: &str, what: &str) -> serde_json::Value {
    let t: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: not TOML: {e}"));
    serde_json::to_value(t).expect("TOML converts to JSON")
}

/// The schema's errors for `text`, one line each.
fn errors(v: &jsonschema::Validator, text: &str, what: &str) -> Vec<String> {
    let instance = as_json(text, what);
    v.iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every `experiments/**/*.toml` except `experiments/broken/`.
fn shipped() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("experiments/ is readable")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "broken") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("experiments"), &mut out);
    assert!(
        out.len() >= 10,
        "expected the shipped experiments, found {}",
        out.len()
    );
    out
}

#[test]
fn committed_schema_is_current() {
    let generated = runner::cli::schema::schema_json();
    assert!(committed() == generated, "{REGENERATE}");
}

#[test]
fn every_shipped_experiment_satisfies_the_schema() {
    let v = validator();
    let mut bad = Vec::new();
    for path in shipped() {
        let text = std::fs::read_to_string(&path).expect("readable");
        for e in errors(&v, &text, &path.display().to_string()) {
            bad.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(bad.is_empty(), "schema errors:\n{}", bad.join("\n"));
}

#[test]
fn every_resolved_config_satisfies_the_schema() {
    let v = validator();
    let mut bad = Vec::new();
    for path in shipped() {
        let checked = check_file(&path);
        let (e, _) = checked
            .result
            .as_ref()
            .unwrap_or_else(|| panic!("{} invalid:\n{}", path.display(), checked.render()));
        let text = to_toml(e);
        for err in errors(&v, &text, "config.toml") {
            bad.push(format!("{} resolved: {err}", path.display()));
        }
    }
    assert!(bad.is_empty(), "schema errors:\n{}", bad.join("\n"));
}

/// The `config.toml` a real run writes (with overrides and a sweep variant) satisfies it too.
#[test]
fn a_run_writes_a_config_that_satisfies_the_schema() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .args([
            "experiments/synthetic_demo.toml",
            "--plain",
            "--log-every",
            "0",
        ])
        .args([
            "--epochs",
            "1",
            "--train-limit",
            "64",
            "--set",
            "train.optimizer.lr=0.02",
        ])
        .arg("--out")
        .arg(out.path())
        .current_dir(root())
        .env("RUNNER_NO_DOWNLOAD", "1")
        .output()
        .expect("runner starts");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs: Vec<PathBuf> = std::fs::read_dir(out.path().join("synthetic_demo"))
        .expect("run folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(runs.len(), 1, "one run");
    let text = std::fs::read_to_string(runs[0].join("config.toml")).expect("config.toml");
    assert_eq!(
        errors(&validator(), &text, "config.toml"),
        Vec::<String>::new(),
        "{text}"
    );
}

/// Invalid fixtures whose mistake is a matter of keys, types or names: a schema can say so,
/// and ours must.
const SCHEMA_REJECTS: &[&str] = &[
    "unknown_top_level_key",
    "unknown_optimizer_key",
    "wrong_type",
    "missing_dataset",
    "missing_model",
    "unknown_dataset",
    "unknown_layer_op",
    "unknown_transform_op",
    "negative_integer",
    "unknown_device",
    "param_outside_block",
    "sweep_not_a_list",
    "validation_fraction",
    "early_stopping_on_test",
];

#[test]
fn fixtures_with_schema_expressible_mistakes_fail_it() {
    let v = validator();
    for kind in SCHEMA_REJECTS {
        let path = root().join(format!("tests/fixtures/invalid/{kind}.toml"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        assert!(
            !errors(&v, &text, kind).is_empty(),
            "{kind}: the schema accepts a file `runner check` rejects"
        );
    }
}

#[test]
fn block_arguments_are_expressible() {
    let v = validator();
    let text = r#"
        [data]
        dataset = "synthetic"
        [model.blocks.b]
        params = ["width", "k"]
        layers = [{ op = "conv2d", out = "$width", kernel = "$k", padding = 1 }, { op = "relu" }]
        [model]
        layers = [
          { op = "block", block = "b", args = { width = 4, k = 3 } },
          { op = "flatten" },
          { op = "linear", out = 4 },
        ]
    "#;
    assert_eq!(errors(&v, text, "blocks"), Vec::<String>::new());
    let outside = text.replace("out = 4 }", "out = \"$width\" }");
    assert!(
        !errors(&v, &outside, "outside").is_empty(),
        "a `$param` outside a block must fail the schema"
    );
}

#[test]
fn schema_describes_the_top_level_keys() {
    let schema: serde_json::Value =
        serde_json::from_str(&runner::cli::schema::schema_json()).expect("the schema is JSON");
    let props = schema["properties"]
        .as_object()
        .expect("top-level properties");
    for key in ["name", "seed", "device", "data", "model", "train", "sweep"] {
        let p = props
            .get(key)
            .unwrap_or_else(|| panic!("schema lacks top-level key `{key}`"));
        assert!(
            p["description"].as_str().is_some_and(|d| !d.is_empty()),
            "`{key}` has no description"
        );
    }
    assert_eq!(
        props.len(),
        7,
        "unexpected top-level keys: {:?}",
        props.keys()
    );
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are errors"
    );
}

#[test]
fn schema_lists_every_layer_op_and_transform() {
    let schema = runner::cli::schema::schema_json();
    for op in OpKind::NAMES.iter().chain(TransformKind::NAMES) {
        assert!(
            schema.contains(&format!("\"const\": \"{op}\"")),
            "`{op}` missing from the schema"
        );
    }
}
