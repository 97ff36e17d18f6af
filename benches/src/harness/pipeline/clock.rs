//! Measuring a stage: CPU seconds (this process's CPU clock, all threads; the stages run on
//! this one thread) and wall seconds, as spans that add up and subtract. A stage's span is
//! what its loop took minus the spans it spent loading its input (`window.rs`) or writing
//! something only the next stage needs.

use super::sys;
use serde::Serialize;
use std::time::{Duration, Instant};

/// CPU and wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Span {
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl Span {
    pub fn add(&mut self, other: Span) {
        self.cpu_s += other.cpu_s;
        self.wall_s += other.wall_s;
    }

    /// `self` less `other`, never below zero.
    pub fn minus(self, other: Span) -> Span {
        Span {
            cpu_s: (self.cpu_s - other.cpu_s).max(0.0),
            wall_s: (self.wall_s - other.wall_s).max(0.0),
        }
    }
}

/// A point in time on both clocks.
#[derive(Clone, Copy)]
pub struct Mark {
    cpu: Duration,
    wall: Instant,
}

impl Mark {
    pub fn now() -> Mark {
        Mark {
            cpu: sys::process_cpu(),
            wall: Instant::now(),
        }
    }

    /// The span from this mark to now.
    pub fn elapsed(&self) -> Span {
        Span {
            cpu_s: sys::process_cpu().saturating_sub(self.cpu).as_secs_f64(),
            wall_s: self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// Runs `f`, adding the span it took to `spent`.
pub fn timed<T>(spent: &mut Span, f: impl FnOnce() -> T) -> T {
    let mark = Mark::now();
    let result = f();
    spent.add(mark.elapsed());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_measure_work() {
        let mut spent = Span::default();
        let sum = timed(&mut spent, || {
            (0..2_000_000u64).fold(0u64, |a, b| a.wrapping_add(std::hint::black_box(b) * b))
        });
        assert!(sum > 0);
        assert!(spent.cpu_s > 0.0 && spent.wall_s > 0.0, "{spent:?}");
        let less = spent.minus(Span {
            cpu_s: 1e9,
            wall_s: 0.0,
        });
        assert_eq!(less.cpu_s, 0.0);
        assert_eq!(less.wall_s, spent.wall_s);
    }
}
