//! Fetching missing data-set files from their official locations with `curl`.
//!
//! Files land under a temporary name, are checked against the published MD5, then renamed, so a
//! failed or interrupted download never leaves a file that looks complete. CIFAR-10 comes as one
//! tarball whose `cifar-10-batches-bin/` members are extracted.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::read::GzDecoder;
use md5::{Digest, Md5};

use super::{cifar, dataset_folder, idx};
use crate::experiment::DatasetKind;

/// Environment variable that turns automatic downloads off when set to anything but `0` or "".
pub const NO_DOWNLOAD_ENV: &str = "RUNNER_NO_DOWNLOAD";

/// MNIST mirrors, tried in order (torchvision's list: the official site often refuses).
const MNIST_URLS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
];
/// MD5 of the MNIST `.gz` files, in [`idx::FILES`] order (published on the MNIST page; also in
/// `shared/data/PROVENANCE.md`).
const MNIST_MD5: [&str; 4] = [
    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "d53e105ee54ea40749a09fcbcd1e9432",
    "9fb629c4189551a2d022fa330f9573f3",
    "ec29112dd5afa0611ce80d1b7f02629c",
];
/// Fashion-MNIST's official location.
const FASHION_URLS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];
/// MD5 of the Fashion-MNIST `.gz` files, in [`idx::FILES`] order (upstream README).
const FASHION_MD5: [&str; 4] = [
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "25c81989df183df01b3e8a0aad5dffbe",
    "bef4ecab320f06d8554ea6380940ec79",
    "bb300cfdad3c16e7a12a480ee83cd310",
];
/// The CIFAR-10 binary tarball and its published MD5.
const CIFAR_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const CIFAR_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
const CIFAR_TARBALL: &str = "cifar-10-binary.tar.gz";

/// Why missing files could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Downloads are turned off.
    #[error("downloads are disabled ({NO_DOWNLOAD_ENV} is set)")]
    Disabled,
    /// `curl` could not be started.
    #[error("cannot run `{program}` ({source}); install curl or fetch the files by hand")]
    NoCurl {
        /// The program that was run.
        program: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// `curl` failed (no network, HTTP error, timeout, ...).
    #[error("{url}: curl failed ({}): {stderr}", exit_code(*code))]
    Curl {
        /// The URL.
        url: String,
        /// curl's exit code, if it exited.
        code: Option<i32>,
        /// The last line curl wrote to stderr.
        stderr: String,
    },
    /// The downloaded file is not the published one.
    #[error("{url}: MD5 {found} does not match the published {expected}")]
    Checksum {
        /// The URL.
        url: String,
        /// The published MD5.
        expected: String,
        /// The MD5 of what arrived.
        found: String,
    },
    /// A file could not be written, read or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The downloaded archive does not hold what it should.
    #[error("{}: {reason}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Every download succeeded but some files are still missing.
    #[error("the download finished but did not provide every file")]
    Incomplete,
}

fn exit_code(code: Option<i32>) -> String {
    code.map_or_else(|| "killed by a signal".into(), |c| format!("exit code {c}"))
}

/// Whether and how missing files are downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloader {
    enabled: bool,
    curl: OsString,
}

