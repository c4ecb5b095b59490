//! Fuzzing of every reader of outside bytes, for a bounded time on every CI run: the experiment
//! reader (TOML, `--set`, the whole check with its rendered diagnostics), the IDX and CIFAR
//! readers, and the CSV reader and comparison of `runner diff`.
//!
//! A structure-aware mutational fuzzer (cargo-fuzz needs a nightly compiler, which CI does not
//! have): each target starts from valid inputs, applies random byte and token mutations, and
//! fails on a panic, printing the seed and the input so that the case can become a regression
//! test (below, under "Found by fuzzing"). The inputs are a function of the iteration's seed,
//! so a failure reproduces with `RUNNER_FUZZ_SEED=<seed>`.
//!
//! Time per target: `RUNNER_FUZZ_SECONDS` (default 15, so about 60 s for the four).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use runner::report::diff::{compare, markdown, Table, Tolerance};

fn budget() -> Duration {
    let secs = std::env::var("RUNNER_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(15.0);
    Duration::from_secs_f64(secs)
}

/// Tokens the mutator splices in: the format's punctuation, keys and awkward numbers.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    "\"",
    "'",
    "\n",
    "[[",
    "]]",
    ".",
    "#",
    "op",
    "layers",
    "conv2d",
    "linear",
    "max_pool2d",
    "add",
    "concat",
    "flatten",
    "batch_norm2d",
    "dropout",
    "residual",
    "block",
    "$",
    "cfg",
    "\"M\"",
    "out",
    "in",
    "kernel",
    "stride",
    "padding",
    "inputs",
    "name",
    "seed",
    "epochs",
    "sweep",
    "zip",
    "label",
    "data",
    "model",
    "train",
    "0",
    "1",
    "-1",
    "3",
    "64",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "0.0",
    "1.5",
    "18446744073709551615",
    "9223372036854775808",
    "4294967296",
    "true",
    "false",
    "\u{0}",
    "\u{FFFD}",
    "é",
    "\\",
    "\\u0000",
    "experiment,run_id",
    "test_acc",
    "flags",
    "ok",
];

/// One random mutation of `input`.
fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>) {
    let len = input.len();
    match rng.random_range(0..7) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            let n = rng.random_range(1..=len.clamp(1, 16)).min(len - i);
            input.drain(i..i + n);
        }
        2 => {
            let i = rng.random_range(0..=len);
            let t = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
            input.splice(i..i, t.iter().copied());
        }
        3 if len > 0 => {
            // Duplicate a chunk somewhere else.
            let a = rng.random_range(0..len);
            let b = (a + rng.random_range(1..=64)).min(len);
            let chunk = input[a..b].to_vec();
            let at = rng.random_range(0..=len);
            input.splice(at..at, chunk);
        }
        4 if len > 0 => input.truncate(rng.random_range(0..len)),
        5 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = rng.random();
        }
        _ => {
            let i = rng.random_range(0..=len);
            let n = rng.random_range(1..8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            input.splice(i..i, bytes);
        }
    }
}

