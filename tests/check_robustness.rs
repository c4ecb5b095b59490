//! No input, however malformed, makes `runner check` panic, hang or allocate gigabytes: each
//! adversarial input here must come back quickly as located errors (or, where it is valid, as a
//! result). A panic or a stack overflow fails the test; a hang shows as a test that never ends.

use runner::check::{check_bytes, check_str, Checked};

const CIFAR: &str = "name = \"x\"\n[data]\ndataset = \"cifar10\"\n";

fn check(text: &str) -> Checked {
    check_str("adversarial.toml", text, "adversarial")
}

/// Asserts an error whose message contains `expected`, located inside the text, and that the
/// rendering stays small (no multi-megabyte source lines echoed back).
fn assert_rejected(what: &str, c: &Checked, expected: &str) {
    assert!(!c.ok(), "{what}: accepted");
    assert!(
        c.diagnostics
            .iter()
            .any(|d| d.is_error() && d.message.contains(expected)),
        "{what}: no error containing {expected:?}:\n{}",
        c.render()
    );
    for d in &c.diagnostics {
        assert!(
            d.span.end <= c.source.text.len(),
            "{what}: span {:?}",
            d.span
        );
    }
    let rendered = c.render();
    assert!(
        rendered.len() < 20_000,
        "{what}: {} bytes of diagnostics ({} diagnostics)",
        rendered.len(),
        c.diagnostics.len()
    );
}

fn model(layers: &str) -> String {
    format!("{CIFAR}[model]\nlayers = [{layers}]\n")
}

/// Blocks `b0` .. `b{levels-1}`, each instantiating the next `fan_out` times; the last is a relu.
fn exponential_blocks(levels: usize, fan_out: usize) -> String {
    let mut s = CIFAR.to_string();
    for i in 0..levels {
        let body = if i + 1 == levels {
            "{ op = \"relu\" }".to_string()
        } else {
            vec![format!("{{ op = \"block\", block = \"b{}\" }}", i + 1); fan_out].join(", ")
        };
        s += &format!("[model.blocks.b{i}]\nlayers = [{body}]\n");
    }
    s + "[model]\nlayers = [{ op = \"block\", block = \"b0\" }, { op = \"global_avg_pool\" }, { op = \"linear\", out = 10 }]\n"
}

#[test]
fn deep_nesting_is_rejected_before_parsing() {
    let cases: [(&str, String); 4] = [
        ("100k nested arrays", format!("x = {}", "[".repeat(100_000))),
        ("100k nested table headers", "[".repeat(100_000)),
        (
            "10k nested inline tables",
            format!("x = {}1{}", "{ a = ".repeat(10_000), "}".repeat(10_000)),
        ),
        (
            "nested arrays of inline tables",
            format!("x = {}", "[{ a = ".repeat(20_000)),
        ),
    ];
    for (what, text) in cases {
        assert_rejected(what, &check(&text), "nest more than 64 deep");
    }
}

#[test]
fn nesting_at_the_limit_parses_without_overflowing_the_stack() {
    let text = format!("x = {}1{}\n", "[".repeat(64), "]".repeat(64));
    assert_rejected("64 nested arrays", &check(&text), "unknown key `x`");
}

#[test]
fn deep_dotted_keys_are_errors() {
    // Dotted keys nest tables without brackets, so the bracket count does not see them.
    let keys = vec!["a"; 100_000].join(".");
    let cases = [
        ("100k dotted keys", format!("{keys} = 1\n")),
        ("100k dotted table header", format!("[{keys}]\n")),
        ("100k dotted keys inline", format!("x = {{ {keys} = 1 }}\n")),
    ];
    for (what, text) in cases {
        let c = check(&text);
        assert!(!c.ok(), "{what}: accepted");
        assert!(c.render().len() < 20_000, "{what}");
    }
}

#[test]
fn expansion_is_bounded() {
    let huge_cfg = vec!["64"; 500_000].join(", ");
    let many_relus = vec!["{ op = \"relu\" }"; 20_000].join(", ");
    let cases = [
        (
            "a vgg cfg of 500k widths",
            model(&format!(
                "{{ op = \"vgg\", cfg = [{huge_cfg}] }}, {{ op = \"global_avg_pool\" }}, {{ op = \"linear\", out = 10 }}"
            )),
            "expands to more than 10000 layers",
        ),
        (
            "20k layers",
            model(&many_relus),
            "expands to more than 10000 layers",
        ),
        (
            "blocks nested 10 levels, 10 instances each (10^9 layers)",
            exponential_blocks(10, 10),
            "expands to more than 10000 layers",
        ),
        (
            "blocks nested 12 levels, 3 instances each",
            exponential_blocks(12, 3),
            "expands to more than 10000 layers",
        ),
        (
            "blocks nested 40 levels, 2 instances each",
            exponential_blocks(40, 2),
            "blocks nest more than 16 deep",
        ),
    ];
    for (what, text, expected) in cases {
        let c = check(&text);
        assert_rejected(what, &c, expected);
        let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
        assert_eq!(
            errors,
            1,
            "{what}: one error, no follow-ups:\n{}",
            c.render()
        );
    }
}

