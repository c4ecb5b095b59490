//! The one way runner reads a file: regular files only, and never more bytes than a limit.
//!
//! Every file the program reads goes through [`open`] (streams: the data sets' IDX files) or
//! [`read`] / [`read_to_string`] (whole files: experiments, CSV tables, JSON, CIFAR batches):
//!
//! - The file is opened without blocking (`O_NONBLOCK`, so a FIFO with no writer cannot hang the
//!   open) and then checked with `fstat` on the open descriptor: a FIFO, a device, a socket or a
//!   directory is refused with a message that says which it is.
//! - [`read`] caps the bytes it actually reads at the limit (reading one byte more to tell "too
//!   large" from "exactly the limit"), whatever size the file reports: `/proc` files report 0 and
//!   a file can grow while it is read.
//! - A symbolic-link loop, a missing file and a permission error are each named as what they are.
//!
//! [`probe`] answers "is there a readable regular file here?" the same way without reading, for
//! the lists of files a data set needs.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Experiment files, run configs.
pub const EXPERIMENT_LIMIT: u64 = 4 << 20;
/// Small JSON files of runner's (status, checkpoint manifests).
pub const JSON_LIMIT: u64 = 4 << 20;
/// Weights files (`train.init_from`, `runner eval WEIGHTS`): the largest model runner trains
/// has 2 GiB of `f32` weights (see `TrainError::TooLarge`); 4 GiB leaves room for `f64` files.
pub const WEIGHTS_LIMIT: u64 = 4 << 30;
/// CSV tables (`metrics.csv`, `summary.csv`, `batch.csv`, the tables `runner diff` compares):
/// a batch.csv of a million variants is about 150 MiB.
pub const TABLE_LIMIT: u64 = 256 << 20;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {kind}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: ReadErrorKind,
}

/// What is wrong with a file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    /// Nothing is there.
    #[error("no such file")]
    NotFound,
    /// It is not a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// A chain of symbolic links that ends where it started.
    #[error("a loop of symbolic links")]
    SymlinkLoop,
    /// The permissions forbid reading it.
    #[error("permission denied")]
    PermissionDenied,
    /// More bytes than the limit.
    #[error("it holds more than {limit} bytes, the most runner reads from such a file")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8 text ([`read_to_string`]).
    #[error("it is not UTF-8 text (invalid byte at offset {0})")]
    NotText(usize),
    /// Any other error from the system.
    #[error("{0}")]
    Io(io::Error),
}

impl ReadErrorKind {
    fn from_io(e: io::Error) -> Self {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return ReadErrorKind::SymlinkLoop;
        }
        match e.kind() {
            io::ErrorKind::NotFound => ReadErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ReadErrorKind::PermissionDenied,
            _ => ReadErrorKind::Io(e),
        }
    }

    /// Whether the file simply is not there (as opposed to being there and unreadable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadErrorKind::NotFound)
    }
}

/// What a file system entry is, in words, when it is not a regular file.
fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Opens `path` for reading if it is a regular file; the open cannot block.
pub fn open(path: &Path) -> Result<File, ReadError> {
    let err = |kind| ReadError {
        path: path.to_path_buf(),
        kind,
    };
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO without a writer would block the open; a regular file ignores the flag.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| err(ReadErrorKind::from_io(e)))?;
    let meta = file
        .metadata()
        .map_err(|e| err(ReadErrorKind::from_io(e)))?;
    if let Some(what) = not_regular(&meta) {
        return Err(err(ReadErrorKind::NotRegular(what)));
    }
    Ok(file)
}

/// Reads the whole of `path`, a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open(path)?;
    let err = |kind| ReadError {
        path: path.to_path_buf(),
        kind,
    };
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(ReadErrorKind::from_io(e)))?;
    if bytes.len() as u64 > limit {
        return Err(err(ReadErrorKind::TooLarge { limit }));
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes).map_err(|e| ReadError {
        path: path.to_path_buf(),
        kind: ReadErrorKind::NotText(e.utf8_error().valid_up_to()),
    })
}

/// What is at `path`, without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A regular file that can be opened.
    File,
    /// Nothing.
    Missing,
    /// Something that cannot be read as a file, in words (`a directory`, `a loop of symbolic
    /// links`, `permission denied`, ...).
    Unusable(String),
}

/// Looks at `path` the way [`open`] would, without reading.
pub fn probe(path: &Path) -> Probe {
    match open(path) {
        Ok(_) => Probe::File,
        Err(e) if e.kind.is_not_found() => Probe::Missing,
        Err(e) => Probe::Unusable(e.kind.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn reads_regular_files_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read(&f, 5).unwrap(), b"12345");
        let err = read(&f, 4).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::TooLarge { limit: 4 }),
            "{err}"
        );
        assert!(err.to_string().contains("a.txt"), "{err}");
        assert_eq!(read_to_string(&f, 10).unwrap(), "12345");
        std::fs::write(&f, [b'a', 0xff]).unwrap();
        let err = read_to_string(&f, 10).unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::NotText(1)), "{err}");
        assert_eq!(probe(&f), Probe::File);
    }

    #[test]
    fn dev_zero_is_refused_at_once_without_reading() {
        let start = Instant::now();
        let err = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::NotRegular("a character device")),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_proc_file_that_reports_size_zero_is_still_capped() {
        // /proc files report length 0 but hold bytes: the cap counts what is read.
        let err = read(Path::new("/proc/self/maps"), 8).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::TooLarge { limit: 8 }),
            "{err}"
        );
    }

    #[test]
    fn a_fifo_without_writer_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `mkfifo` with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let start = Instant::now();
        let err = read(&fifo, 1024).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::NotRegular("a named pipe (FIFO)")),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(
            probe(&fifo),
            Probe::Unusable("it is a named pipe (FIFO), not a regular file".into())
        );
    }

    #[test]
    fn directories_loops_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), 10).unwrap_err();
        assert!(
            matches!(err.kind, ReadErrorKind::NotRegular("a directory")),
            "{err}"
        );
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = read(&a, 10).unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::SymlinkLoop), "{err}");
        assert_eq!(
            probe(&a),
            Probe::Unusable("a loop of symbolic links".into())
        );
        let missing = dir.path().join("none");
        assert!(read(&missing, 10).unwrap_err().kind.is_not_found());
        assert_eq!(probe(&missing), Probe::Missing);
    }
}