impl Downloader {
    /// Downloads with `curl` from `PATH`, unless [`NO_DOWNLOAD_ENV`] is set (and not `0`).
    pub fn from_env() -> Self {
        let off = std::env::var_os(NO_DOWNLOAD_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        if off {
            Self::disabled()
        } else {
            Self::with_curl("curl")
        }
    }

    /// Never downloads; missing files are an error straight away.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            curl: OsString::new(),
        }
    }

    /// Downloads with the given `curl` program.
    pub fn with_curl(program: impl Into<OsString>) -> Self {
        Self {
            enabled: true,
            curl: program.into(),
        }
    }

    /// Downloads whatever files of `kind` are missing under `data_dir`.
    pub fn fetch(&self, kind: &DatasetKind, data_dir: &Path) -> Result<(), DownloadError> {
        if !self.enabled {
            return Err(DownloadError::Disabled);
        }
        let Some(folder) = dataset_folder(kind) else {
            return Ok(());
        };
        self.check_curl()?;
        let dir = data_dir.join(folder);
        create_dir(&dir)?;
        let (urls, md5s): (&[&str], _) = match kind {
            DatasetKind::Mnist => (&MNIST_URLS, MNIST_MD5),
            DatasetKind::FashionMnist => (&FASHION_URLS, FASHION_MD5),
            DatasetKind::Cifar10 => return self.fetch_cifar(data_dir, &dir),
            DatasetKind::Synthetic(_) | DatasetKind::ImageFolder(_) | DatasetKind::Csv(_) => {
                return Ok(())
            }
        };
        for (name, md5) in idx::FILES.iter().zip(md5s) {
            if idx::locate(&dir, name).is_none() {
                let urls: Vec<String> = urls.iter().map(|base| format!("{base}{name}")).collect();
                self.download_verified(&urls, md5, &dir.join(name))?;
            }
        }
        Ok(())
    }

    fn fetch_cifar(&self, data_dir: &Path, dir: &Path) -> Result<(), DownloadError> {
        let tarball = data_dir.join(CIFAR_TARBALL);
        let have_tarball = tarball.is_file()
            && md5_file(&tarball).map_err(|source| DownloadError::Io {
                path: tarball.clone(),
                source,
            })? == CIFAR_MD5;
        if !have_tarball {
            self.download_verified(&[CIFAR_URL.to_string()], CIFAR_MD5, &tarball)?;
        }
        extract_cifar(&tarball, dir)?;
        // The tarball is only a vehicle; keeping it would double the disk use.
        let _ = std::fs::remove_file(&tarball);
        Ok(())
    }

    fn check_curl(&self) -> Result<(), DownloadError> {
        let no_curl = |source| DownloadError::NoCurl {
            program: self.curl.to_string_lossy().into_owned(),
            source,
        };
        let status = Command::new(&self.curl)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(no_curl)?;
        if status.success() {
            Ok(())
        } else {
            Err(no_curl(std::io::Error::other(format!(
                "`--version` failed with {}",
                exit_code(status.code())
            ))))
        }
    }

    /// Tries `urls` in order until one yields a file with the right MD5, then moves it to `dest`.
    fn download_verified(
        &self,
        urls: &[String],
        md5: &str,
        dest: &Path,
    ) -> Result<(), DownloadError> {
        let part = part_path(dest);
        let mut last = DownloadError::Incomplete;
        for url in urls {
            tracing::info!("downloading {url}");
            let result = self
                .run_curl(url, &part)
                .and_then(|()| verify_md5(&part, md5, url));
            match result {
                Ok(()) => {
                    return std::fs::rename(&part, dest).map_err(|source| DownloadError::Io {
                        path: dest.to_path_buf(),
                        source,
                    })
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    let _ = std::fs::remove_file(&part);
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn run_curl(&self, url: &str, out: &Path) -> Result<(), DownloadError> {
        let output = Command::new(&self.curl)
            .args(["--fail", "--silent", "--show-error", "--location"])
            .args([
                "--connect-timeout",
                "10",
                "--speed-limit",
                "1024",
                "--speed-time",
                "60",
            ])
            .arg("--output")
            .arg(out)
            .arg(url)
            .output()
            .map_err(|source| DownloadError::NoCurl {
                program: self.curl.to_string_lossy().into_owned(),
                source,
            })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(DownloadError::Curl {
            url: url.to_string(),
            code: output.status.code(),
            stderr: stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string(),
        })
    }
}

fn create_dir(dir: &Path) -> Result<(), DownloadError> {
    std::fs::create_dir_all(dir).map_err(|source| DownloadError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// `dest` with `.part<pid>` appended to its name, so concurrent runs do not clash.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(OsString::from).unwrap_or_default();
    name.push(format!(".part{}", std::process::id()));
    dest.with_file_name(name)
}

/// Lower-case hex MD5 of a file's contents.
pub fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks that `path` has MD5 `expected`; `url` names the source in the error.
pub fn verify_md5(path: &Path, expected: &str, url: &str) -> Result<(), DownloadError> {
    let found = md5_file(path).map_err(|source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if found.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DownloadError::Checksum {
            url: url.to_string(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// Extracts the `cifar-10-batches-bin/` members of the CIFAR-10 binary tarball into `dir`,
/// skipping files already there. Member paths are never used as written: only known file names
/// are accepted, so the archive cannot write outside `dir`.
pub fn extract_cifar(tarball: &Path, dir: &Path) -> Result<(), DownloadError> {
    let archive_err = |reason: String| DownloadError::Archive {
        path: tarball.to_path_buf(),
        reason,
    };
    let file = File::open(tarball).map_err(|source| DownloadError::Io {
        path: tarball.to_path_buf(),
        source,
    })?;
    create_dir(dir)?;
    let wanted: Vec<&str> = cifar::TRAIN_FILES
        .iter()
        .chain([&cifar::TEST_FILE, &cifar::META_FILE])
        .copied()
        .collect();
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let entries = archive.entries().map_err(|e| archive_err(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_err(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| archive_err(e.to_string()))?
            .into_owned();
        let in_folder = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "cifar-10-batches-bin");
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !in_folder || !wanted.contains(&name) || !entry.header().entry_type().is_file() {
            continue;
        }
        let dest = dir.join(name);
        if dest.exists() {
            continue;
        }
        let part = part_path(&dest);
        let io = |source| DownloadError::Io {
            path: part.clone(),
            source,
        };
        let mut out = File::create(&part).map_err(io)?;
        std::io::copy(&mut entry, &mut out).map_err(io)?;
        drop(out);
        std::fs::rename(&part, &dest).map_err(|source| DownloadError::Io {
            path: dest.clone(),
            source,
        })?;
    }
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|n| **n != cifar::META_FILE && !dir.join(n).is_file())
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(archive_err(format!(
            "lacks cifar-10-batches-bin/{}",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{load_with, DataError};

    #[test]
    fn md5_of_known_contents() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("f");
        // RFC 1321, appendix A.5 test suite.
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ];
        for (text, md5) in cases {
            std::fs::write(&path, text).expect("write");
            assert_eq!(md5_file(&path).expect("md5"), md5, "{text:?}");
            verify_md5(&path, &md5.to_uppercase(), "u").expect("case-insensitive match");
        }
        let err = verify_md5(&path, "00000000000000000000000000000000", "http://x/f")
            .expect_err("mismatch");
        assert!(
            matches!(&err, DownloadError::Checksum { url, found, .. }
                if url == "http://x/f" && found == "f96b697d7cb7938d525a2f31aaf161d0"),
            "{err:?}"
        );
        let err = verify_md5(&tmp.path().join("absent"), "x", "u").expect_err("absent");
        assert!(matches!(err, DownloadError::Io { .. }), "{err:?}");
    }

    #[test]
    fn published_checksums_match_the_shared_copies() {
        let Some(data) =
            crate::data::tests::real_data_dir("published_checksums_match_the_shared_copies")
        else {
            return;
        };
        for (folder, md5s) in [("mnist", MNIST_MD5), ("fashion-mnist", FASHION_MD5)] {
            for (name, md5) in idx::FILES.iter().zip(md5s) {
                let path = data.join(folder).join(name);
                verify_md5(&path, md5, name).expect("PROVENANCE.md: byte-identical to the release");
            }
        }
    }

    #[test]
    fn without_download_missing_files_are_one_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // (downloader, expected download reason, message): none of these reach the network.
        let cases = [
            (Downloader::disabled(), "disabled", "downloads disabled"),
            (
                Downloader::with_curl(tmp.path().join("no-such-curl")),
                "cannot run",
                "no curl",
            ),
        ];
        for kind in [
            DatasetKind::Mnist,
            DatasetKind::FashionMnist,
            DatasetKind::Cifar10,
        ] {
            for (downloader, reason, msg) in &cases {
                let err = load_with(&kind, tmp.path(), 0, downloader).expect_err(msg);
                let DataError::MissingFiles {
                    files, download, ..
                } = &err
                else {
                    panic!("{msg}: expected MissingFiles, got {err:?}");
                };
                assert!(files.iter().all(|f| !f.present), "{msg}");
                assert!(download.is_some(), "{msg}");
                let text = err.to_string();
                assert!(text.contains(reason), "{msg}: {text}");
                assert!(text.contains("automatic download failed"), "{msg}: {text}");
            }
        }
    }

    #[test]
    fn failing_curl_is_reported_with_its_stderr() {
        // A stand-in for curl that answers --version and fails every download, offline.
        let tmp = tempfile::tempdir().expect("tempdir");
        let fake = tmp.path().join("fake-curl");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho 'curl: (6) Could not resolve host' >&2\nexit 6\n",
        )
        .expect("write script");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let data = tmp.path().join("data");
        let err = load_with(&DatasetKind::Mnist, &data, 0, &Downloader::with_curl(&fake))
            .expect_err("offline");
        let text = err.to_string();
        assert!(text.contains("Could not resolve host"), "{text}");
        assert!(text.contains("exit code 6"), "{text}");
        let leftovers: Vec<_> = std::fs::read_dir(data.join("mnist"))
            .expect("dir made")
            .collect();
        assert!(leftovers.is_empty(), "no partial files left: {leftovers:?}");
    }

    #[test]
    fn extracts_cifar_members_from_a_tarball() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tarball = tmp.path().join(CIFAR_TARBALL);
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            File::create(&tarball).expect("create"),
            flate2::Compression::fast(),
        ));
        let mut add = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, bytes)
                .expect("append");
        };
        for (k, name) in cifar::TRAIN_FILES
            .iter()
            .chain([&cifar::TEST_FILE])
            .enumerate()
        {
            add(
                &format!("cifar-10-batches-bin/{name}"),
                &cifar::tests::records(2, 2 * k),
            );
        }
        add(
            "cifar-10-batches-bin/batches.meta.txt",
            b"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n",
        );
        add("cifar-10-batches-bin/readme.html", b"ignored");
        add("other/data_batch_1.bin", b"ignored: wrong folder");
        builder
            .into_inner()
            .expect("finish tar")
            .finish()
            .expect("finish gzip");

        let dir = tmp.path().join("cifar-10-batches-bin");
        extract_cifar(&tarball, &dir).expect("extracts");
        assert!(!dir.join("readme.html").exists(), "only known members");
        let s = load_with(
            &DatasetKind::Cifar10,
            tmp.path(),
            0,
            &Downloader::disabled(),
        )
        .expect("loads");
        assert_eq!(
            (s.train.len(), s.test.len(), s.train.classes[0].as_str()),
            (10, 2, "a")
        );

        let empty = tmp.path().join("empty.tar.gz");
        let b = tar::Builder::new(flate2::write::GzEncoder::new(
            File::create(&empty).expect("create"),
            flate2::Compression::fast(),
        ));
        b.into_inner()
            .expect("finish tar")
            .finish()
            .expect("finish gzip");
        let err = extract_cifar(&empty, &tmp.path().join("out")).expect_err("nothing inside");
        assert!(matches!(err, DownloadError::Archive { .. }), "{err:?}");
    }
}
