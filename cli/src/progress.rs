//! Progress bars (indicatif) for the engine's `Progress` trait, drawn only on a terminal: the
//! overall bar, and under it one bar per item in flight (a blob being sent), each cleared when
//! it is done.

use cairn_engine::{ItemProgress, Unit};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Bar {
    /// The overall bar and the set it heads; `None` when nothing is drawn.
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl Bar {
    /// A bar on stderr (counting bytes until the engine says otherwise), or nothing when stderr is not a terminal or `quiet`.
    pub fn new(quiet: bool) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar { bars: None };
        }
        let multi = MultiProgress::new();
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(style(Unit::Bytes));
        Bar {
            bars: Some((multi, bar)),
        }
    }
}

/// The bar's template for what it counts.
fn style(unit: Unit) -> ProgressStyle {
    let template = match unit {
        Unit::Bytes => "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        Unit::Items => "{msg:20!} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta}",
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
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
