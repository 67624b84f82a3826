//! Progress display: on a terminal, an epoch bar and a step bar showing the loss and the
//! throughput (indicatif); otherwise (logs, CI) nothing but one line per epoch.

use crate::metrics::MetricsRow;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

enum Output {
    Bars { multi: MultiProgress, epochs: ProgressBar, steps: ProgressBar },
    Lines(Box<dyn Write + Send>),
}

pub struct Progress {
    output: Output,
    last_loss: Option<f64>,
    /// the throughput's unit: "img/s", or "char/s" and "seq/s" for the sequence tasks
    unit: &'static str,
}

impl Progress {
    /// Bars when stdout is a terminal, epoch lines on stdout otherwise.
    pub fn new(epochs: usize, steps_per_epoch: usize) -> Progress {
        if std::io::stdout().is_terminal() {
            Progress::bars(epochs, steps_per_epoch, ProgressDrawTarget::stdout())
        } else {
            Progress::lines(Box::new(std::io::stdout()))
        }
    }

    /// Only the epoch lines, written to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Progress {
        Progress { output: Output::Lines(out), last_loss: None, unit: "img/s" }
    }

    /// Bars drawn to `target`.
    pub fn bars(epochs: usize, steps_per_epoch: usize, target: ProgressDrawTarget) -> Progress {
        let multi = MultiProgress::with_draw_target(target);
        let style = |template: &str| {
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ")
        };
        let epoch_bar = multi.add(ProgressBar::new(epochs as u64));
        epoch_bar.set_style(style("epoch {pos}/{len} [{bar:30}] {elapsed_precise} (eta {eta})"));
        let steps = multi.add(ProgressBar::new(steps_per_epoch as u64));
        steps.set_style(style("step  {pos}/{len} [{bar:30}] {msg}"));
        Progress { output: Output::Bars { multi, epochs: epoch_bar, steps }, last_loss: None, unit: "img/s" }
    }

    /// Shows throughput in `unit` (the number passed as `images_per_sec` counts those).
    pub fn with_unit(self, unit: &'static str) -> Progress {
        Progress { unit, ..self }
    }

    /// Resets the step bar for a new epoch (resuming: at step `first_step`).
    pub fn start_epoch(&mut self, first_step: usize) {
        if let Output::Bars { steps, .. } = &self.output {
            steps.reset();
            steps.set_position(first_step as u64);
        }
    }

    /// Advances the step bar; `loss` is the latest value read back, if any this step.
    pub fn step(&mut self, loss: Option<f64>, images_per_sec: f64) {
        if loss.is_some() {
            self.last_loss = loss;
        }
        if let Output::Bars { steps, .. } = &self.output {
            steps.inc(1);
            let loss = self.last_loss.map_or_else(|| "-".to_string(), |l| format!("{l:.4}"));
            steps.set_message(format!("loss {loss}  {images_per_sec:.0} {}", self.unit));
        }
    }

    /// Prints the epoch's line and advances the epoch bar.
    pub fn finish_epoch(&mut self, row: &MetricsRow, epochs: usize) {
        let line = epoch_line(row, epochs, self.unit);
        match &mut self.output {
            Output::Bars { multi, epochs, .. } => {
                let _ = multi.println(line);
                epochs.inc(1);
            }
            Output::Lines(out) => {
                let _ = writeln!(out, "{line}").and_then(|_| out.flush());
            }
        }
    }

    /// A message (e.g. "resumed from ...", "stopping: loss is NaN") that does not garble the bars.
    pub fn message(&mut self, line: &str) {
        match &mut self.output {
            Output::Bars { multi, .. } => {
                let _ = multi.println(line);
            }
            Output::Lines(out) => {
                let _ = writeln!(out, "{line}").and_then(|_| out.flush());
            }
        }
    }

    /// Removes the bars.
    pub fn finish(&mut self) {
        if let Output::Bars { epochs, steps, .. } = &self.output {
            steps.finish_and_clear();
            epochs.finish();
        }
    }
}

/// `epoch 3/10  train loss 0.1234 acc 96.12%  test loss 0.1012 acc 97.01%  lr 0.01  5123 img/s  12.3 s`
/// (`unit` in place of `img/s`)
pub fn epoch_line(row: &MetricsRow, epochs: usize, unit: &str) -> String {
    let mut line = format!("epoch {}/{epochs}  train loss {:.4}", row.epoch, row.train_loss);
    if let Some(a) = row.train_acc {
        line += &format!(" acc {:.2}%", a * 100.0);
    }
    if let Some(l) = row.test_loss {
        line += &format!("  test loss {l:.4}");
    }
    if let Some(a) = row.test_acc {
        line += &format!(" acc {:.2}%", a * 100.0);
    }
    line + &format!("  lr {:.3e}  {:.0} {unit}  {:.1} s", row.lr, row.images_per_sec, row.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn row(epoch: usize) -> MetricsRow {
        MetricsRow {
            epoch,
            step: 10,
            train_loss: 0.123456,
            train_acc: Some(0.9612),
            test_loss: None,
            test_acc: Some(0.97),
            lr: 0.01,
            images_per_sec: 5123.4,
            seconds: 12.34,
        }
    }

    #[test]
    fn without_a_terminal_only_epoch_lines_are_written() {
        let sink = Sink::default();
        let mut p = Progress::lines(Box::new(sink.clone()));
        p.start_epoch(0);
        for _ in 0..5 {
            p.step(Some(0.5), 100.0);
        }
        p.finish_epoch(&row(1), 2);
        p.message("done");
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "epoch 1/2  train loss 0.1235 acc 96.12% acc 97.00%  lr 1.000e-2  5123 img/s  12.3 s\ndone\n");
    }

    #[test]
    fn bars_count_steps_and_epochs() {
        let mut p = Progress::bars(3, 4, ProgressDrawTarget::hidden());
        p.start_epoch(1);
        p.step(None, 10.0);
        p.step(Some(1.25), 10.0);
        p.step(None, 10.0);
        let Output::Bars { steps, .. } = &p.output else { panic!("expected bars") };
        assert_eq!(steps.position(), 4);
        assert_eq!(steps.message(), "loss 1.2500  10 img/s", "the last known loss stays shown");
        p.finish_epoch(&row(1), 3);
        let Output::Bars { epochs, .. } = &p.output else { panic!("expected bars") };
        assert_eq!(epochs.position(), 1);
        let mut chars = Progress::bars(1, 2, ProgressDrawTarget::hidden()).with_unit("char/s");
        chars.step(Some(2.0), 300.0);
        let Output::Bars { steps, .. } = &chars.output else { panic!("expected bars") };
        assert_eq!(steps.message(), "loss 2.0000  300 char/s");
        p.finish();
    }
}
