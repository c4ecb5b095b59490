//! Where the verbs' output goes, with every write error handled (nothing here panics).
//!
//! Everything for stdout goes through [`stdout`] (a verb's whole output, locked and buffered)
//! or [`line()`] (one result line of a long run, shown at once); both return [`io::Result`]. A
//! closed pipe (`runner check experiments/*.toml | head -1`) comes back as an [`io::Error`] of
//! kind `BrokenPipe`, which `main` turns into a quiet exit 0 ([`is_broken_pipe`]), as ripgrep
//! does. Diagnostics, warnings and progress lines go to stderr through
//! [`ewrite!`](crate::ewrite!) and [`ewriteln!`](crate::ewriteln!), which ignore a failed write:
//! there is nowhere left to report it.

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

/// A verb's stdout: locked and block-buffered. Call [`Out::finish`] at the end to flush and
/// see the error; dropped without it (on an early error return), it flushes and ignores a
/// failure.
pub struct Out(BufWriter<StdoutLock<'static>>);

/// Locks stdout for one verb's output. Hold it only while writing that output: a long-running
/// verb writes its result lines with [`line()`] instead.
pub fn stdout() -> Out {
    Out(BufWriter::with_capacity(64 * 1024, io::stdout().lock()))
}

impl Out {
    /// Flushes what is buffered; a closed pipe is an error of kind `BrokenPipe`.
    pub fn finish(mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Writes `args` and a newline to stdout and flushes: a result line that should show as soon
/// as it is known (the outcome of a training run). [`outln!`](crate::outln!) calls this.
pub fn line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut w = io::stdout().lock();
    w.write_fmt(args)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Writes `args` to stderr, ignoring a failure. [`ewrite!`](crate::ewrite!) calls this.
pub fn to_stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Writes `args` and a newline to stderr, ignoring a failure. [`ewriteln!`](crate::ewriteln!)
/// calls this.
pub fn to_stderr_line(args: fmt::Arguments<'_>) {
    let mut w = io::stderr().lock();
    let _ = w.write_fmt(args).and_then(|()| w.write_all(b"\n"));
}

/// Whether `e` comes from writing to a closed pipe: an [`io::Error`] of kind `BrokenPipe`
/// anywhere in its chain (also inside a `serde_json` error). `main` exits 0 quietly then.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// `println!` that returns the write's [`io::Result`] instead of panicking: one line to stdout
/// through [`line`](crate::cli::out::line), flushed at once.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))
    };
}

/// `eprint!` that ignores a failed write (a closed stderr) instead of panicking.
#[macro_export]
macro_rules! ewrite {
    ($($arg:tt)*) => {
        $crate::cli::out::to_stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` that ignores a failed write (a closed stderr) instead of panicking.
#[macro_export]
macro_rules! ewriteln {
    () => {
        $crate::cli::out::to_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::to_stderr_line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_found_anywhere_in_the_chain() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::from(pipe())));
        assert!(is_broken_pipe(
            &anyhow::Error::from(pipe()).context("writing the report")
        ));
        let json = serde_json::to_writer(Closed, &[1, 2, 3]).unwrap_err();
        assert!(is_broken_pipe(&anyhow::Error::from(json)));
        assert!(!is_broken_pipe(&anyhow::Error::from(io::Error::from(
            io::ErrorKind::NotFound
        ))));
        assert!(!is_broken_pipe(&anyhow::anyhow!("Broken pipe")));
    }

    /// A writer whose reader has gone.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
