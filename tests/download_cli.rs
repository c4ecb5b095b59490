//! `runner` fetches missing data-set files over HTTP from `RUNNER_DOWNLOAD_MIRROR`, here a tiny
//! server on 127.0.0.1: the real MNIST files (whose published MD5s the binary checks), small
//! generated IDX files (which do not match them, and must be refused), and a closed port.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Serves `files` by name on 127.0.0.1 (honouring `Range: bytes=N-`) until `requests` requests
/// have been answered; returns the URL prefix and the paths requested.
fn serve(files: HashMap<String, Vec<u8>>, requests: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/mirror", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(stream) = stream else { continue };
            if let Some(path) = answer(stream, &files) {
                seen2.lock().expect("lock").push(path);
            }
        }
    });
    (base, seen)
}

fn answer(stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> Option<String> {
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut from = 0usize;
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            from = v.trim().trim_end_matches('-').parse().unwrap_or(0);
        }
    }
    let mut out = stream;
    let name = path.rsplit('/').next().unwrap_or("");
    let (status, body, extra) = match files.get(name) {
        None => ("404 Not Found", &[][..], String::new()),
        Some(b) if from > 0 && from < b.len() => (
            "206 Partial Content",
            &b[from..],
            format!(
                "Content-Range: bytes {from}-{}/{}\r\n",
                b.len() - 1,
                b.len()
            ),
        ),
        Some(b) => ("200 OK", &b[..], String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    out.write_all(head.as_bytes()).ok()?;
    out.write_all(body).ok()?;
    Some(path)
}

/// `runner show-data experiments/mnist_cnn.toml` with downloads on, from `mirror`.
fn show_data(data: &Path, out: &Path, mirror: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["show-data", "experiments/mnist_cnn.toml", "--count", "4"])
        .arg("--data-dir")
        .arg(data)
        .arg("--out")
        .arg(out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUNNER_NO_DOWNLOAD")
        .env_remove("RUNNER_DATA")
        .env("RUNNER_DOWNLOAD_MIRROR", mirror)
        .output()
        .expect("runner starts")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// Small MNIST-shaped IDX files: `n` 28x28 images and their labels.
fn generated_mnist(n: u32) -> HashMap<String, Vec<u8>> {
    let images = |n: u32| {
        let mut v = [0x0803u32, n, 28, 28]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect::<Vec<u8>>();
        v.extend((0..n as usize * 784).map(|i| (i % 251) as u8));
        gz(&v)
    };
    let labels = |n: u32| {
        let mut v = [0x0801u32, n]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect::<Vec<u8>>();
        v.extend((0..n).map(|i| (i % 10) as u8));
        gz(&v)
    };
    FILES
        .iter()
        .zip([images(n), labels(n), images(n / 2), labels(n / 2)])
        .map(|(name, b)| (name.to_string(), b))
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_run_downloads_missing_mnist_files_from_the_mirror() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    if !shared.is_dir() {
        eprintln!(
            "skipping a_run_downloads_missing_mnist_files_from_the_mirror: {} not found",
            shared.display()
        );
        return;
    }
    let files: HashMap<String, Vec<u8>> = FILES
        .iter()
        .map(|n| (n.to_string(), std::fs::read(shared.join(n)).expect("read")))
        .collect();
    let (mirror, seen) = serve(files.clone(), 4);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let png = tmp.path().join("grid.png");
    let o = show_data(&data, &png, &mirror);
    assert!(o.status.success(), "{}", text(&o));
    assert!(png.is_file(), "the grid is written");
    let mut requested = seen.lock().expect("lock").clone();
    requested.sort();
    let mut want: Vec<String> = FILES.iter().map(|n| format!("/mirror/{n}")).collect();
    want.sort();
    assert_eq!(
        requested, want,
        "each file fetched once, by name under the prefix"
    );
    for name in FILES {
        let got = std::fs::read(data.join("mnist").join(name)).expect("downloaded");
        assert!(got == files[name], "{name} is byte-identical");
    }
    assert_eq!(files_in(&data.join("mnist")).len(), 4, "no .part left");
}

#[test]
fn files_that_do_not_match_the_published_checksums_are_refused() {
    let (mirror, _) = serve(generated_mnist(20), 100);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let png = tmp.path().join("grid.png");
    let o = show_data(&data, &png, &mirror);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for needle in [
        "MISSING",
        "automatic download failed",
        "train-images-idx3-ubyte.gz: MD5 ",
        // The published MD5 of MNIST's training images.
        "does not match the published f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ] {
        assert!(t.contains(needle), "lacks {needle:?}:\n{t}");
    }
    assert!(files_in(&data.join("mnist")).is_empty(), "nothing kept");
    assert!(!png.exists());
}

#[test]
fn an_unreachable_mirror_is_reported_as_offline() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let o = show_data(
        &data,
        &tmp.path().join("grid.png"),
        &format!("http://127.0.0.1:{port}/m"),
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("seems to be offline"), "{t}");
    assert!(t.contains(&format!("http://127.0.0.1:{port}/m/")), "{t}");
    assert!(t.contains(&data.join("mnist").display().to_string()), "{t}");
}
