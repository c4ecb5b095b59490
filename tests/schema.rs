//! `schemas/experiment.schema.json` is generated from the raw Rust types; the committed copy must
//! be current so that editors validating experiment files see the real format.

use std::path::Path;

const REGENERATE: &str =
    "schemas/experiment.schema.json is stale: run `cargo run -- schema > schemas/experiment.schema.json`";

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/experiment.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{REGENERATE} ({e})"));
    // A checkout with CRLF line endings is not stale.
    text.replace("\r\n", "\n")
}

#[test]
fn committed_schema_is_current() {
    let generated = runner::cli::schema::schema_json();
    assert!(committed() == generated, "{REGENERATE}");
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
    for op in runner::spec::raw::OPS {
        assert!(
            schema.contains(&format!("\"const\": \"{op}\"")),
            "layer op `{op}` missing from the schema"
        );
    }
    for t in [
        "normalize",
        "random_crop",
        "random_horizontal_flip",
        "pixel_permutation",
        "center_crop",
    ] {
        assert!(
            schema.contains(&format!("\"const\": \"{t}\"")),
            "transform `{t}` missing from the schema"
        );
    }
}
