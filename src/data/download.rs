//! Fetching missing data-set files over HTTP(S), in Rust (ureq with rustls; no `curl`).
//!
//! Each file is described once ([`RemoteFile`]: name, mirrors, published checksum, size). A
//! download goes to `<file>.part`, which the process holds an exclusive lock on, so two runs
//! never write the same file: the second waits and then finds the file in place. A partial
//! `.part` left by an interrupted run or a dropped connection is resumed with an HTTP `Range`
//! request (a server that ignores it and answers `200` is read from the start). Transient
//! failures are retried with exponential backoff, then the next mirror is tried. The checksum is
//! verified before the `.part` is renamed into place, so a file that looks complete is complete.
//! CIFAR-10 comes as one tarball whose `cifar-10-batches-bin/` members are extracted.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::{cifar, dataset_folder, idx};
use crate::experiment::DatasetKind;

/// Environment variable that turns automatic downloads off when set to anything but `0` or "".
pub const NO_DOWNLOAD_ENV: &str = "RUNNER_NO_DOWNLOAD";

/// Environment variable with a URL prefix (`http://host/prefix`) that replaces every data set's
/// mirrors: file `NAME` is fetched from `<prefix>/NAME`. For machines behind a firewall with a
/// local copy, and for the tests.
pub const MIRROR_ENV: &str = "RUNNER_DOWNLOAD_MIRROR";

/// The most bytes accepted for a file whose size is not known in advance. The largest data-set
/// file runner downloads (STL-10's tarball) is about 2.6 GB.
const MAX_UNKNOWN_SIZE: u64 = 4 << 30;

/// A published checksum of a file, as lower- or upper-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// MD5, as most data sets publish.
    Md5(Cow<'static, str>),
    /// SHA-256.
    Sha256(Cow<'static, str>),
}

impl Checksum {
    /// The algorithm's name, for messages.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Md5(_) => "MD5",
            Checksum::Sha256(_) => "SHA-256",
        }
    }

    /// The expected hex digest.
    pub fn expected(&self) -> &str {
        match self {
            Checksum::Md5(h) | Checksum::Sha256(h) => h,
        }
    }

    /// The lower-case hex digest of the file at `path` with this checksum's algorithm.
    pub fn of_file(&self, path: &Path) -> io::Result<String> {
        match self {
            Checksum::Md5(_) => hex_digest::<Md5>(path),
            Checksum::Sha256(_) => hex_digest::<Sha256>(path),
        }
    }

    /// Checks that the file at `path` has this checksum; `url` names the source in the error.
    pub fn verify(&self, path: &Path, url: &str) -> Result<(), DownloadError> {
        let found = self.of_file(path).map_err(|source| DownloadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if found.eq_ignore_ascii_case(self.expected()) {
            Ok(())
        } else {
            Err(DownloadError::Checksum {
                url: url.to_string(),
                algorithm: self.algorithm(),
                expected: self.expected().to_ascii_lowercase(),
                found,
            })
        }
    }
}

/// One file of a data set as it is published: where to get it and how to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    name: &'static str,
    mirrors: &'static [&'static str],
    checksum: Checksum,
    size: Option<u64>,
}

impl RemoteFile {
    /// A file called `name` under each of `mirrors` (URL prefixes ending in `/`), with its
    /// published `checksum` and, when known, its `size` in bytes.
    pub const fn new(
        name: &'static str,
        mirrors: &'static [&'static str],
        checksum: Checksum,
        size: Option<u64>,
    ) -> Self {
        Self {
            name,
            mirrors,
            checksum,
            size,
        }
    }

    /// The same file with another expected checksum: only tests, which serve files of their own,
    /// may change what a published file must hash to.
    #[cfg(test)]
    pub(crate) fn with_checksum(mut self, checksum: Checksum, size: Option<u64>) -> Self {
        self.checksum = checksum;
        self.size = size;
        self
    }

    /// The file name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The published checksum.
    pub fn checksum(&self) -> &Checksum {
        &self.checksum
    }

    /// The URLs to try, in order: `<mirror>/<name>` for [`MIRROR_ENV`]'s prefix when given,
    /// else for each official mirror.
    pub fn urls(&self, mirror: Option<&str>) -> Vec<String> {
        match mirror {
            Some(prefix) => vec![format!("{}/{}", prefix.trim_end_matches('/'), self.name)],
            None => self
                .mirrors
                .iter()
                .map(|m| format!("{m}{}", self.name))
                .collect(),
        }
    }
}

/// MNIST mirrors, tried in order (torchvision's list: the official site often refuses).
const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
];
/// The MNIST `.gz` files in [`idx::FILES`] order, with the MD5s published on the MNIST page
/// (also in `shared/data/PROVENANCE.md`, with the sizes).
pub const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile::new(
        idx::TRAIN_IMAGES,
        MNIST_MIRRORS,
        Checksum::Md5(Cow::Borrowed("f68b3c2dcbeaaa9fbdd348bbdeb94873")),
        Some(9_912_422),
    ),
    RemoteFile::new(
        idx::TRAIN_LABELS,
        MNIST_MIRRORS,
        Checksum::Md5(Cow::Borrowed("d53e105ee54ea40749a09fcbcd1e9432")),
        Some(28_881),
    ),
    RemoteFile::new(
        idx::TEST_IMAGES,
        MNIST_MIRRORS,
        Checksum::Md5(Cow::Borrowed("9fb629c4189551a2d022fa330f9573f3")),
        Some(1_648_877),
    ),
    RemoteFile::new(
        idx::TEST_LABELS,
        MNIST_MIRRORS,
        Checksum::Md5(Cow::Borrowed("ec29112dd5afa0611ce80d1b7f02629c")),
        Some(4_542),
    ),
];

