//! The machine a bench ran on, for its report: cores, CPU, memory, and the load average, which
//! makes wall times longer when other work runs.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    /// `/proc/loadavg`'s 1-minute figure when the run started and when it ended: other work
    /// on the machine makes wall times longer.
    pub load_average_start: f64,
    pub load_average_end: f64,
}

/// The 1-minute load average (0 when unknown).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0.0)
}

/// The machine now, given the load average when the run started.
pub fn machine(load_average_start: f64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, key: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        memory_bytes: field(&meminfo, "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or(0),
        load_average_start,
        load_average_end: load_average(),
    }
}
