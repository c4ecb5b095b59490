//! Progress output for training: a live bar on a terminal, plain append-only lines otherwise
//! (a live display in a log file or CI is unreadable, see burn issue #2302).

use std::io::{self, IsTerminal, Write};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::EpochMetrics;

/// Progress of one epoch's pass over the data.
///
/// On a terminal (stderr) it draws an indicatif bar with the loss and images per second;
/// otherwise it writes a line such as `Train: [6400/60000 (11%)]  Loss: 0.512  1234 img/s` to
/// stderr every `every_steps` calls to [`Progress::step`], and nothing else.
pub struct Progress {
    out: Output,
    label: &'static str,
    total: usize,
    every: usize,
    steps: usize,
    started: Instant,
}

enum Output {
    Bar(ProgressBar),
    Plain(Box<dyn Write + Send>),
}

impl Progress {
    /// Starts progress for epoch `epoch` of `epochs` over `total_images` images.
    ///
    /// `every_steps` is how often plain mode writes a line (0: never); `force_plain` picks plain
    /// lines even on a terminal.
    pub fn new(
        total_images: usize,
        epoch: usize,
        epochs: usize,
        every_steps: usize,
        force_plain: bool,
    ) -> Self {
        if force_plain || !io::stderr().is_terminal() {
            return Self::plain_to(Box::new(io::stderr()), total_images, every_steps);
        }
        // The template is a constant, so a parse error is a bug here; fall back to the default.
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} ({percent}%)  {msg}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar =
            ProgressBar::with_draw_target(Some(total_images as u64), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(format!("Epoch {epoch}/{epochs}"));
        Self::with_output(Output::Bar(bar), total_images, every_steps)
    }

    /// Plain mode writing to `out` (tests capture the lines this way).
    pub(crate) fn plain_to(out: Box<dyn Write + Send>, total_images: usize, every: usize) -> Self {
        Self::with_output(Output::Plain(out), total_images, every)
    }

    fn with_output(out: Output, total: usize, every: usize) -> Self {
        Self {
            out,
            label: "Train",
            total,
            every,
            steps: 0,
            started: Instant::now(),
        }
    }

    /// Names the pass in plain lines (default `Train`; e.g. `Eval`).
    pub fn with_label(mut self, label: &'static str) -> Self {
        self.label = label;
        if let Output::Bar(bar) = &self.out {
            bar.set_prefix(format!("{} {label}", bar.prefix()));
        }
        self
    }

    /// Records one step: `images_done` images so far this epoch, `loss` the latest batch loss.
    pub fn step(&mut self, images_done: usize, loss: f64) {
        self.steps += 1;
        let per_sec = images_done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        match &mut self.out {
            Output::Bar(bar) => {
                bar.set_position(images_done as u64);
                bar.set_message(format!("loss {loss:.3}  {per_sec:.0} img/s"));
            }
            Output::Plain(out) => {
                if self.every > 0 && self.steps.is_multiple_of(self.every) {
                    let line = plain_line(self.label, images_done, self.total, loss, per_sec);
                    // Progress output is best effort; a closed stderr must not stop training.
                    let _ = writeln!(out, "{line}");
                }
            }
        }
    }

    /// Ends the pass: clears the bar (plain mode writes nothing).
    pub fn finish(self) {
        if let Output::Bar(bar) = &self.out {
            bar.finish_and_clear();
        }
    }

    /// Ends the pass and writes the epoch's one-line summary, [`epoch_line`], to stderr.
    pub fn epoch_done(mut self, metrics: &EpochMetrics, epochs: usize) {
        let line = epoch_line(metrics, epochs);
        match &mut self.out {
            Output::Bar(bar) => {
                bar.finish_and_clear();
                let _ = writeln!(io::stderr(), "{line}");
            }
            Output::Plain(out) => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
}

/// One plain progress line: `Train: [6400/60000 (11%)]  Loss: 0.512  1234 img/s`.
pub fn plain_line(label: &str, done: usize, total: usize, loss: f64, per_sec: f64) -> String {
    // Rounded, like PyTorch's `{:.0f}` of `100. * done / total`.
    let percent = (done * 100 + total / 2).checked_div(total).unwrap_or(100);
    format!("{label}: [{done}/{total} ({percent}%)]  Loss: {loss:.3}  {per_sec:.0} img/s")
}

/// The one-line summary of an epoch:
/// `Epoch 1/10  train loss 0.512 acc 84.12%  test loss 0.301 acc 91.20%  12.3s  4,500 img/s`,
/// with `  ema loss 0.298 acc 91.31%` after the test results when the run keeps a moving
/// average of the weights.
pub fn epoch_line(m: &EpochMetrics, epochs: usize) -> String {
    let val = match (m.val_loss, m.val_acc) {
        (Some(l), Some(a)) => format!("  val loss {l:.3} acc {a:.2}%"),
        _ => String::new(),
    };
    let ema = match (m.ema_test_loss, m.ema_test_acc) {
        (Some(loss), Some(acc)) => format!("  ema loss {loss:.3} acc {acc:.2}%"),
        _ => String::new(),
    };
    format!(
        "Epoch {}/{epochs}  train loss {:.3} acc {:.2}%{val}  test loss {:.3} acc {:.2}%{ema}  {:.1}s  {} img/s",
        m.epoch,
        m.train_loss,
        m.train_acc,
        m.test_loss,
        m.test_acc,
        m.seconds,
        group_thousands(m.train_images_per_sec.round() as u64),
    )
}

/// `4500` -> `4,500`.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn metrics() -> EpochMetrics {
        EpochMetrics {
            epoch: 1,
            train_loss: 0.5123,
            train_acc: 84.1249,
            test_loss: 0.30149,
            test_acc: 91.2,
            lr: 1e-3,
            seconds: 12.34,
            train_images_per_sec: 4_499.6,
            eval_images_per_sec: 9_000.0,
            val_loss: None,
            val_acc: None,
            ema_test_loss: None,
            ema_test_acc: None,
        }
    }