#[test]
fn recursive_blocks_hit_the_nesting_limit() {
    let self_ten = ["{ op = \"block\", block = \"a\" }"; 10].join(", ");
    let cases = [
        (
            "a block instantiating itself",
            "[model.blocks.a]\nlayers = [{ op = \"relu\" }, { op = \"block\", block = \"a\" }]\n"
                .to_string(),
        ),
        (
            "a block instantiating itself ten times (10^16 paths)",
            format!("[model.blocks.a]\nlayers = [{self_ten}]\n"),
        ),
        (
            "two blocks instantiating each other",
            "[model.blocks.a]\nlayers = [{ op = \"block\", block = \"b\" }]\n\
             [model.blocks.b]\nlayers = [{ op = \"block\", block = \"a\" }]\n"
                .to_string(),
        ),
    ];
    for (what, blocks) in cases {
        let text = format!(
            "{CIFAR}{blocks}[model]\nlayers = [{{ op = \"block\", block = \"a\" }}, {{ op = \"global_avg_pool\" }}, {{ op = \"linear\", out = 10 }}]\n"
        );
        let c = check(&text);
        assert_rejected(what, &c, "blocks nest more than 16 deep");
        let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
        assert_eq!(
            errors,
            1,
            "{what}: one error, no follow-ups:\n{}",
            c.render()
        );
    }
}

#[test]
fn huge_numbers_are_errors_not_overflows() {
    let synthetic = "name = \"x\"\n[data]\ndataset = \"synthetic\"\nsynthetic = { shape = [4096, 4096, 4096], classes = 2 }\n";
    let big_conv = "{ op = \"conv2d\", out = 1048576, kernel = 4096, padding = 4096 }";
    let growing =
        vec!["{ op = \"conv2d\", out = 1048576, kernel = 1, padding = 4096 }"; 50].join(", ");
    let cases = [
        (
            "a width of 10^15",
            model("{ op = \"flatten\" }, { op = \"linear\", out = 1_000_000_000_000_000 }"),
            "is too large",
        ),
        (
            "a width of 2^40",
            model("{ op = \"flatten\" }, { op = \"linear\", out = 1099511627776 }"),
            "out of range",
        ),
        (
            "i64::MAX",
            model("{ op = \"flatten\" }, { op = \"linear\", out = 9223372036854775807 }"),
            "is too large",
        ),
        (
            "beyond i64",
            model("{ op = \"flatten\" }, { op = \"linear\", out = 9223372036854775808 }"),
            "",
        ),
        (
            "i64::MIN",
            model("{ op = \"flatten\" }, { op = \"linear\", out = -9223372036854775808 }"),
            "non-negative",
        ),
        (
            "2^64 parameters in one conv",
            format!("{synthetic}[model]\nlayers = [{big_conv}, {big_conv}, {{ op = \"flatten\" }}, {{ op = \"linear\", out = 2 }}]\n"),
            "parameters",
        ),
        (
            "padding that grows the image every layer",
            format!("{synthetic}[model]\nlayers = [{growing}, {{ op = \"flatten\" }}, {{ op = \"linear\", out = 2 }}]\n"),
            "values per image",
        ),
        (
            "a float of 1e400",
            format!("{CIFAR}[model]\nlayers = [{{ op = \"flatten\" }}, {{ op = \"linear\", out = 10 }}]\n[train]\noptimizer = {{ kind = \"sgd\", lr = 1e400 }}\n"),
            "",
        ),
        (
            "nan and inf",
            format!("{CIFAR}[model]\nlayers = [{{ op = \"flatten\" }}, {{ op = \"dropout\", p = nan }}, {{ op = \"linear\", out = 10 }}]\n[train]\noptimizer = {{ kind = \"sgd\", lr = inf }}\n"),
            "finite",
        ),
        (
            "a seed of 2^64",
            format!("seed = 18446744073709551616\n{}", model("{ op = \"flatten\" }, { op = \"linear\", out = 10 }").replace("name = \"x\"\n", "")),
            "seed",
        ),
        (
            "an integer prefix without digits",
            format!("seed = 0x\n{}", model("{ op = \"flatten\" }, { op = \"linear\", out = 10 }").replace("name = \"x\"\n", "")),
            "invalid integer",
        ),
    ];
    for (what, text, expected) in cases {
        assert_rejected(what, &check(&text), expected);
    }
}

