//! Tracing setup: human-readable logs on stderr and, per run, a Chrome trace-event file.
//!
//! The trace file is written atomically like every other result file: tracing-chrome writes
//! into a temporary file beside the target (through a private `AtomicTraceWriter`), and that
//! writer fsyncs and renames it to the final name when tracing-chrome drops it, which happens
//! only after it has written the closing `]`. So `trace.json` either does not exist or is
//! complete, valid JSON. A killed run leaves only a `.trace.json.tmp-*` file; the trace-event
//! format allows the missing `]`, so viewers usually still open it for a post-mortem.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::Subscriber;
use tracing_chrome::{ChromeLayer, ChromeLayerBuilder, FlushGuard};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::atomic::{create_temp_beside, remove_temp, rename_temp, sync_parent};
use super::ReportError;

/// Environment variable filtering what goes into the Chrome trace (same syntax as `RUST_LOG`);
/// default `info`, which holds every `#[instrument]`ed stage without per-op noise.
pub const TRACE_FILTER_ENV: &str = "RUNNER_TRACE";

/// Installs the process-wide tracing subscriber; call once, early, and keep the guard alive.
///
/// * A formatted log layer writes to stderr, filtered by `RUST_LOG` (default `warn`; invalid
///   directives are ignored rather than fatal).
/// * When `trace_file` is given, a Chrome trace layer records spans (filtered by
///   [`TRACE_FILTER_ENV`], default `info`) into that file, written atomically: it appears under
///   its name, complete, when the guard is dropped or [`TraceGuard::finish`]ed. The caller
///   creates the [`RunDir`](super::RunDir) first and passes its `trace.json`; for several runs in
///   one process, [`TraceGuard::start_new`] switches files.
///
/// Fails if a global subscriber is already installed or the trace file cannot be created.
pub fn init_tracing(trace_file: Option<&Path>) -> Result<TraceGuard, ReportError> {
    let (subscriber, guard) = subscriber(trace_file)?;
    subscriber
        .try_init()
        .map_err(|e| ReportError::TracingInit {
            message: e.to_string(),
        })?;
    Ok(guard)
}

/// The subscriber [`init_tracing`] installs, without installing it (tests use it with
/// `tracing::subscriber::with_default`).
pub fn subscriber(
    trace_file: Option<&Path>,
) -> Result<(impl Subscriber + Send + Sync + 'static, TraceGuard), ReportError> {
    let fmt_filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_filter(fmt_filter);
    let (chrome, trace) = match trace_file {
        Some(path) => {
            let (layer, trace) = chrome_layer(path)?;
            // Separate from RUST_LOG: the trace wants the `info` stage spans even when the
            // console shows only warnings.
            let filter = EnvFilter::builder()
                .with_default_directive(LevelFilter::INFO.into())
                .with_env_var(TRACE_FILTER_ENV)
                .from_env_lossy();
            (Some(layer.with_filter(filter)), Some(trace))
        }
        None => (None, None),
    };
    let subscriber = tracing_subscriber::registry().with(fmt).with(chrome);
    Ok((subscriber, TraceGuard { trace }))
}

/// Builds a Chrome trace layer that writes `path` atomically, for any subscriber stack.
///
/// [`init_tracing`] uses it for the global subscriber; tests and embedders can put it under
/// `tracing::subscriber::with_default` instead. The returned [`ChromeTrace`] must outlive the
/// traced work; finishing it completes the file.
pub fn chrome_layer<S>(path: &Path) -> Result<(ChromeLayer<S>, ChromeTrace), ReportError>
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let errors = Arc::new(Mutex::new(Vec::new()));
    let writer = AtomicTraceWriter::create(path, Arc::clone(&errors))?;
    let (layer, flush) = ChromeLayerBuilder::new()
        .writer(writer)
        .include_args(true)
        .build();
    Ok((
        layer,
        ChromeTrace {
            flush: Some(flush),
            errors,
        },
    ))
}

/// Keeps the Chrome trace writer alive; dropping it completes and renames the trace file.
/// Returned by [`init_tracing`]; keep it in `main` until the run ends.
#[must_use = "dropping the guard ends the trace immediately"]
pub struct TraceGuard {
    trace: Option<ChromeTrace>,
}

impl TraceGuard {
    /// Whether a Chrome trace is being recorded.
    pub fn is_tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Completes the current trace file and sends later events to `path` (for `runner batch`,
    /// one trace per run). The finished file is renamed into place in the background; it is
    /// certainly there after [`TraceGuard::finish`]. Spans open across the switch are cut.
    /// Does nothing when no trace is being recorded.
    pub fn start_new(&self, path: &Path) -> Result<(), ReportError> {
        match &self.trace {
            Some(trace) => trace.start_new(path),
            None => Ok(()),
        }
    }

    /// Completes the trace file now and reports any error writing or renaming it (dropping
    /// the guard does the same but can only log the error).
    pub fn finish(self) -> Result<(), ReportError> {
        self.trace.map_or(Ok(()), ChromeTrace::finish)
    }
}

/// The writing end of one [`chrome_layer`]: its flush guard and the errors its files met.
pub struct ChromeTrace {
    flush: Option<FlushGuard>,
    errors: Arc<Mutex<Vec<ReportError>>>,
}

impl ChromeTrace {
    /// See [`TraceGuard::start_new`].
    pub fn start_new(&self, path: &Path) -> Result<(), ReportError> {
        let writer = AtomicTraceWriter::create(path, Arc::clone(&self.errors))?;
        if let Some(flush) = &self.flush {
            flush.start_new(Some(Box::new(writer)));
        }
        Ok(())
    }

