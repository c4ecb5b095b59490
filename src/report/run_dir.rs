//! The run directory `<root>/<experiment>/<run-id>/` and the files written into it.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::tables::{confusion_csv, metrics_csv, per_class_csv, summary_csv};
use super::{write_atomic, ClassAccuracy, EpochMetrics, ReportError, Summary};

/// File name of the resolved experiment.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the per-epoch metrics.
pub const METRICS_FILE: &str = "metrics.csv";
/// File name of the one-row run summary.
pub const SUMMARY_FILE: &str = "summary.csv";
/// File name of the per-class test accuracy.
pub const PER_CLASS_FILE: &str = "per_class.csv";
/// File name of the confusion matrix's counts.
pub const CONFUSION_FILE: &str = "confusion.csv";
/// File name of the Chrome trace-event file.
pub const TRACE_FILE: &str = "trace.json";
/// File name of the trained weights.
pub const MODEL_FILE: &str = "model.safetensors";

/// File name of the final weights of the weight average called `name` (`model_ema.safetensors`
/// for `[train.ema]`), under the tensor names of [`MODEL_FILE`].
pub fn average_model_file(name: &str) -> String {
    format!("model_{name}.safetensors")
}

/// One run's output folder, `<root>/<experiment>/<run_id>/`, created and checked writable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    /// The folder itself.
    pub path: PathBuf,
    /// Its name: a UTC timestamp such as `20261127-204501`, with `-2`, `-3`, ... appended when
    /// runs start within the same second.
    pub run_id: String,
}

impl RunDir {
    /// Creates `<root>/<experiment>/<run_id>/` with a fresh run id (the current UTC time, plus a
    /// suffix when that folder already exists) and checks it is writable by writing and removing
    /// a probe file, so a bad output folder fails before training starts, not after.
    pub fn create(root: &Path, experiment: &str) -> Result<RunDir, ReportError> {
        Self::create_at(root, experiment, SystemTime::now())
    }

    /// [`RunDir::create`] with the clock passed in, so tests can pin the run id.
    pub(crate) fn create_at(
        root: &Path,
        experiment: &str,
        now: SystemTime,
    ) -> Result<RunDir, ReportError> {
        let mut parts = Path::new(experiment).components();
        if !matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(ReportError::BadExperimentName {
                name: experiment.to_owned(),
            });
        }
        let parent = root.join(experiment);
        std::fs::create_dir_all(&parent).map_err(|source| ReportError::CreateDir {
            path: parent.clone(),
            source,
        })?;
        let stamp = utc_stamp(now);
        // `create_dir` (not `_all`) fails on an existing folder, so two processes starting in
        // the same second cannot both claim one id.
        for n in 1.. {
            let run_id = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let path = parent.join(&run_id);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    probe_writable(&path).map_err(|source| ReportError::NotWritable {
                        path: path.clone(),
                        source,
                    })?;
                    return Ok(RunDir { path, run_id });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(ReportError::CreateDir { path, source }),
            }
        }
        unreachable!("the suffix loop only ends by returning")
    }

    /// An existing run folder (to resume): `path` must be a directory holding `config.toml`.
    pub fn open(path: &Path) -> Result<RunDir, ReportError> {
        let config = path.join(CONFIG_FILE);
        if !config.is_file() {
            return Err(ReportError::Read {
                path: config,
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "not a run folder (it has no config.toml)",
                ),
            });
        }
        probe_writable(path).map_err(|source| ReportError::NotWritable {
            path: path.to_path_buf(),
            source,
        })?;
        let run_id = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Ok(RunDir {
            path: path.to_path_buf(),
            run_id,
        })
    }

    /// The path of `name` inside the run directory (e.g. [`MODEL_FILE`] for the caller's
    /// [`write_atomic`]).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `config.toml`: the resolved experiment text.
    pub fn write_config(&self, toml_text: &str) -> Result<(), ReportError> {
        write_atomic(&self.file(CONFIG_FILE), toml_text.as_bytes())
    }

    /// Rewrites `metrics.csv` with all epochs so far; call after every epoch.
    pub fn write_metrics(&self, rows: &[EpochMetrics]) -> Result<(), ReportError> {
        write_atomic(&self.file(METRICS_FILE), metrics_csv(rows).as_bytes())
    }

    /// Writes `summary.csv` (header and one row).
    pub fn write_summary(&self, s: &Summary) -> Result<(), ReportError> {
        write_atomic(&self.file(SUMMARY_FILE), summary_csv(s).as_bytes())
    }

    /// Writes `confusion.csv`.
    pub fn write_confusion(&self, cm: &crate::plot::ConfusionMatrix) -> Result<(), ReportError> {
        write_atomic(&self.file(CONFUSION_FILE), confusion_csv(cm).as_bytes())
    }

    /// Writes `per_class.csv`.
    pub fn write_per_class(&self, rows: &[ClassAccuracy]) -> Result<(), ReportError> {
        write_atomic(&self.file(PER_CLASS_FILE), per_class_csv(rows).as_bytes())
    }
}