/// Runs `target` on mutants of `seeds` for the time budget (or once, on the input of
/// `RUNNER_FUZZ_SEED`); panics with the seed and input of the first panicking case. Returns
/// the number of cases run.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> u64 {
    let only: Option<u64> = std::env::var("RUNNER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let start = Instant::now();
    let mut cases = 0u64;
    for iteration in 0u64.. {
        if only.is_some_and(|s| s != iteration) {
            if only.is_some_and(|s| iteration > s) {
                break;
            }
            continue;
        }
        if only.is_none() && start.elapsed() >= budget() {
            break;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(iteration);
        let mut input = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..=8) {
            mutate(&mut rng, &mut input);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        if outcome.is_err() {
            panic!(
                "fuzz target `{name}` panicked on case {iteration} (RUNNER_FUZZ_SEED={iteration}); \
                 input ({} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&input)
            );
        }
        cases += 1;
    }
    eprintln!(
        "fuzz {name}: {cases} cases in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    cases
}

fn experiment_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("experiments/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("experiment"))
        .collect();
    assert!(seeds.len() >= 5, "the seed experiments are the corpus");
    seeds
}

#[test]
fn fuzz_the_experiment_reader_and_check() {
    let seeds = experiment_seeds();
    let cases = fuzz("experiment", &seeds, |bytes| {
        // The last line, when it looks like one, doubles as a `--set` override.
        let sets: Vec<String> = std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| t.lines().last())
            .filter(|l| l.contains('=') && l.len() < 200)
            .map(|l| vec![l.trim().to_string()])
            .unwrap_or_default();
        for checked in runner::check::check_bytes_with("fuzz.toml", bytes, "fuzz", &sets) {
            let _ = checked.render();
        }
    });
    assert!(cases > 0);
}

/// A valid IDX image file (3 images of 2x3) and label file.
fn idx_seeds() -> Vec<Vec<u8>> {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3];
    images.extend((0..18).map(|i| (i * 13) as u8));
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 3];
    labels.extend([0, 1, 2]);
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).expect("gzip");
        e.finish().expect("gzip")
    };
    vec![gz(&images), gz(&labels), images, labels]
}

#[test]
fn fuzz_the_idx_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.idx");
    let cases = fuzz("idx", &idx_seeds(), |bytes| {
        std::fs::write(&path, bytes).expect("write");
        let _ = runner::data::idx::read_images(&path, [2, 3]);
        let _ = runner::data::idx::read_labels(&path, 10);
    });
    assert!(cases > 0);
}

#[test]
fn fuzz_the_cifar_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data_batch_1.bin");
    let record: Vec<u8> = std::iter::once(3u8)
        .chain((0..3072).map(|i| (i % 251) as u8))
        .collect();
    let seeds = vec![record.clone(), [record.clone(), record].concat()];
    let cases = fuzz("cifar", &seeds, |bytes| {
        std::fs::write(&path, bytes).expect("write");
        let mut into = runner::data::Dataset {
            images: Vec::new(),
            labels: Vec::new(),
            shape: [3, 32, 32],
            classes: Vec::new(),
        };
        let _ = runner::data::cifar::read_batch_into(&path, &mut into);
    });
    assert!(cases > 0);
}

#[test]
fn fuzz_the_diff_tables() {
    let summary = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baselines/ci/mnist_cnn.summary.csv"),
    )
    .expect("the CI baseline");
    let batch = b"index,experiment,variant,overrides,status,seed,params,epochs,train_images,test_acc,best_test_acc,best_epoch,final_test_loss,seconds,train_images_per_sec,run_dir,flags\n\
0,a,lr=0.1,train.optimizer.lr=0.1,ok,0,111,1,96,50.0,51.0,1,1.0,2.0,100.0,a/lr=0.1/1,\n\
1,a,lr=0.2,train.optimizer.lr=0.2,ok,0,111,1,96,40.0,41.0,1,1.1,2.1,90.0,a/lr=0.2/1,\n"
        .to_vec();
    let tolerances: Vec<Tolerance> = ["test_acc=0.5", "seconds=+50%"]
        .iter()
        .map(|t| t.parse().expect("tolerance"))
        .collect();
    let seeds = vec![summary.clone(), batch.clone()];
    let cases = fuzz("diff", &seeds, |bytes| {
        let Ok(new) = Table::parse(bytes) else {
            return;
        };
        for base in [&summary, &batch] {
            let base = Table::parse(base).expect("a valid seed table");
            if let Ok(d) = compare(&base, &new, &tolerances) {
                let _ = markdown(&d);
            }
            if let Ok(d) = compare(&new, &base, &tolerances) {
                let _ = markdown(&d);
            }
        }
    });
    assert!(cases > 0);
}
