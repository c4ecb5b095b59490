//! TOML values as the text of a resolved `config.toml`: top-level values first, then one
//! `[section]` per table; inside a section everything is inline, and an array of tables puts
//! one table per line, so a 50-layer network reads as 50 lines.

use std::fmt::Write as _;

/// A document (a table) as text.
pub fn document(doc: &toml::Table) -> String {
    let mut out = String::new();
    for (k, v) in doc {
        if !v.is_table() {
            let _ = writeln!(out, "{} = {}", key(k), value(v, 0));
        }
    }
    for (k, v) in doc {
        if let toml::Value::Table(t) = v {
            let _ = writeln!(out, "\n[{}]", key(k));
            for (k, v) in t {
                let _ = writeln!(out, "{} = {}", key(k), value(v, 0));
            }
        }
    }
    out
}

/// A key, bare when TOML allows it.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        string(k)
    }
}

/// A basic string; TOML basic strings accept JSON's escapes.
fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A value inline; arrays of tables one table per line, indented by `depth`.
fn value(v: &toml::Value, depth: usize) -> String {
    match v {
        toml::Value::String(s) => string(s),
        toml::Value::Integer(i) => i.to_string(),
        // `{:?}` is the shortest text that reads back as the same number, and always has a
        // `.` or an exponent, as TOML floats must.
        toml::Value::Float(f) => format!("{f:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) if !items.is_empty() && items.iter().all(|x| x.is_table()) => {
            let pad = "  ".repeat(depth + 1);
            let mut s = String::from("[\n");
            for x in items {
                let _ = writeln!(s, "{pad}{},", value(x, depth + 1));
            }
            s.push_str(&"  ".repeat(depth));
            s.push(']');
            s
        }
        toml::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|x| value(x, depth))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        toml::Value::Table(t) if t.is_empty() => "{}".into(),
        toml::Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, x)| format!("{} = {}", key(k), value(x, depth)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_back_exactly() {
        for x in [0.1, 1e-5, 1e20, 0.49140000343322754, 3.0, -0.0, 1e-300] {
            let text = value(&toml::Value::Float(x), 0);
            let back: f64 = toml::from_str::<toml::Table>(&format!("x = {text}"))
                .expect("valid TOML")["x"]
                .as_float()
                .expect("a float");
            assert_eq!(back.to_bits(), x.to_bits(), "{x} printed as {text}");
        }
    }

    #[test]
    fn document_reads_back_as_the_same_table() {
        let doc: toml::Table = toml::from_str(
            r#"
            name = "a \"quoted\" name"
            seed = 3
            [data]
            dataset = "mnist"
            train_transforms = [{ op = "normalize", mean = [0.5], std = [0.25] }]
            test_transforms = []
            [model]
            layers = [{ op = "flatten" }, { op = "linear", out = 10, "odd key" = true }]
            "#,
        )
        .expect("valid");
        let text = document(&doc);
        let again: toml::Table = toml::from_str(&text).expect("printed text is TOML");
        assert_eq!(doc, again, "{text}");
        assert!(
            text.contains("layers = [\n  { op = \"flatten\" },\n"),
            "{text}"
        );
    }
}
