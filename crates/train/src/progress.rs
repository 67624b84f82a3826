//! Progress display: on a terminal, an epoch bar (with the run's ETA) and a step bar showing the
//! loss, the throughput and the epoch's ETA, which becomes a bar over the evaluation pass;
//! otherwise (logs, CI) plain lines: about ten per epoch, and one per finished epoch.

use crate::metrics::MetricsRow;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

/// Plain step lines per epoch when stdout is not a terminal.
const LINES_PER_EPOCH: usize = 10;

enum Output {
    Bars { multi: MultiProgress, epochs: ProgressBar, steps: ProgressBar, steps_per_epoch: usize },
    Lines { out: Box<dyn Write + Send>, step: usize, steps_per_epoch: usize },
}

pub struct Progress {
    output: Output,
    last_loss: Option<f64>,
    /// the throughput's unit: "images/s", "characters/s", "sequences/s"
    unit: String,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

const STEP_STYLE: &str = "step  {pos}/{len} [{bar:30}] {msg} (eta {eta})";

impl Progress {
    /// Bars when stdout is a terminal, lines on stdout otherwise; throughput in `unit` per second.
    pub fn new(epochs: usize, steps_per_epoch: usize, unit: &str) -> Progress {
        if std::io::stdout().is_terminal() {
            Progress::bars(epochs, steps_per_epoch, unit, ProgressDrawTarget::stdout())
        } else {
            Progress::lines(steps_per_epoch, unit, Box::new(std::io::stdout()))
        }
    }

    /// Plain lines written to `out`.
    pub fn lines(steps_per_epoch: usize, unit: &str, out: Box<dyn Write + Send>) -> Progress {
        let output = Output::Lines { out, step: 0, steps_per_epoch };
        Progress { output, last_loss: None, unit: format!("{unit}/s") }
    }

    /// Bars drawn to `target`.
    pub fn bars(epochs: usize, steps_per_epoch: usize, unit: &str, target: ProgressDrawTarget) -> Progress {
        let multi = MultiProgress::with_draw_target(target);
        let epoch_bar = multi.add(ProgressBar::new(epochs as u64));
        epoch_bar.set_style(style("epoch {pos}/{len} [{bar:30}] {elapsed_precise} (eta {eta})"));
        let steps = multi.add(ProgressBar::new(steps_per_epoch as u64));
        steps.set_style(style(STEP_STYLE));
        let output = Output::Bars { multi, epochs: epoch_bar, steps, steps_per_epoch };
        Progress { output, last_loss: None, unit: format!("{unit}/s") }
    }

    /// Resets the step bar for a new epoch.
    pub fn start_epoch(&mut self) {
        match &mut self.output {
            Output::Bars { steps, steps_per_epoch, .. } => {
                steps.set_style(style(STEP_STYLE));
                steps.reset();
                steps.set_length(*steps_per_epoch as u64);
            }
            Output::Lines { step, .. } => *step = 0,
        }
    }

    /// Advances a step; `loss` is the latest value read back, if any this step.
    pub fn step(&mut self, loss: Option<f64>, per_sec: f64) {
        if loss.is_some() {
            self.last_loss = loss;
        }
        let loss = self.last_loss.map_or_else(|| "-".to_string(), |l| format!("{l:.4}"));
        let message = format!("loss {loss}  {per_sec:.0} {}", self.unit);
        match &mut self.output {
            Output::Bars { steps, .. } => {
                steps.inc(1);
                steps.set_message(message);
            }
            Output::Lines { out, step, steps_per_epoch } => {
                *step += 1;
                let every = steps_per_epoch.div_ceil(LINES_PER_EPOCH).max(1);
                if *step % every == 0 && *step < *steps_per_epoch {
                    let _ = writeln!(out, "  step {step}/{steps_per_epoch}  {message}").and_then(|_| out.flush());
                }
            }
        }
    }

    /// The evaluation pass has done `done` of `total` batches (a bar on a terminal).
    pub fn eval(&mut self, done: usize, total: usize) {
        if let Output::Bars { steps, .. } = &self.output {
            if done <= 1 {
                steps.set_style(style("eval  {pos}/{len} [{bar:30}] (eta {eta})"));
                steps.reset();
                steps.set_length(total as u64);
            }
            steps.set_position(done as u64);
        }
    }

    /// Prints the epoch's line and advances the epoch bar.
    pub fn finish_epoch(&mut self, row: &MetricsRow, epochs: usize) {
        let line = epoch_line(row, epochs, &self.unit);
        if let Output::Bars { epochs, .. } = &self.output {
            epochs.inc(1);
        }
        self.message(&line);
    }

    /// A message (e.g. "resumed from ...", "stopping: loss is NaN") that does not garble the bars.
    pub fn message(&mut self, line: &str) {
        match &mut self.output {
            Output::Bars { multi, .. } => {
                let _ = multi.println(line);
            }
            Output::Lines { out, .. } => {
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

/// `epoch 3/10  train loss 0.1234 acc 96.12%  test loss 0.1012 acc 97.01%  lr 0.01  5123 images/s  12.3 s`
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
    line + &format!("  lr {:.3e}  {:.0} {unit}  {:.1} s", row.lr, row.throughput, row.seconds)
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
            throughput: 5123.4,
            seconds: 12.34,
        }
    }

    #[test]
    fn without_a_terminal_plain_lines_are_written() {
        let sink = Sink::default();
        let mut p = Progress::lines(20, "images", Box::new(sink.clone()));
        p.start_epoch();
        for _ in 0..20 {
            p.step(Some(0.5), 100.0);
        }
        p.eval(1, 3);
        p.finish_epoch(&row(1), 2);
        p.message("done");
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 9 + 2, "{text}");
        assert_eq!(lines[0], "  step 2/20  loss 0.5000  100 images/s");
        assert_eq!(lines[8], "  step 18/20  loss 0.5000  100 images/s");
        assert_eq!(lines[9], "epoch 1/2  train loss 0.1235 acc 96.12% acc 97.00%  lr 1.000e-2  5123 images/s  12.3 s");
        assert_eq!(lines[10], "done");
    }

    #[test]
    fn bars_count_steps_epochs_and_the_evaluation() {
        let mut p = Progress::bars(3, 4, "images", ProgressDrawTarget::hidden());
        p.start_epoch();
        p.step(None, 10.0);
        p.step(Some(1.25), 10.0);
        p.step(None, 10.0);
        let Output::Bars { steps, .. } = &p.output else { panic!("expected bars") };
        assert_eq!(steps.position(), 3);
        assert_eq!(steps.message(), "loss 1.2500  10 images/s", "the last known loss stays shown");
        p.eval(1, 40);
        p.eval(7, 40);
        let Output::Bars { steps, .. } = &p.output else { panic!("expected bars") };
        assert_eq!((steps.position(), steps.length()), (7, Some(40)));
        p.finish_epoch(&row(1), 3);
        p.start_epoch();
        let Output::Bars { epochs, steps, .. } = &p.output else { panic!("expected bars") };
        assert_eq!((epochs.position(), steps.position(), steps.length()), (1, 0, Some(4)));
        p.finish();
    }
}
