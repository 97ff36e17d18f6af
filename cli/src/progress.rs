//! Progress bars (indicatif) for the engine's `Progress` trait, drawn only on a terminal.

use cairn_engine::Unit;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar on stderr (counting bytes until the engine says otherwise), or nothing when stderr is not a terminal or `quiet`.
    pub fn new(quiet: bool) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let bar = ProgressBar::new(0);
        bar.set_style(style(Unit::Bytes));
        Bar { bar: Some(bar) }
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
        if let Some(b) = &self.bar {
            b.set_style(style(unit));
            b.set_length(total);
        }
    }

    fn inc(&self, delta: u64) {
        if let Some(b) = &self.bar {
            b.inc(delta);
        }
    }

    fn set_message(&self, message: &str) {
        if let Some(b) = &self.bar {
            b.set_message(message.to_string());
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