#[test]
fn the_largest_seed_is_valid() {
    let text = format!(
        "seed = 18446744073709551615\n{}",
        model("{ op = \"flatten\" }, { op = \"linear\", out = 10 }").replace(
            "dataset = \"cifar10\"\n",
            "dataset = \"cifar10\"\ntrain_transforms = [{ op = \"pixel_permutation\", seed = 18446744073709551615 }]\ntest_transforms = [{ op = \"pixel_permutation\", seed = 18446744073709551615 }]\n"
        )
    );
    let c = check(&text);
    assert!(c.ok(), "{}", c.render());
    let (e, _) = c.result.as_ref().expect("valid");
    assert_eq!(e.seed(), u64::MAX);
    assert_eq!(
        e.data().train_transforms,
        [runner::experiment::Transform::PixelPermutation { seed: u64::MAX }]
    );
}

#[test]
fn binary_and_oversized_inputs_are_errors() {
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(1 << 16).collect();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("every byte value", all_bytes, "not valid UTF-8"),
        ("a lone continuation byte", vec![0x80], "not valid UTF-8"),
        (
            "a truncated UTF-8 sequence at the end",
            b"name = \"caf\xc3".to_vec(),
            "not valid UTF-8",
        ),
        ("NUL bytes", b"name = \"x\"\0\0\0".to_vec(), "invalid TOML"),
        (
            "a UTF-16 file",
            "name = \"x\""
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
            "invalid TOML",
        ),
    ];
    for (what, bytes, expected) in cases {
        let c = check_bytes("adversarial.toml", &bytes, "adversarial");
        assert_rejected(what, &c, expected);
    }
}

#[test]
fn files_over_the_size_limit_are_not_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.toml");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len((4 << 20) + 1).expect("sparse file");
    let c = runner::check::check_file(&path);
    assert_rejected("a 4 MiB + 1 file", &c, "experiment files are at most");
}

#[test]
fn devices_pipes_directories_and_loops_are_named_not_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("pipe.toml");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: `mkfifo` with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::os::unix::fs::symlink(&b, &a).expect("link");
    std::os::unix::fs::symlink(&a, &b).expect("link");
    let started = std::time::Instant::now();
    let cases: [(&str, &std::path::Path, &str); 4] = [
        (
            "/dev/zero",
            std::path::Path::new("/dev/zero"),
            "a character device",
        ),
        ("a FIFO without a writer", &fifo, "a named pipe (FIFO)"),
        (
            "a directory",
            dir.path(),
            "is a directory, not an experiment file",
        ),
        ("a symlink loop", &a, "a loop of symbolic links"),
    ];
    for (what, path, expected) in cases {
        let c = runner::check::check_file(path);
        assert_rejected(what, &c, expected);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused at once, without reading: {:?}",
        started.elapsed()
    );
}

#[test]
fn long_lines_and_many_errors_render_compactly() {
    // One 3 MB line with an error in the middle, and 10k unknown keys.
    let long = format!(
        "{CIFAR}[model]\nlayers = [{}{{ op = \"nope\" }}, {}]\n",
        "{ op = \"relu\" }, ".repeat(100_000),
        "{ op = \"relu\" }, ".repeat(100_000)
    );
    let c = check(&long);
    assert_rejected(
        "an unknown op on a 3 MB line",
        &c,
        "unknown layer op `nope`",
    );
    let keys: String = (0..10_000).map(|i| format!("k{i} = {i}\n")).collect();
    let c = check(&format!(
        "{keys}{}",
        model("{ op = \"flatten\" }, { op = \"linear\", out = 10 }")
    ));
    assert!(!c.ok());
    let unknown = c
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("unknown key"))
        .count();
    assert_eq!(unknown, 10_000, "every unknown key is reported once");
}

#[test]
fn names_too_long_for_a_folder_or_holding_controls_are_errors() {
    let long = "x".repeat(3_000_000);
    let c = check(&format!(
        "name = \"{long}\"\n[data]\ndataset = \"cifar10\"\n"
    ));
    assert_rejected("a 3 MB experiment name", &c, "invalid experiment name");
    assert!(c.render().contains("at most 100 bytes"), "{}", c.render());
    let c = check("name = \"a\\u001b[2Jb\"\n[data]\ndataset = \"cifar10\"\n");
    assert_rejected("an escape in the name", &c, "invalid experiment name");
    assert!(!c.render().contains('\u{1b}'), "{}", c.render());
    let c = check(&model(&format!(
        "{{ op = \"relu\", name = \"{}\" }}",
        "a".repeat(101)
    )));
    assert_rejected("a 101-byte layer name", &c, "invalid layer name");
    let ok = check(&format!(
        "name = \"{}\"\n[data]\ndataset = \"cifar10\"\n[model]\nlayers = [{{ op = \"flatten\", name = \"{}\" }}, {{ op = \"linear\", out = 10 }}]\n",
        "n".repeat(100),
        "a".repeat(100)
    ));
    assert!(ok.ok(), "{}", ok.render());
}