/// Fashion-MNIST's official location.
const FASHION_MIRRORS: &[&str] = &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];
/// The Fashion-MNIST `.gz` files in [`idx::FILES`] order, with the MD5s of the upstream README
/// (sizes from `shared/data/PROVENANCE.md`).
pub const FASHION_MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile::new(
        idx::TRAIN_IMAGES,
        FASHION_MIRRORS,
        Checksum::Md5(Cow::Borrowed("8d4fb7e6c68d591d4c3dfef9ec88bf0d")),
        Some(26_421_880),
    ),
    RemoteFile::new(
        idx::TRAIN_LABELS,
        FASHION_MIRRORS,
        Checksum::Md5(Cow::Borrowed("25c81989df183df01b3e8a0aad5dffbe")),
        Some(29_515),
    ),
    RemoteFile::new(
        idx::TEST_IMAGES,
        FASHION_MIRRORS,
        Checksum::Md5(Cow::Borrowed("bef4ecab320f06d8554ea6380940ec79")),
        Some(4_422_102),
    ),
    RemoteFile::new(
        idx::TEST_LABELS,
        FASHION_MIRRORS,
        Checksum::Md5(Cow::Borrowed("bb300cfdad3c16e7a12a480ee83cd310")),
        Some(5_148),
    ),
];

/// The CIFAR-10 binary tarball and its published MD5.
pub const CIFAR10_TARBALL: RemoteFile = RemoteFile::new(
    "cifar-10-binary.tar.gz",
    &["https://www.cs.toronto.edu/~kriz/"],
    Checksum::Md5(Cow::Borrowed("c32a1d4ab5d03f1284b67883e8d87530")),
    None,
);

/// The CIFAR-100 binary tarball and its published MD5 (the CIFAR page; torchvision's and burn's
/// dataset code give the same).
pub const CIFAR100_TARBALL: RemoteFile = RemoteFile::new(
    "cifar-100-binary.tar.gz",
    &["https://www.cs.toronto.edu/~kriz/"],
    Checksum::Md5(Cow::Borrowed("03b5dce01913d631647c71ecec9e9cb8")),
    None,
);

/// The STL-10 binary tarball and its published MD5 (torchvision's `STL10.tgz_md5` agrees).
pub const STL10_TARBALL: RemoteFile = RemoteFile::new(
    "stl10_binary.tar.gz",
    &["http://ai.stanford.edu/~acoates/stl10/"],
    Checksum::Md5(Cow::Borrowed("91f7769df0f17e558f3565bffb0c7dfb")),
    None,
);

/// SVHN's official location.
const SVHN_MIRRORS: &[&str] = &["http://ufldl.stanford.edu/housenumbers/"];
/// SVHN's cropped-digit files (train, test, extra), with torchvision's MD5s
/// (`SVHN.split_list`) and the sizes the release serves; extra only for `extra = true`.
pub const SVHN_FILES: [RemoteFile; 3] = [
    RemoteFile::new(
        super::svhn::TRAIN_FILE,
        SVHN_MIRRORS,
        Checksum::Md5(Cow::Borrowed("e26dedcc434d2e4c54c9b2d4a06d8373")),
        Some(182_040_794),
    ),
    RemoteFile::new(
        super::svhn::TEST_FILE,
        SVHN_MIRRORS,
        Checksum::Md5(Cow::Borrowed("eb5a983be6a315427106f1b164d9cef3")),
        Some(64_275_384),
    ),
    RemoteFile::new(
        super::svhn::EXTRA_FILE,
        SVHN_MIRRORS,
        Checksum::Md5(Cow::Borrowed("a93ce644f1a588dc4d68dda5feec44a7")),
        Some(1_329_278_602),
    ),
];

/// Why missing files could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Downloads are turned off.
    #[error("downloads are disabled ({NO_DOWNLOAD_ENV} is set)")]
    Disabled,
    /// No mirror could be reached: no network, no DNS, or a firewall.
    #[error(
        "cannot reach {url} ({reason}): this machine seems to be offline. Download the files by \
         hand into {}, or point {MIRROR_ENV} at a reachable copy (http://host/prefix)",
        dir.display()
    )]
    Offline {
        /// The last URL tried.
        url: String,
        /// What the network said.
        reason: String,
        /// Where the files belong.
        dir: PathBuf,
    },
    /// The server answered with an HTTP error status.
    #[error("{url}: the server answered HTTP {status}")]
    Http {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The transfer failed after every retry (timeout, connection reset, protocol error).
    #[error("{url}: download failed: {reason}")]
    Transfer {
        /// The URL.
        url: String,
        /// What went wrong last.
        reason: String,
    },
    /// The server sent more bytes than the file has.
    #[error("{url}: the server sent more than the {limit} bytes expected")]
    TooLarge {
        /// The URL.
        url: String,
        /// Bytes expected at most.
        limit: u64,
    },
    /// The downloaded file is not the published one; the partial file was deleted.
    #[error("{url}: {algorithm} {found} does not match the published {expected} (the download was deleted)")]
    Checksum {
        /// The URL.
        url: String,
        /// `MD5` or `SHA-256`.
        algorithm: &'static str,
        /// The published digest.
        expected: String,
        /// The digest of what arrived.
        found: String,
    },
    /// A file could not be written, read, locked or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
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

/// Whether and how missing files are downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloader {
    enabled: bool,
    /// [`MIRROR_ENV`]'s prefix, replacing the official mirrors.
    mirror: Option<String>,
    /// Attempts per URL for transient failures.
    attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    backoff: Duration,
    /// Whether to draw a progress bar (stderr is a terminal).
    progress: bool,
}

