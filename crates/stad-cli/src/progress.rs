//! Progress bars (indicatif) and status lines, all on stderr so that stdout carries only a
//! command's requested output (predict's JSON lines).
//!
//! Bars draw only when stderr is a terminal; in logs each epoch gets one plain line instead.
//! `--quiet` silences both.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stad::{EpochSummary, TeacherCacheStatus, TrainObserver};

/// Where status output goes.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    /// Print nothing but errors and requested output.
    pub quiet: bool,
}

impl Console {
    /// A status line on stderr (nothing with `--quiet`).
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A warning on stderr (shown even with `--quiet`: it is about the results' meaning).
    pub fn warn(&self, message: impl AsRef<str>) {
        eprintln!("warning: {}", message.as_ref());
    }

    /// A bar of `len` steps; hidden with `--quiet` or when stderr is not a terminal.
    pub fn bar(&self, len: u64, template: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(
            Some(len),
            if self.quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("the templates are literals")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A bar over `len` images, labelled `prefix`.
    pub fn image_bar(&self, len: usize, prefix: &'static str) -> ProgressBar {
        let bar = self.bar(
            len as u64,
            "{prefix} [{bar:30}] {pos}/{len} images (ETA {eta})",
        );
        bar.set_prefix(prefix);
        bar
    }

    /// A line printed above `bar` when it draws, else on stderr (nothing with `--quiet`).
    pub fn line(&self, bar: &ProgressBar, message: String) {
        if self.quiet {
            return;
        }
        if bar.is_hidden() {
            eprintln!("{message}");
        } else {
            bar.println(message);
        }
    }
}

/// Training progress: one bar over all batches of all epochs (epoch, loss, images/s, ETA) and
/// one line per finished epoch.
pub struct TrainProgress {
    console: Console,
    bar: ProgressBar,
    epochs: usize,
    batch_size: usize,
    epoch_started: Instant,
    positioned: bool,
}

impl TrainProgress {
    /// Progress of `epochs` epochs of batches of (at most) `batch_size` images (the number
    /// of batches per epoch is learnt from the first batch).
    pub fn new(console: Console, epochs: usize, batch_size: usize) -> Self {
        let bar = console.bar(epochs as u64, "{prefix} [{bar:30}] {msg} (ETA {eta})");
        bar.set_prefix("train");
        Self {
            console,
            bar,
            epochs,
            batch_size,
            epoch_started: Instant::now(),
            positioned: false,
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl TrainObserver for TrainProgress {
    fn on_batch(&mut self, epoch: usize, batch: usize, batches: usize, loss: f32) {
        let done = epoch * batches + batch + 1;
        if !self.positioned {
            self.bar.set_length((self.epochs * batches) as u64);
            self.bar.set_position(done as u64);
            // A resumed run starts mid-way: estimate the ETA from this session's pace only.
            self.bar.reset_eta();
            self.positioned = true;
        }
        self.bar.set_position(done as u64);
        let seconds = self.epoch_started.elapsed().as_secs_f64().max(1e-9);
        let rate = ((batch + 1) * self.batch_size) as f64 / seconds;
        self.bar.set_message(format!(
            "epoch {}/{} batch {}/{} loss {loss:.4} {rate:.1} img/s",
            epoch + 1,
            self.epochs,
            batch + 1,
            batches
        ));
    }

    fn on_teacher_cache(&mut self, status: &TeacherCacheStatus) {
        let mib = |bytes: usize| bytes as f64 / f64::from(1 << 20);
        let message = if status.complete() {
            format!(
                "teacher features: all {} images cached ({:.0} MiB), computed once",
                status.total,
                mib(status.cached * status.bytes_per_image)
            )
        } else {
            format!(
                "teacher features: {} of {} images fit the {:.0} MiB cache \
                 (--teacher-cache-mb); the other {} are recomputed every epoch",
                status.cached,
                status.total,
                mib(status.budget_bytes),
                status.total - status.cached
            )
        };
        self.console.line(&self.bar, message);
    }

    fn on_epoch(&mut self, s: &EpochSummary) {
        // The next epoch's first batch starts now (after the hold-out scoring).
        self.epoch_started = Instant::now();
        self.console.line(
            &self.bar,
            format!(
                "epoch {:>3}/{}: loss {:.4}, hold-out score {}, {:.1} s ({:.1} img/s)",
                s.epoch + 1,
                self.epochs,
                s.train_loss,
                s.validation_score.map_or("-".into(), |v| format!("{v:.5}")),
                s.seconds,
                s.images_per_second
            ),
        );
    }
}
