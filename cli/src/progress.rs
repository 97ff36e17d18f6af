//! Progress bars (indicatif) for the engine's `Progress` trait, drawn only on a terminal: the
//! overall bar, and under it one bar per item in flight (a blob being sent), each cleared when
//! it is done. Every bar says what it is doing (the command's label until the engine names a
//! step), and shows a rate and an ETA only once they mean something (`RATE_AFTER`).

use cairn_engine::{ItemProgress, Unit};
use indicatif::{HumanBytes, HumanCount, HumanDuration, MultiProgress, ProgressBar};
use indicatif::{ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A rate measured over less time, or over less than one step, says nothing ("9 B/s, eta
/// 38w" in the first milliseconds): until then a bar shows none.
const RATE_AFTER: Duration = Duration::from_secs(2);

pub struct Bar {
    /// The overall bar and the set it heads; `None` when nothing is drawn.
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl Bar {
    /// A bar on stderr labelled `label` (counting bytes until the engine says otherwise), or
    /// nothing when stderr is not a terminal or `quiet`.
    pub fn new(quiet: bool, label: &str) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar { bars: None };
        }
        let multi = MultiProgress::new();
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(style(Unit::Bytes));
        bar.set_message(label.to_string());
        Bar {
            bars: Some((multi, bar)),
        }
    }
}

/// The bar's template for what it counts.
fn style(unit: Unit) -> ProgressStyle {
    let template = match unit {
        Unit::Bytes => "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {known_rate}",
        Unit::Items => "{msg:20!} [{bar:30}] {human_pos}/{human_len} {known_rate}",
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
        .with_key(
            "known_rate",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let rate = rate_text(state.elapsed(), state.pos(), state.len(), unit);
                let _ = w.write_str(&rate);
            },
        )
}

/// "12.5 MiB/s eta 40s" once `RATE_AFTER` has passed and something was done (the ETA only
/// with a total), else nothing.
fn rate_text(elapsed: Duration, pos: u64, len: Option<u64>, unit: Unit) -> String {
    if elapsed < RATE_AFTER || pos == 0 {
        return String::new();
    }
    let per_second = pos as f64 / elapsed.as_secs_f64();
    let mut text = match unit {
        Unit::Bytes => format!("{}/s", HumanBytes(per_second as u64)),
        Unit::Items => format!("{}/s", HumanCount(per_second as u64)),
    };
    if let Some(len) = len.filter(|&len| len >= pos) {
        let left = Duration::from_secs_f64((len - pos) as f64 / per_second);
        text += &format!(" eta {}", HumanDuration(left));
    }
    text
}

impl cairn_engine::Progress for Bar {
    fn set_length(&self, total: u64, unit: Unit) {
        if let Some((_, b)) = &self.bars {
            // A new phase after a finished one (push: the export, then the upload).
            if b.is_finished() {
                b.reset();
            }
            b.set_style(style(unit));
            b.set_length(total);
        }
    }

    fn inc(&self, delta: u64) {
        if let Some((_, b)) = &self.bars {
            b.inc(delta);
        }
    }

    fn set_message(&self, message: &str) {
        if let Some((_, b)) = &self.bars {
            b.set_message(message.to_string());
        }
    }

    fn finish(&self) {
        if let Some((_, b)) = &self.bars {
            b.finish_and_clear();
        }
    }

    fn item(&self, label: &str, total: u64, unit: Unit) -> Box<dyn ItemProgress> {
        let Some((multi, _)) = &self.bars else {
            return Box::new(cairn_engine::NoProgress);
        };
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(style(unit));
        bar.set_message(format!("  {label}"));
        Box::new(ItemBar {
            multi: multi.clone(),
            bar,
        })
    }
}

/// One item's bar, under the overall bar; removed when finished or dropped.
struct ItemBar {
    multi: MultiProgress,
    bar: ProgressBar,
}

impl ItemProgress for ItemBar {
    fn inc(&self, delta: u64) {
        self.bar.inc(delta);
    }

    fn finish(&self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
            self.multi.remove(&self.bar);
        }
    }
}

impl Drop for ItemBar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `cairn optimize` without a terminal (from cron, a service): no bar, but a line on stderr
/// when the work is known and after every round (the engine reports each round's bytes with
/// one `inc`), so a log shows it is alive and how far it got.
pub struct RoundLog {
    start: Instant,
    total: AtomicU64,
    done: AtomicU64,
    rounds: AtomicU64,
}

impl RoundLog {
    /// `None` when stderr is a terminal (a `Bar` draws there) or `quiet`.
    pub fn unless_terminal(quiet: bool) -> Option<RoundLog> {
        (!quiet && !std::io::stderr().is_terminal()).then(|| RoundLog {
            start: Instant::now(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
        })
    }
}

impl cairn_engine::Progress for RoundLog {
    fn set_length(&self, total: u64, _unit: Unit) {
        self.total.store(total, Ordering::Relaxed);
        eprintln!(
            "optimize: {} of blobs below the target",
            crate::output::bytes(total)
        );
    }

    fn inc(&self, delta: u64) {
        let round = self.rounds.fetch_add(1, Ordering::Relaxed) + 1;
        let done = self.done.fetch_add(delta, Ordering::Relaxed) + delta;
        let total = self.total.load(Ordering::Relaxed);
        eprintln!(
            "optimize: round {round} done: {} of {} rewritten ({}) in {:.0} s",
            crate::output::bytes(done),
            crate::output::bytes(total),
            crate::output::percent(done, total),
            self.start.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_or_eta_until_it_means_something() {
        let mib = 1 << 20;
        let early = Duration::from_millis(300);
        assert_eq!(rate_text(early, 3, Some(200 * mib), Unit::Bytes), "");
        let later = Duration::from_secs(4);
        assert_eq!(rate_text(later, 0, Some(200 * mib), Unit::Bytes), "");
        assert_eq!(
            rate_text(later, 40 * mib, Some(200 * mib), Unit::Bytes),
            "10.00 MiB/s eta 16 seconds"
        );
        assert_eq!(rate_text(later, 8, None, Unit::Items), "2/s");
    }
}