impl Downloader {
    /// Downloads from the official mirrors (or [`MIRROR_ENV`]'s), unless [`NO_DOWNLOAD_ENV`] is
    /// set (and not `0`); a progress bar when stderr is a terminal.
    pub fn from_env() -> Self {
        let off = std::env::var_os(NO_DOWNLOAD_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        if off {
            return Self::disabled();
        }
        let mirror = std::env::var(MIRROR_ENV).ok().filter(|m| !m.is_empty());
        Self {
            mirror,
            progress: io::stderr().is_terminal(),
            ..Self::official()
        }
    }

    /// Never downloads; missing files are an error straight away.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::official()
        }
    }

    /// Downloads from the official mirrors, without a progress bar.
    pub fn official() -> Self {
        Self {
            enabled: true,
            mirror: None,
            attempts: 4,
            backoff: Duration::from_secs(1),
            progress: false,
        }
    }

    /// Downloads every file from `<prefix>/<name>` instead of the official mirrors.
    pub fn with_mirror(prefix: impl Into<String>) -> Self {
        Self {
            mirror: Some(prefix.into()),
            ..Self::official()
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
        let dir = data_dir.join(folder);
        create_dir(&dir)?;
        let files: &[RemoteFile] = match kind {
            DatasetKind::Mnist => &MNIST_FILES,
            DatasetKind::FashionMnist => &FASHION_MNIST_FILES,
            DatasetKind::Cifar10 => {
                let tarball = data_dir.join(CIFAR10_TARBALL.name());
                self.download(&CIFAR10_TARBALL, &tarball)?;
                extract_cifar(&tarball, &dir)?;
                // The tarball is only a vehicle; keeping it would double the disk use.
                let _ = std::fs::remove_file(&tarball);
                return Ok(());
            }
            DatasetKind::Stl10 => {
                use super::stl10;
                let tarball = data_dir.join(STL10_TARBALL.name());
                self.download(&STL10_TARBALL, &tarball)?;
                extract_members(
                    &tarball,
                    stl10::FOLDER,
                    &stl10::FILES,
                    &[stl10::NAMES_FILE],
                    &dir,
                )?;
                let _ = std::fs::remove_file(&tarball);
                return Ok(());
            }
            DatasetKind::Svhn { extra: false } => &SVHN_FILES[..2],
            DatasetKind::Svhn { extra: true } => &SVHN_FILES,
            DatasetKind::Cifar100(_) => {
                let tarball = data_dir.join(CIFAR100_TARBALL.name());
                self.download(&CIFAR100_TARBALL, &tarball)?;
                extract_cifar100(&tarball, &dir)?;
                let _ = std::fs::remove_file(&tarball);
                return Ok(());
            }
            DatasetKind::Synthetic(_) | DatasetKind::ImageFolder(_) | DatasetKind::Csv(_) => {
                return Ok(())
            }
        };
        for file in files {
            if idx::locate(&dir, file.name()).is_none() {
                self.download(file, &dir.join(file.name()))?;
            }
        }
        Ok(())
    }

    /// Makes `dest` a verified copy of `file`, unless it already is one: downloads into
    /// `dest.part` under an exclusive lock, resuming what an earlier attempt left there, tries
    /// each URL with retries, checks the checksum and renames the `.part` into place.
    pub fn download(&self, file: &RemoteFile, dest: &Path) -> Result<(), DownloadError> {
        if !self.enabled {
            return Err(DownloadError::Disabled);
        }
        if dest.is_file() && file.checksum.verify(dest, "").is_ok() {
            return Ok(());
        }
        let part_path = with_suffix(dest, ".part");
        let Some(mut part) = lock_part(&part_path, dest)? else {
            // Another run finished the same file while this one waited for the lock.
            if file.checksum.verify(dest, "").is_ok() {
                return Ok(());
            }
            return self.download(file, dest);
        };
        let agent = agent();
        let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut last = DownloadError::Incomplete;
        for url in file.urls(self.mirror.as_deref()) {
            match self.fetch_url(&agent, &url, file, &mut part, &part_path) {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!("{e}");
                    last = match e {
                        DownloadError::Transfer { url, reason } if reason.starts_with(OFFLINE) => {
                            DownloadError::Offline {
                                url,
                                reason: reason[OFFLINE.len()..].to_string(),
                                dir: dir.clone(),
                            }
                        }
                        e => e,
                    };
                    continue;
                }
            }
            match file.checksum.verify(&part_path, &url) {
                Ok(()) => {
                    part.sync_all().map_err(|source| DownloadError::Io {
                        path: part_path.clone(),
                        source,
                    })?;
                    // Renaming the locked file is what publishes it; the lock goes with `part`.
                    return std::fs::rename(&part_path, dest).map_err(|source| DownloadError::Io {
                        path: dest.to_path_buf(),
                        source,
                    });
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    // A wrong file is not resumed: the next mirror starts from nothing.
                    let _ = part.set_len(0);
                    last = e;
                }
            }
        }
        drop(part);
        let _ = std::fs::remove_file(&part_path);
        Err(last)
    }

    /// Brings `part` to the full file from `url`, retrying transient failures with backoff.
    fn fetch_url(
        &self,
        agent: &ureq::Agent,
        url: &str,
        file: &RemoteFile,
        part: &mut File,
        part_path: &Path,
    ) -> Result<(), DownloadError> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.transfer(agent, url, file, part, part_path) {
                Ok(()) => return Ok(()),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt >= self.attempts.max(1) => return Err(e),
                Err(Failure::Transient(e)) => {
                    tracing::warn!("{e}; retrying in {:.1} s", wait.as_secs_f64());
                    std::thread::sleep(wait);
                    wait = wait.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    /// One request: appends to `part` what it lacks (`Range` from its length), or rewrites it
    /// from the start when the server sends the whole file.
    fn transfer(
        &self,
        agent: &ureq::Agent,
        url: &str,
        file: &RemoteFile,
        part: &mut File,
        part_path: &Path,
    ) -> Result<(), Failure> {
        let io_err = |source| {
            Failure::Final(DownloadError::Io {
                path: part_path.to_path_buf(),
                source,
            })
        };
        let have = part.metadata().map_err(io_err)?.len();
        if have > 0 && file.size == Some(have) {
            // Complete from an earlier attempt: only the checksum is left to check.
            return Ok(());
        }
        let limit = file.size.unwrap_or(MAX_UNKNOWN_SIZE);
        if have > limit {
            part.set_len(0).map_err(io_err)?;
            return self.transfer(agent, url, file, part, part_path);
        }
        tracing::info!("downloading {url}");
        let mut request = agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let mut response = request.call().map_err(|e| classify(url, e))?;
        let status = response.status().as_u16();
        let start = match status {
            200 => 0,
            206 if content_range_start(response.headers()) == Some(have) => have,
            // A range the server cannot satisfy, or one it answered for another offset: the
            // `.part` is not a prefix of what it serves; start again from nothing.
            206 | 416 if have > 0 => {
                part.set_len(0).map_err(io_err)?;
                return Err(Failure::Transient(DownloadError::Transfer {
                    url: url.to_string(),
                    reason: format!("the server could not resume at byte {have} (HTTP {status})"),
                }));
            }
            408 | 425 | 429 | 500..=599 => {
                return Err(Failure::Transient(DownloadError::Http {
                    url: url.to_string(),
                    status,
                }))
            }
            _ => {
                return Err(Failure::Final(DownloadError::Http {
                    url: url.to_string(),
                    status,
                }))
            }
        };
        if have > 0 && start == 0 {
            tracing::info!(
                "{url}: the server ignored the range request; downloading from the start"
            );
        }
        part.set_len(start).map_err(io_err)?;
        part.seek(SeekFrom::Start(start)).map_err(io_err)?;
        let total = response.body().content_length().map(|n| n + start);
        let bar = self.bar(file.name(), total.or(file.size), start);
        let mut reader = response.body_mut().as_reader();
        let mut written = start;
        let mut buf = vec![0u8; 1 << 16];
        let result = loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    break Err(Failure::Transient(DownloadError::Transfer {
                        url: url.to_string(),
                        reason: format!("the connection broke after {written} bytes: {e}"),
                    }))
                }
            };
            if written + n as u64 > limit {
                let _ = part.set_len(0);
                break Err(Failure::Final(DownloadError::TooLarge {
                    url: url.to_string(),
                    limit,
                }));
            }
            if let Err(e) = part.write_all(&buf[..n]) {
                break Err(io_err(e));
            }
            written += n as u64;
            if let Some(bar) = &bar {
                bar.set_position(written);
            }
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        result?;
        match file.size {
            // Without a length the server cannot say that it is done: the connection may have
            // dropped, so ask for the rest. With one, a short file is a wrong file, which the
            // checksum names.
            Some(size) if written < size && total.is_none() => {
                Err(Failure::Transient(DownloadError::Transfer {
                    url: url.to_string(),
                    reason: format!("the server sent {written} of {size} bytes"),
                }))
            }
            _ => Ok(()),
        }
    }

    fn bar(&self, name: &str, total: Option<u64>, start: u64) -> Option<ProgressBar> {
        if !self.progress {
            return None;
        }
        // The template is a constant, so a parse error is a bug here; fall back to the default.
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(format!("Downloading {name}"));
        bar.set_position(start);
        Some(bar)
    }
}