/// Writes and removes a small file, the cheapest honest answer to "can I write here?".
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"probe")?;
    std::fs::remove_file(&probe)
}

/// Formats `t` as `YYYYMMDD-HHMMSS` in UTC (times before 1970 clamp to the epoch).
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn utc_stamps() {
        // Expected values: `date -u -d @SECS +%Y%m%d-%H%M%S`.
        let cases = [
            (0, "19700101-000000", "epoch"),
            (
                951_782_400,
                "20000229-000000",
                "leap day in a year divisible by 400",
            ),
            (1_709_164_799, "20240228-235959", "second before a leap day"),
            (1_795_812_301, "20261127-204501", "example from the spec"),
            (4_107_542_400, "21000301-000000", "2100 is not a leap year"),
        ];
        for (secs, want, why) in cases {
            assert_eq!(utc_stamp(at(secs)), want, "{why}");
        }
    }

    #[test]
    fn create_gives_distinct_ids_in_the_same_second() {
        let root = tempfile::tempdir().unwrap();
        let now = at(1_795_812_301);
        let ids: Vec<String> = (0..3)
            .map(|_| RunDir::create_at(root.path(), "mnist", now).unwrap().run_id)
            .collect();
        assert_eq!(
            ids,
            ["20261127-204501", "20261127-204501-2", "20261127-204501-3"]
        );
        let run = RunDir::create_at(root.path(), "mnist", now).unwrap();
        assert_eq!(
            run.path,
            root.path().join("mnist").join("20261127-204501-4")
        );
        assert!(run.path.is_dir());
        assert_eq!(
            std::fs::read_dir(&run.path).unwrap().count(),
            0,
            "probe removed"
        );
    }

    #[test]
    fn create_with_the_real_clock_twice_gives_distinct_ids() {
        let root = tempfile::tempdir().unwrap();
        let a = RunDir::create(root.path(), "cifar").unwrap();
        let b = RunDir::create(root.path(), "cifar").unwrap();
        assert_ne!(a.run_id, b.run_id);
        assert!(a.path.is_dir() && b.path.is_dir());
    }

    #[test]
    fn create_fails_early_and_names_the_folder() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("results");
        std::fs::write(&file, b"not a folder").unwrap();
        let err = RunDir::create(&file, "mnist").unwrap_err();
        assert!(matches!(err, ReportError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }

    #[test]
    fn create_rejects_names_that_are_not_one_folder() {
        let root = tempfile::tempdir().unwrap();
        for name in ["", "..", ".", "a/b", "/abs"] {
            let err = RunDir::create(root.path(), name).unwrap_err();
            assert!(
                matches!(err, ReportError::BadExperimentName { .. }),
                "{name:?}: {err}"
            );
        }
    }

    #[test]
    fn writes_every_file_into_the_run_dir() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::create(root.path(), "mnist").unwrap();
        run.write_config("[model]\n").unwrap();
        run.write_metrics(&[]).unwrap();
        run.write_per_class(&[]).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&run.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [CONFIG_FILE, METRICS_FILE, PER_CLASS_FILE]);
        assert_eq!(
            std::fs::read_to_string(run.file(CONFIG_FILE)).unwrap(),
            "[model]\n"
        );
    }
}