    #[test]
    fn epoch_line_format() {
        assert_eq!(
            epoch_line(&metrics(), 10),
            "Epoch 1/10  train loss 0.512 acc 84.12%  test loss 0.301 acc 91.20%  12.3s  4,500 img/s"
        );
        let with_val = EpochMetrics {
            val_loss: Some(0.25),
            val_acc: Some(92.5),
            ..metrics()
        };
        assert_eq!(
            epoch_line(&with_val, 10),
            "Epoch 1/10  train loss 0.512 acc 84.12%  val loss 0.250 acc 92.50%  test loss 0.301 acc 91.20%  12.3s  4,500 img/s"
        );
        let with_ema = EpochMetrics {
            ema_test_loss: Some(0.2984),
            ema_test_acc: Some(91.314),
            ..metrics()
        };
        assert_eq!(
            epoch_line(&with_ema, 10),
            "Epoch 1/10  train loss 0.512 acc 84.12%  test loss 0.301 acc 91.20%  ema loss 0.298 acc 91.31%  12.3s  4,500 img/s"
        );
    }

    #[test]
    fn plain_line_format() {
        let cases = [
            (
                ("Train", 6400, 60000, 0.5123, 1234.4),
                "Train: [6400/60000 (11%)]  Loss: 0.512  1234 img/s",
                "mid-epoch, percent rounds to nearest",
            ),
            (
                ("Train", 60000, 60000, 0.1, 0.0),
                "Train: [60000/60000 (100%)]  Loss: 0.100  0 img/s",
                "end of epoch",
            ),
            (
                ("Eval", 0, 0, 2.0796, 10.0),
                "Eval: [0/0 (100%)]  Loss: 2.080  10 img/s",
                "empty pass does not divide by zero",
            ),
        ];
        for ((label, done, total, loss, per_sec), want, why) in cases {
            assert_eq!(plain_line(label, done, total, loss, per_sec), want, "{why}");
        }
    }

    #[test]
    fn thousands() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (4_500, "4,500"),
            (1_234_567, "1,234,567"),
        ];
        for (n, want) in cases {
            assert_eq!(group_thousands(n), want, "{n}");
        }
    }

    #[test]
    fn plain_mode_writes_every_n_steps_and_the_epoch_line_only() {
        let sink = Sink::default();
        let mut p = Progress::plain_to(Box::new(sink.clone()), 1000, 3).with_label("Train");
        for step in 1..=10 {
            p.step(step * 100, 0.25);
        }
        p.epoch_done(&metrics(), 10);
        let text = sink.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "steps 3, 6, 9 and the epoch line:\n{text}");
        for (line, done) in lines
            .iter()
            .zip(["300/1000 (30%)", "600/1000 (60%)", "900/1000 (90%)"])
        {
            assert!(
                line.starts_with(&format!("Train: [{done}]  Loss: 0.250  ")),
                "{line}"
            );
            assert!(line.ends_with(" img/s"), "{line}");
        }
        assert_eq!(lines[3], epoch_line(&metrics(), 10));
        assert!(
            !text.contains('\r') && !text.contains('\x1b'),
            "append-only, no escapes"
        );
    }

    #[test]
    fn plain_mode_with_every_zero_writes_no_step_lines() {
        let sink = Sink::default();
        let mut p = Progress::plain_to(Box::new(sink.clone()), 10, 0);
        p.step(5, 1.0);
        p.finish();
        assert_eq!(sink.text(), "");
    }
}