/// How one request failed: worth another attempt at the same URL, or not.
enum Failure {
    Transient(DownloadError),
    Final(DownloadError),
}

/// The HTTP agent: redirects followed, statuses handled here, timeouts on each stage (a stalled
/// connection fails after a minute without bytes instead of hanging).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(Duration::from_secs(20)))
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("runner/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Prefix of the reasons that mean "the network is not there" ([`classify`]).
const OFFLINE: &str = "offline: ";

/// Sorts a failed request: no route to the host is final for this URL (and reported as offline
/// when every URL fails so), a timeout or a reset is transient, anything else is final.
fn classify(url: &str, e: ureq::Error) -> Failure {
    let transfer = |reason: String| DownloadError::Transfer {
        url: url.to_string(),
        reason,
    };
    match e {
        ureq::Error::HostNotFound => Failure::Final(transfer(format!(
            "{OFFLINE}the host name could not be resolved"
        ))),
        ureq::Error::ConnectionFailed => {
            Failure::Final(transfer(format!("{OFFLINE}the connection failed")))
        }
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkDown
                    | io::ErrorKind::AddrNotAvailable
            ) =>
        {
            Failure::Final(transfer(format!("{OFFLINE}{e}")))
        }
        e @ (ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::Protocol(_)) => {
            Failure::Transient(transfer(e.to_string()))
        }
        e => Failure::Final(transfer(e.to_string())),
    }
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn content_range_start(headers: &ureq::http::HeaderMap) -> Option<u64> {
    let value = headers.get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// Opens `part` and takes an exclusive lock on it, waiting for another run that holds it.
/// `None`: the other run finished and renamed it to `dest` meanwhile.
fn lock_part(part: &Path, dest: &Path) -> Result<Option<File>, DownloadError> {
    let err = |source| DownloadError::Io {
        path: part.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::info!(
                "waiting for another run that is downloading {}",
                dest.display()
            );
            file.lock().map_err(err)?;
        }
        Err(TryLockError::Error(e)) => return Err(err(e)),
    }
    // The lock is on the file opened above; if the holder renamed that file into place, it is
    // `dest` now and `part` is no longer it.
    if !same_file(&file, part) {
        return Ok(None);
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.is_file()
}

fn create_dir(dir: &Path) -> Result<(), DownloadError> {
    std::fs::create_dir_all(dir).map_err(|source| DownloadError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// `dest` with `.part<pid>` appended to its name, for files extracted from an archive.
fn part_path(dest: &Path) -> PathBuf {
    with_suffix(dest, &format!(".part{}", std::process::id()))
}

/// Lower-case hex digest of a file's contents.
fn hex_digest<D: Digest>(path: &Path) -> io::Result<String> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Extracts the `cifar-10-batches-bin/` members of the CIFAR-10 binary tarball into `dir`,
/// skipping files already there.
pub fn extract_cifar(tarball: &Path, dir: &Path) -> Result<(), DownloadError> {
    let wanted: Vec<&str> = cifar::TRAIN_FILES
        .iter()
        .chain([&cifar::TEST_FILE, &cifar::META_FILE])
        .copied()
        .collect();
    extract_members(
        tarball,
        "cifar-10-batches-bin",
        &wanted,
        &[cifar::META_FILE],
        dir,
    )
}

/// Extracts `train.bin`, `test.bin` and the two names files of the CIFAR-100 binary tarball
/// into `dir`, skipping files already there.
pub fn extract_cifar100(tarball: &Path, dir: &Path) -> Result<(), DownloadError> {
    use super::cifar100::{COARSE_NAMES_FILE, FINE_NAMES_FILE, FOLDER, TEST_FILE, TRAIN_FILE};
    extract_members(
        tarball,
        FOLDER,
        &[TRAIN_FILE, TEST_FILE, FINE_NAMES_FILE, COARSE_NAMES_FILE],
        &[FINE_NAMES_FILE, COARSE_NAMES_FILE],
        dir,
    )
}

/// Extracts the members `folder/NAME` of a `.tar.gz` for each NAME in `wanted` into `dir`,
/// skipping files already there; every wanted name but the `optional` ones must be in it.
///
/// Member paths are never used as written: only the known names are accepted, and only as a
/// regular file directly under `folder`, so an archive cannot write outside `dir` (no `..`, no
/// absolute path, no link). Each member goes to a temporary name first and is renamed into place
/// once complete.
pub fn extract_members(
    tarball: &Path,
    folder: &str,
    wanted: &[&str],
    optional: &[&str],
    dir: &Path,
) -> Result<(), DownloadError> {
    let archive_err = |reason: String| DownloadError::Archive {
        path: tarball.to_path_buf(),
        reason,
    };
    let file = File::open(tarball).map_err(|source| DownloadError::Io {
        path: tarball.to_path_buf(),
        source,
    })?;
    create_dir(dir)?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let entries = archive.entries().map_err(|e| archive_err(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_err(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| archive_err(e.to_string()))?
            .into_owned();
        let mut parts = path.components();
        let name = match (parts.next(), parts.next(), parts.next()) {
            (
                Some(std::path::Component::Normal(f)),
                Some(std::path::Component::Normal(n)),
                None,
            ) if f == folder => n.to_str(),
            _ => None,
        };
        let Some(name) = name.filter(|n| wanted.contains(n)) else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let dest = dir.join(name);
        if dest.exists() {
            continue;
        }
        let part = part_path(&dest);
        let mut out = File::create(&part).map_err(|source| DownloadError::Io {
            path: part.clone(),
            source,
        })?;
        if let Err(e) = io::copy(&mut entry, &mut out) {
            drop(out);
            let _ = std::fs::remove_file(&part);
            return Err(archive_err(format!("{folder}/{name}: {e}")));
        }
        drop(out);
        std::fs::rename(&part, &dest).map_err(|source| DownloadError::Io {
            path: dest.clone(),
            source,
        })?;
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|n| !optional.contains(n) && !dir.join(n).is_file())
        .map(|n| format!("{folder}/{n}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(archive_err(format!("lacks {}", missing.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::BufRead;
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    use super::*;
    use crate::data::{load_with, DataError};

    /// What the test server does with one request.
    #[derive(Debug, Clone, Copy)]
    enum Mode {
        /// Serves the file, honouring `Range: bytes=N-` with a 206.
        Serve,
        /// Serves the whole file with a 200 whatever the request asks.
        IgnoreRange,
        /// Promises the whole file, sends this many bytes, then closes the connection.
        DropAfter(usize),
        /// Serves the file with its first byte changed.
        WrongBytes,
        /// Answers this status with an empty body.
        Status(u16),
    }

    /// One request as the server saw it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        path: String,
        range: Option<u64>,
    }

    /// An HTTP/1.1 server on 127.0.0.1 serving `files` by name; request `i` is answered
    /// according to `modes[i]` (then [`Mode::Serve`]). It stops when dropped.
    struct Server {
        base: String,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        addr: std::net::SocketAddr,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        fn start(files: &[(&str, &[u8])], modes: &[Mode]) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let files: HashMap<String, Vec<u8>> = files
                .iter()
                .map(|(n, b)| (n.to_string(), b.to_vec()))
                .collect();
            let modes = modes.to_vec();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (seen2, stop2) = (seen.clone(), stop.clone());
            // Bounded: a test makes a handful of requests; the cap keeps a bug from looping.
            let thread = std::thread::spawn(move || {
                for (i, stream) in listener.incoming().take(100).enumerate() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let mode = modes.get(i).copied().unwrap_or(Mode::Serve);
                    if let Some(s) = handle(stream, &files, mode) {
                        seen2.lock().expect("lock").push(s);
                    }
                }
            });
            Server {
                base: format!("http://{addr}/files"),
                seen,
                stop,
                addr,
                thread: Some(thread),
            }
        }

        /// The requests recorded so far. The client can have read the last answer before the
        /// server thread recorded it: to count every request, use [`Server::served`].
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().expect("lock").clone()
        }

        /// Every request served, once the server thread has stopped.
        fn served(mut self) -> Vec<Seen> {
            self.shut();
            self.seen()
        }

        fn shut(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wakes the accept loop so that it sees the flag.
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.shut();
        }
    }

    fn handle(stream: TcpStream, files: &HashMap<String, Vec<u8>>, mode: Mode) -> Option<Seen> {
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut reader = io::BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let path = line.split_whitespace().nth(1)?.to_string();
        let mut range = None;
        for _ in 0..100 {
            let mut h = String::new();
            if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("range:") {
                range = v
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|r| r.trim_end_matches('-').parse().ok());
            }
        }
        let mut out = stream;
        let name = path.rsplit('/').next().unwrap_or("");
        let reply = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                body.len()
            );
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(body);
        };
        let seen = Some(Seen {
            path: path.clone(),
            range,
        });
        let Some(body) = files.get(name) else {
            reply(&mut out, "404 Not Found", "", b"");
            return seen;
        };
        match mode {
            Mode::Status(code) => reply(&mut out, &format!("{code} Status"), "", b""),
            Mode::IgnoreRange => reply(&mut out, "200 OK", "", body),
            Mode::WrongBytes => {
                let mut wrong = body.clone();
                wrong[0] ^= 0xff;
                reply(&mut out, "200 OK", "", &wrong);
            }
            Mode::DropAfter(k) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body[..k.min(body.len())]);
                let _ = out.flush();
                let _ = out.shutdown(Shutdown::Both);
            }
            Mode::Serve => match range {
                Some(n) if (n as usize) < body.len() => {
                    let extra = format!(
                        "Content-Range: bytes {n}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    );
                    reply(&mut out, "206 Partial Content", &extra, &body[n as usize..]);
                }
                Some(_) => reply(&mut out, "416 Range Not Satisfiable", "", b""),
                None => reply(&mut out, "200 OK", "", body),
            },
        }
        seen
    }

    /// Bytes that differ at every position, so a misplaced resume shows.
    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn md5_of(bytes: &[u8]) -> String {
        Md5::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A file called `data.bin` that must hash to `bytes`' MD5.
    fn remote(bytes: &[u8], size: Option<u64>) -> RemoteFile {
        CIFAR10_TARBALL.with_checksum(Checksum::Md5(md5_of(bytes).into()), size)
    }

    /// A downloader for `server` that retries quickly.
    fn quick(server: &Server) -> Downloader {
        Downloader {
            backoff: Duration::from_millis(10),
            ..Downloader::with_mirror(&server.base)
        }
    }

    fn leftovers(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains(".part"))
            .collect()
    }

    #[test]
    fn checksums_of_known_contents() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("f");
        // (text, MD5 from RFC 1321 appendix A.5, SHA-256 from FIPS 180-2 / `sha256sum`).
        let cases = [
            (
                "",
                "d41d8cd98f00b204e9800998ecf8427e",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "abc",
                "900150983cd24fb0d6963f7d28e17f72",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (text, md5, sha) in cases {
            std::fs::write(&path, text).expect("write");
            for c in [
                Checksum::Md5(md5.to_uppercase().into()),
                Checksum::Sha256(sha.into()),
            ] {
                c.verify(&path, "u").expect("case-insensitive match");
            }
        }
        let err = Checksum::Sha256("00".into())
            .verify(&path, "http://x/f")
            .expect_err("mismatch");
        let text = err.to_string();
        assert!(
            matches!(&err, DownloadError::Checksum { url, algorithm: "SHA-256", .. } if url == "http://x/f"),
            "{err:?}"
        );
        assert!(
            text.contains(cases[1].2) && text.contains("published 00"),
            "{text}"
        );
        let err = Checksum::Md5("x".into())
            .verify(&tmp.path().join("absent"), "u")
            .expect_err("absent");
        assert!(matches!(err, DownloadError::Io { .. }), "{err:?}");
    }

    #[test]
    fn published_checksums_match_the_shared_copies() {
        let Some(data) =
            crate::data::tests::real_data_dir("published_checksums_match_the_shared_copies")
        else {
            return;
        };
        for (folder, files) in [
            ("mnist", &MNIST_FILES),
            ("fashion-mnist", &FASHION_MNIST_FILES),
        ] {
            for file in files {
                let path = data.join(folder).join(file.name());
                file.checksum()
                    .verify(&path, file.name())
                    .expect("PROVENANCE.md: byte-identical to the release");
                let len = std::fs::metadata(&path).expect("stat").len();
                assert_eq!(Some(len), file.size, "{}", path.display());
            }
        }
    }

    #[test]
    fn mirror_prefix_replaces_the_official_urls() {
        let f = &MNIST_FILES[0];
        assert_eq!(
            f.urls(None),
            [
                "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                "https://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz"
            ]
        );
        for prefix in ["http://h/p", "http://h/p/"] {
            assert_eq!(
                f.urls(Some(prefix)),
                ["http://h/p/train-images-idx3-ubyte.gz"]
            );
        }
    }

    #[test]
    fn downloads_and_verifies() {
        let body = payload(200_000);
        let server = Server::start(&[("cifar-10-binary.tar.gz", &body)], &[]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("out.bin");
        let sha = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        // (expected checksum, message)
        for (checksum, msg) in [
            (Checksum::Md5(md5_of(&body).into()), "md5"),
            (Checksum::Sha256(sha.into()), "sha256"),
        ] {
            let _ = std::fs::remove_file(&dest);
            let file = CIFAR10_TARBALL.with_checksum(checksum, Some(body.len() as u64));
            quick(&server).download(&file, &dest).expect(msg);
            assert_eq!(std::fs::read(&dest).expect("read"), body, "{msg}");
            assert!(leftovers(tmp.path()).is_empty(), "{msg}");
        }
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].path, "/files/cifar-10-binary.tar.gz");
        assert_eq!(seen[0].range, None);
        // A verified file in place is not fetched again.
        quick(&server)
            .download(&remote(&body, None), &dest)
            .expect("in place");
        assert_eq!(
            server.seen().len(),
            2,
            "no request for a file already in place"
        );
    }

    #[test]
    fn checksum_mismatch_is_named_and_leaves_nothing() {
        let body = payload(5_000);
        let server = Server::start(&[("cifar-10-binary.tar.gz", &body)], &[Mode::WrongBytes]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("out.bin");
        let err = quick(&server)
            .download(&remote(&body, Some(5_000)), &dest)
            .expect_err("wrong bytes");
        let mut wrong = body.clone();
        wrong[0] ^= 0xff;
        let DownloadError::Checksum {
            url,
            algorithm,
            expected,
            found,
        } = &err
        else {
            panic!("expected a checksum error, got {err:?}");
        };
        assert_eq!(
            (url.as_str(), *algorithm, expected.as_str(), found.as_str()),
            (
                format!("{}/cifar-10-binary.tar.gz", server.base).as_str(),
                "MD5",
                md5_of(&body).as_str(),
                md5_of(&wrong).as_str()
            )
        );
        let text = err.to_string();
        assert!(
            text.contains(&md5_of(&body)) && text.contains(&md5_of(&wrong)),
            "{text}"
        );
        assert!(!dest.exists(), "nothing renamed into place");
        assert!(leftovers(tmp.path()).is_empty(), "the .part is deleted");
    }

    #[test]
    fn a_partial_file_is_resumed_with_a_range_request() {
        let body = payload(100_000);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("out.bin");
        // (server mode, bytes already in the .part, whether they are right, message)
        let cases = [
            (Mode::Serve, 40_000, true, "206: appended"),
            (
                Mode::IgnoreRange,
                40_000,
                false,
                "200 to a range: restarted",
            ),
            (Mode::Serve, 100_000, true, "complete .part: only verified"),
            (
                Mode::Serve,
                150_000,
                false,
                "longer than the file: restarted",
            ),
        ];
        for (mode, have, right, msg) in cases {
            let server = Server::start(&[("cifar-10-binary.tar.gz", &body)], &[mode]);
            let _ = std::fs::remove_file(&dest);
            let prefix: Vec<u8> = if right {
                body[..have].to_vec()
            } else {
                vec![7u8; have]
            };
            std::fs::write(with_suffix(&dest, ".part"), &prefix).expect("write part");
            let size = (have != 150_000).then_some(body.len() as u64);
            quick(&server)
                .download(&remote(&body, size), &dest)
                .expect(msg);
            assert_eq!(std::fs::read(&dest).expect("read"), body, "{msg}");
            assert!(leftovers(tmp.path()).is_empty(), "{msg}");
            let seen = server.seen();
            match (have, size) {
                (100_000, _) => assert!(seen.is_empty(), "{msg}: {seen:?}"),
                (_, None) => {
                    // The range lies past the end: 416, then the whole file.
                    let ranges: Vec<_> = seen.iter().map(|s| s.range).collect();
                    assert_eq!(ranges, [Some(have as u64), None], "{msg}");
                }
                _ => {
                    assert_eq!(seen.len(), 1, "{msg}: {seen:?}");
                    assert_eq!(seen[0].range, Some(have as u64), "{msg}");
                }
            }
        }
    }

    #[test]
    fn a_dropped_connection_is_retried_and_resumed() {
        let body = payload(300_000);
        let server = Server::start(
            &[("cifar-10-binary.tar.gz", &body)],
            &[Mode::DropAfter(120_000), Mode::Status(503), Mode::Serve],
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("out.bin");
        quick(&server)
            .download(&remote(&body, Some(body.len() as u64)), &dest)
            .expect("third attempt succeeds");
        assert_eq!(std::fs::read(&dest).expect("read"), body);
        let seen = server.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0].range, None);
        let resumed = seen[2].range.expect("the last attempt resumes");
        assert!(resumed > 0 && resumed <= 120_000, "{seen:?}");

        // Without a known size, the checksum is what tells a short file from a whole one.
        let server = Server::start(
            &[("cifar-10-binary.tar.gz", &body)],
            &[Mode::DropAfter(1_000)],
        );
        std::fs::remove_file(&dest).expect("rm");
        quick(&server)
            .download(&remote(&body, None), &dest)
            .expect("retried");
        assert_eq!(std::fs::read(&dest).expect("read"), body);
    }

    #[test]
    fn http_errors_and_oversized_answers_are_named() {
        let body = payload(10_000);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("out.bin");
        // A 404 is not retried; a 503 is, until the attempts run out.
        let server = Server::start(&[("cifar-10-binary.tar.gz", &body)], &[Mode::Status(404)]);
        let err = quick(&server)
            .download(&remote(&body, None), &dest)
            .expect_err("404");
        assert!(
            matches!(err, DownloadError::Http { status: 404, .. }),
            "{err:?}"
        );
        assert_eq!(server.served().len(), 1);
        let server = Server::start(
            &[("cifar-10-binary.tar.gz", &body)],
            &[Mode::Status(503); 4],
        );
        let err = quick(&server)
            .download(&remote(&body, None), &dest)
            .expect_err("503");
        assert!(
            matches!(err, DownloadError::Http { status: 503, .. }),
            "{err:?}"
        );
        assert_eq!(server.served().len(), 4, "four attempts");
        // More bytes than the published size.
        let server = Server::start(&[("cifar-10-binary.tar.gz", &body)], &[]);
        let err = quick(&server)
            .download(&remote(&body, Some(5_000)), &dest)
            .expect_err("too large");
        assert!(
            matches!(err, DownloadError::TooLarge { limit: 5_000, .. }),
            "{err:?}"
        );
        assert!(!dest.exists() && leftovers(tmp.path()).is_empty());
    }

    #[test]
    fn offline_is_said_plainly() {
        // A port that was just free: connecting to it is refused, as on a machine with no network.
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mirror = format!("http://127.0.0.1:{port}/x");
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        for kind in [
            DatasetKind::Mnist,
            DatasetKind::FashionMnist,
            DatasetKind::Cifar10,
        ] {
            let err =
                load_with(&kind, &data, 0, &Downloader::with_mirror(&mirror)).expect_err("offline");
            let DataError::MissingFiles { download, .. } = &err else {
                panic!("expected MissingFiles, got {err:?}");
            };
            assert!(
                matches!(download.as_deref(), Some(DownloadError::Offline { .. })),
                "{download:?}"
            );
            let text = err.to_string();
            for needle in [
                "seems to be offline",
                &format!("cannot reach {mirror}/"),
                "by hand into",
                MIRROR_ENV,
            ] {
                assert!(text.contains(needle), "{kind:?}: lacks {needle:?}:\n{text}");
            }
            let folder = data.join(dataset_folder(&kind).expect("folder"));
            assert!(leftovers(&folder).is_empty() && leftovers(&data).is_empty());
        }
    }

    #[test]
    fn a_second_run_waits_for_the_first_and_finds_the_file() {
        let body = payload(20_000);
        let server = Server::start(&[("cifar-10-binary.tar.gz", &body)], &[]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("out.bin");
        let part = with_suffix(&dest, ".part");
        // The "first run": holds the lock on the .part while it writes.
        let mut first = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .expect("open");
        first.lock().expect("lock");
        let (downloader, file, dest2) = (quick(&server), remote(&body, None), dest.clone());
        let second = std::thread::spawn(move || downloader.download(&file, &dest2));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!second.is_finished(), "the second run waits for the lock");
        first.write_all(&body).expect("write");
        std::fs::rename(&part, &dest).expect("publish");
        drop(first);
        second
            .join()
            .expect("thread")
            .expect("finds the file in place");
        assert_eq!(std::fs::read(&dest).expect("read"), body);
        assert!(server.seen().is_empty(), "nothing downloaded twice");
        assert!(leftovers(tmp.path()).is_empty());
    }

    #[test]
    fn disabled_downloads_are_one_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for kind in [
            DatasetKind::Mnist,
            DatasetKind::FashionMnist,
            DatasetKind::Cifar10,
        ] {
            let err =
                load_with(&kind, tmp.path(), 0, &Downloader::disabled()).expect_err("disabled");
            let DataError::MissingFiles {
                files, download, ..
            } = &err
            else {
                panic!("expected MissingFiles, got {err:?}");
            };
            assert!(files.iter().all(|f| !f.present));
            assert!(matches!(download.as_deref(), Some(DownloadError::Disabled)));
            let text = err.to_string();
            assert!(
                text.contains("automatic download failed: downloads are disabled"),
                "{text}"
            );
        }
    }

    #[test]
    fn svhn_files_are_fetched_one_by_one_against_their_published_md5s() {
        use crate::data::svhn;
        // A file in the official format, but not the release's: its MD5 cannot match.
        let body = svhn::tests::file(2);
        let server = Server::start(
            &[(svhn::TRAIN_FILE, &body[..]), (svhn::TEST_FILE, &body[..])],
            &[],
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(svhn::FOLDER);
        let err = quick(&server)
            .fetch(&DatasetKind::Svhn { extra: false }, tmp.path())
            .expect_err("not the published file");
        let text = err.to_string();
        assert!(
            text.contains("train_32x32.mat") && text.contains("e26dedcc434d2e4c54c9b2d4a06d8373"),
            "{text}"
        );
        assert!(!dir.join(svhn::TRAIN_FILE).exists() && leftovers(&dir).is_empty());
        // With the training file in place, only the test file is asked for.
        std::fs::write(dir.join(svhn::TRAIN_FILE), &body).expect("write");
        let err = quick(&server)
            .fetch(&DatasetKind::Svhn { extra: false }, tmp.path())
            .expect_err("not the published file");
        assert!(
            err.to_string().contains("eb5a983be6a315427106f1b164d9cef3"),
            "{err}"
        );
        let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
        assert_eq!(
            paths,
            ["/files/train_32x32.mat", "/files/test_32x32.mat"],
            "one request per missing file"
        );
    }

    #[test]
    fn extracts_cifar100_safely_and_names_what_is_missing() {
        use crate::data::cifar100;
        use crate::experiment::Cifar100Labels;
        let tmp = tempfile::tempdir().expect("tempdir");
        let tarball = tmp.path().join(CIFAR100_TARBALL.name());
        let build = |members: &[(&str, Vec<u8>)]| {
            let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
                File::create(&tarball).expect("create"),
                flate2::Compression::fast(),
            ));
            for (path, bytes) in members {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                // `append_data` refuses `..`; a hostile archive would not, so write the raw name.
                header.as_gnu_mut().expect("gnu").name[..path.len()]
                    .copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder.append(&header, &bytes[..]).expect("append");
            }
            builder
                .into_inner()
                .expect("finish tar")
                .finish()
                .expect("finish gzip");
        };
        let fine: String = cifar100::FINE_CLASSES
            .iter()
            .map(|c| format!("{c}\n"))
            .collect();
        build(&[
            ("cifar-100-binary/train.bin", cifar100::tests::records(4, 0)),
            ("cifar-100-binary/test.bin", cifar100::tests::records(2, 4)),
            ("cifar-100-binary/fine_label_names.txt", fine.into_bytes()),
            ("cifar-100-binary/../evil.bin", b"outside".to_vec()),
            ("../train.bin", b"outside".to_vec()),
            ("/tmp/train.bin", b"absolute".to_vec()),
            ("cifar-100-binary/sub/test.bin", b"nested".to_vec()),
        ]);
        let data = tmp.path().join("data");
        let dir = data.join(cifar100::FOLDER);
        extract_cifar100(&tarball, &dir).expect("extracts");
        assert!(!tmp.path().join("evil.bin").exists() && !data.join("evil.bin").exists());
        assert!(!data.join("train.bin").exists() && !dir.join("sub").exists());
        let s = load_with(
            &DatasetKind::Cifar100(Cifar100Labels::Fine),
            &data,
            0,
            &Downloader::disabled(),
        )
        .expect("loads");
        assert_eq!((s.train.len(), s.test.len()), (4, 2));
        assert_eq!(s.train.classes[1], "aquarium_fish");

        // Only the optional names files may be absent.
        build(&[("cifar-100-binary/train.bin", cifar100::tests::records(1, 0))]);
        let err = extract_cifar100(&tarball, &tmp.path().join("out")).expect_err("no test.bin");
        assert!(
            err.to_string().contains("lacks cifar-100-binary/test.bin"),
            "{err}"
        );
        // A tarball cut short is named, and leaves no partial member.
        let bytes = std::fs::read(&tarball).expect("read");
        std::fs::write(&tarball, &bytes[..bytes.len() / 2]).expect("truncate");
        let out = tmp.path().join("cut");
        let err = extract_cifar100(&tarball, &out).expect_err("truncated");
        assert!(matches!(err, DownloadError::Archive { .. }), "{err:?}");
        assert!(leftovers(&out).is_empty());
    }

    #[test]
    fn extracts_cifar_members_from_a_tarball() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tarball = tmp.path().join(CIFAR10_TARBALL.name());
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