    /// Stops the writer thread, which closes the JSON array and renames the file into place;
    /// returns the first error any trace file of this layer met.
    pub fn finish(mut self) -> Result<(), ReportError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), ReportError> {
        // Dropping the flush guard joins the writer thread, which drops (so renames) the writer.
        drop(self.flush.take());
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let first = errors.drain(..).next();
        first.map_or(Ok(()), Err)
    }
}

impl Drop for ChromeTrace {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("{e}");
        }
    }
}

/// A trace file under construction: writes go to a temporary file beside `dest`, and dropping
/// the writer renames it to `dest`. tracing-chrome panics its writer thread on any I/O error, so
/// errors are recorded here instead (and later writes skipped) and surface from
/// [`ChromeTrace::finish`]; a failed file is removed, never renamed into place.
struct AtomicTraceWriter {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    failed: Option<io::Error>,
    errors: Arc<Mutex<Vec<ReportError>>>,
}

impl AtomicTraceWriter {
    fn create(dest: &Path, errors: Arc<Mutex<Vec<ReportError>>>) -> Result<Self, ReportError> {
        let (tmp, file) = create_temp_beside(dest).map_err(|source| ReportError::Write {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file,
            tmp,
            dest: dest.to_path_buf(),
            failed: None,
            errors,
        })
    }

    fn commit(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.file.flush()?;
        self.file.sync_all()?;
        rename_temp(&self.tmp, &self.dest)?;
        sync_parent(&self.dest)
    }
}

impl Write for AtomicTraceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed.is_none() {
            if let Err(e) = self.file.write_all(buf) {
                self.failed = Some(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed.is_none() {
            if let Err(e) = self.file.flush() {
                self.failed = Some(e);
            }
        }
        Ok(())
    }
}

impl Drop for AtomicTraceWriter {
    fn drop(&mut self) {
        if let Err(source) = self.commit() {
            // Best effort: a partial trace must not appear under the final name.
            remove_temp(&self.tmp);
            let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            errors.push(ReportError::Write {
                path: self.dest.clone(),
                source,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::Registry;

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn span_names(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        let events: Vec<serde_json::Value> =
            serde_json::from_str(&text).expect("trace is a JSON array");
        events
            .iter()
            .filter(|e| e["ph"] == "B")
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tracing::instrument]
    fn traced_epoch(epoch: usize) -> usize {
        tracing::info!(epoch, "inside");
        epoch + 1
    }

    #[test]
    fn chrome_trace_is_valid_json_after_finish_and_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.json");
        let (layer, trace) = chrome_layer::<Registry>(&path).unwrap();
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            let _outer = tracing::info_span!("train_run").entered();
            assert_eq!(traced_epoch(1), 2);
        });
        assert!(!path.exists(), "nothing under the final name before finish");
        trace.finish().unwrap();
        assert_eq!(dir_names(dir.path()), ["trace.json"], "no temp files left");
        assert_eq!(span_names(&path), ["train_run", "traced_epoch"]);
    }

    #[test]
    fn start_new_splits_the_trace_into_two_complete_files() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a.json"), dir.path().join("b.json"));
        let (layer, trace) = chrome_layer::<Registry>(&first).unwrap();
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            tracing::info_span!("run_a").in_scope(|| {});
            trace.start_new(&second).unwrap();
            tracing::info_span!("run_b").in_scope(|| {});
        });
        trace.finish().unwrap();
        assert_eq!(dir_names(dir.path()), ["a.json", "b.json"]);
        assert_eq!(span_names(&first), ["run_a"]);
        assert_eq!(span_names(&second), ["run_b"]);
    }

    #[test]
    fn full_subscriber_records_info_spans_despite_warn_console() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.json");
        let (sub, guard) = subscriber(Some(&path)).unwrap();
        assert!(guard.is_tracing());
        tracing::subscriber::with_default(sub, || {
            tracing::info_span!("stage").in_scope(|| {});
            tracing::trace_span!("too_fine").in_scope(|| {});
        });
        guard.finish().unwrap();
        assert_eq!(span_names(&path), ["stage"]);
    }

    #[test]
    fn no_trace_file_means_no_trace() {
        let (_sub, guard) = subscriber(None).unwrap();
        assert!(!guard.is_tracing());
        guard.finish().unwrap();
    }

    #[test]
    fn trace_file_in_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let err = chrome_layer::<Registry>(&file.join("trace.json"))
            .err()
            .expect("parent is a file");
        assert!(matches!(err, ReportError::Write { .. }), "{err}");
    }
}
