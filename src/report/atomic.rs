//! Atomic file replacement: write a temporary file beside the target, fsync it, rename it over
//! the target, fsync the directory.
//!
//! Every temporary file this process has open is listed in a registry, so that an abort (the
//! second SIGINT or SIGTERM, see [`crate::interrupt`]) removes them all before the process
//! exits: an aborted run leaves no `.*.tmp-*` file behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::ReportError;

/// Replaces `path` with `bytes` atomically: readers see the old content or the new, never a mix.
///
/// The bytes go to a temporary file in the same directory (a rename is only atomic within one
/// file system), which is fsynced and then renamed over `path`; the directory is fsynced too so
/// the rename survives a crash. On failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let (tmp, mut file) = create_temp_beside(path).map_err(err)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            rename_temp(&tmp, path)
        });
    if let Err(source) = written {
        // Best effort: the temporary file is garbage either way.
        remove_temp(&tmp);
        return Err(err(source));
    }
    sync_parent(path).map_err(err)
}

/// [`write_atomic`] without the `fsync`s: readers see the old file or the whole new one, never a
/// part, but a power cut may lose the file. For writing many small files (an exported image
/// folder), where syncing each would dominate the time.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let (tmp, mut file) = create_temp_beside(path).map_err(err)?;
    let written = file.write_all(bytes).and_then(|()| {
        drop(file);
        rename_temp(&tmp, path)
    });
    if let Err(source) = written {
        remove_temp(&tmp);
        return Err(err(source));
    }
    Ok(())
}

/// The temporary files this process has created and not yet renamed or removed.
static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live_temps() -> MutexGuard<'static, Vec<PathBuf>> {
    // A poisoned lock only means a thread panicked while holding it; the list is still valid.
    LIVE_TEMPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Renames a temporary file of [`create_temp_beside`] to its final name and forgets it.
pub(crate) fn rename_temp(tmp: &Path, dest: &Path) -> io::Result<()> {
    let mut live = live_temps();
    let renamed = std::fs::rename(tmp, dest);
    live.retain(|p| p != tmp);
    renamed
}

/// Removes a temporary file of [`create_temp_beside`] (best effort) and forgets it.
pub(crate) fn remove_temp(tmp: &Path) {
    let mut live = live_temps();
    let _ = std::fs::remove_file(tmp);
    live.retain(|p| p != tmp);
}

/// Removes every temporary file this process has open and ends the process at once with
/// `code`, without unwinding or running destructors (the abort of a second signal). The
/// registry stays locked until the end, so no thread can create or rename a temporary file
/// in between.
pub(crate) fn remove_temps_and_exit(code: i32) -> ! {
    let live = live_temps();
    for tmp in live.iter() {
        let _ = std::fs::remove_file(tmp);
    }
    // SAFETY: `_exit` ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Creates a fresh temporary file in `path`'s directory, named after `path` so a leftover from a
/// killed process says what it was: `.<name>.tmp-<pid>-<n>`.
pub(crate) fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path does not name a file"))?;
    let dir = parent_dir(path);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        // Created under the registry's lock, so an abort sees every file that exists.
        let mut live = live_temps();
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => {
                live.push(tmp.clone());
                return Ok((tmp, file));
            }
            // A leftover from an earlier process with the same pid; try the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(parent_dir(path))?.sync_all()
    }
    // Other platforms cannot open a directory as a file; the rename is still atomic there.
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_then_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        assert_eq!(
            entries(dir.path()),
            ["metrics.csv"],
            "only the target remains"
        );
    }

    #[test]
    fn failures_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let target_is_dir = dir.path().join("a-dir");
        std::fs::create_dir(&target_is_dir).unwrap();
        // Parent-is-a-file fails even as root, where permission bits do not stop writes.
        let cases: [(&str, PathBuf); 3] = [
            ("parent is a regular file", file.join("metrics.csv")),
            (
                "parent does not exist",
                dir.path().join("missing/metrics.csv"),
            ),
            ("target is a directory", target_is_dir.clone()),
        ];
        for (why, path) in cases {
            let err = write_atomic(&path, b"data").expect_err(why);
            assert!(
                matches!(&err, ReportError::Write { path: p, .. } if *p == path),
                "{why}: {err}"
            );
            assert!(err.to_string().contains("cannot write"), "{why}: {err}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        assert_eq!(
            entries(dir.path()),
            ["a-dir", "a-file"],
            "no temp files left"
        );
        assert!(entries(&target_is_dir).is_empty());
    }
}
