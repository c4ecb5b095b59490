//! A run folder's status (`status.json`) and its one-writer lock (`.lock`).
//!
//! Every run folder says what state it is in: `running`, `finished`, `interrupted` (with the
//! command that resumes it) or `failed` (with the reason). The process writing a folder holds an
//! advisory lock on its `.lock` file (`flock`, through [`std::fs::File::try_lock`]) for as long as
//! it writes; the kernel releases it when the process ends, however it ends. So a folder whose
//! status says `running` but whose lock is free was left by a process that died without a word
//! (SIGKILL, power loss): [`RunState::effective`] reports it as interrupted.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_atomic, ReportError};

/// File name of a run folder's status.
pub const STATUS_FILE: &str = "status.json";
/// File name of a run folder's lock.
pub const LOCK_FILE: &str = ".lock";

/// What a run folder's status says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// A process is training into it (or died without a word: see [`RunState::effective`]).
    Running,
    /// Every epoch ran and every result file is written.
    Finished,
    /// Stopped by a signal; resumable from its last checkpoint (or from the start).
    Interrupted,
    /// Stopped by an error.
    Failed,
}

/// The content of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// The state.
    pub state: RunState,
    /// Epochs finished (and checkpointed, for an interrupted run).
    pub epochs_done: usize,
    /// Epochs the run is to train.
    pub epochs: usize,
    /// Why it failed or what interrupted it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The command that continues it, for an interrupted or failed run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resume: String,
}

impl RunStatus {
    /// A status in `state` with no reason or resume command.
    pub fn new(state: RunState, epochs_done: usize, epochs: usize) -> Self {
        RunStatus {
            state,
            epochs_done,
            epochs,
            reason: String::new(),
            resume: String::new(),
        }
    }

    /// Writes `status.json` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| ReportError::Write {
            path: dir.join(STATUS_FILE),
            source: io::Error::other(e),
        })?;
        text.push('\n');
        write_atomic(&dir.join(STATUS_FILE), text.as_bytes())
    }

    /// Reads `dir/status.json`; `None` when the file is absent (a folder written before
    /// statuses existed, or one whose first write has not happened yet).
    pub fn read(dir: &Path) -> Result<Option<RunStatus>, ReportError> {
        let path = dir.join(STATUS_FILE);
        let text = match crate::bounded::read_to_string(&path, crate::bounded::JSON_LIMIT) {
            Ok(t) => t,
            Err(e) if e.kind.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ReportError::Parse {
                path,
                message: e.to_string(),
            })
    }

    /// The state as a reader should take it: `running` with a free lock means the writer died
    /// without recording why, which is an interruption.
    pub fn effective(&self, dir: &Path) -> RunState {
        if self.state == RunState::Running && !is_locked(dir) {
            RunState::Interrupted
        } else {
            self.state.clone()
        }
    }

    /// One line for listings: `finished (5/5 epochs)`, `interrupted after epoch 2 of 5: resume
    /// with ...`, `failed: reason`, `running (epoch 3 of 5)`, `killed after epoch 2 of 5 ...`.
    pub fn describe(&self, dir: &Path) -> String {
        let (done, all) = (self.epochs_done, self.epochs);
        match (&self.state, self.effective(dir)) {
            (_, RunState::Finished) => format!("finished ({done}/{all} epochs)"),
            (RunState::Running, RunState::Interrupted) => format!(
                "killed after epoch {done} of {all} (the process ended without a word): resume with `runner resume {}`",
                dir.display()
            ),
            (_, RunState::Interrupted) => format!(
                "interrupted after epoch {done} of {all}{}: resume with `{}`",
                if self.reason.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", self.reason)
                },
                if self.resume.is_empty() {
                    format!("runner resume {}", dir.display())
                } else {
                    self.resume.clone()
                }
            ),
            (_, RunState::Failed) => format!("failed after epoch {done} of {all}: {}", self.reason),
            (_, RunState::Running) => format!("running (epoch {} of {all})", done + 1),
        }
    }
}

/// The exclusive lock on a run folder (or a batch folder), held until dropped.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Takes the lock on `dir/.lock` without waiting; `Ok(None)` when another process holds it.
    pub fn try_acquire(dir: &Path) -> Result<Option<FolderLock>, ReportError> {
        let path = dir.join(LOCK_FILE);
        let err = |source| ReportError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = open_lock_file(&path).map_err(err)?;
        match file.try_lock() {
            Ok(()) => {
                // The holder's pid, for people reading the folder; the lock is what counts.
                let _ = file.set_len(0);
                let _ = writeln!(file, "{}", std::process::id());
                Ok(Some(FolderLock { _file: file, path }))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(err(source)),
        }
    }

    /// Takes the lock on `dir/.lock`, waiting for another holder to let go.
    pub fn acquire(dir: &Path) -> Result<FolderLock, ReportError> {
        let path = dir.join(LOCK_FILE);
        let err = |source| ReportError::Lock {
            path: path.clone(),
            source,
        };
        let file = open_lock_file(&path).map_err(err)?;
        file.lock().map_err(err)?;
        Ok(FolderLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Whether a process holds the lock of `dir` right now. A folder without a lock file is not
/// locked; a lock file that cannot be opened counts as locked (the safe answer for callers that
/// would otherwise take the folder over).
pub fn is_locked(dir: &Path) -> bool {
    let path = dir.join(LOCK_FILE);
    if !path.exists() {
        return false;
    }
    match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        },
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_a_dead_writer_reads_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RunStatus::read(dir.path()).unwrap(), None);
        let mut s = RunStatus::new(RunState::Running, 2, 5);
        s.write(dir.path()).unwrap();
        assert_eq!(RunStatus::read(dir.path()).unwrap().as_ref(), Some(&s));
        // Nobody holds the lock: the writer is gone.
        assert_eq!(s.effective(dir.path()), RunState::Interrupted);
        assert!(s
            .describe(dir.path())
            .starts_with("killed after epoch 2 of 5"));
        let lock = FolderLock::try_acquire(dir.path()).unwrap().expect("free");
        assert_eq!(s.effective(dir.path()), RunState::Running);
        assert_eq!(s.describe(dir.path()), "running (epoch 3 of 5)");
        drop(lock);
        s.state = RunState::Failed;
        s.reason = "the training loss became NaN".into();
        assert_eq!(
            s.describe(dir.path()),
            "failed after epoch 2 of 5: the training loss became NaN"
        );
    }

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_locked(dir.path()));
        let first = FolderLock::try_acquire(dir.path()).unwrap().expect("free");
        assert!(is_locked(dir.path()));
        assert!(FolderLock::try_acquire(dir.path()).unwrap().is_none());
        drop(first);
        assert!(!is_locked(dir.path()));
        let again = FolderLock::acquire(dir.path()).unwrap();
        assert_eq!(again.path(), dir.path().join(LOCK_FILE));
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }

    #[test]
    fn a_corrupt_status_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATUS_FILE), "{not json").unwrap();
        let err = RunStatus::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains(STATUS_FILE), "{err}");
    }
}
