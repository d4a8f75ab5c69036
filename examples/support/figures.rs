//! Shared by the load generators: latency percentiles, rates and medians of per-round figures.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The `p` quantile of `sorted`, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Rate and latency percentiles of one run of `latencies.len()` requests over `elapsed`.
pub fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median, min and max of per-round ratios.
pub fn spread(ratios: &[f64]) -> (f64, f64, f64) {
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    (median(ratios.to_vec()), low, high)
}

/// CPU time the whole machine has spent busy and stolen (by the hypervisor), in seconds, from
/// `/proc/stat`, and what each program (by process name: `postgres`, the portal, the load
/// generator) used. The difference over a phase says what the phase cost in CPU, which a busy
/// neighbour on a shared machine disturbs far less than it disturbs a rate.
#[derive(Debug, Clone, Default)]
pub struct CpuTime {
    pub busy: f64,
    pub stolen: f64,
    pub programs: std::collections::BTreeMap<String, f64>,
}

/// Clock ticks per second in `/proc` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

impl CpuTime {
    pub fn now() -> CpuTime {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().unwrap_or(0.0))
            .collect();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0) / TICKS;
        // user, nice, system, idle, iowait, irq, softirq, steal
        CpuTime {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            stolen: at(7),
            programs: per_program(),
        }
    }

    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            busy: self.busy - earlier.busy,
            stolen: self.stolen - earlier.stolen,
            programs: self
                .programs
                .iter()
                .map(|(name, t)| (name.clone(), t - earlier.programs.get(name).unwrap_or(&0.0)))
                .collect(),
        }
    }

    /// CPU microseconds per unit of work (`units` over the phase) of the machine and of each of
    /// `programs`.
    pub fn per_unit(&self, units: usize, programs: &[&str]) -> String {
        let per = |t: f64| t * 1e6 / units.max(1) as f64;
        let mut parts = vec![format!("machine {:.0}", per(self.busy))];
        for name in programs {
            parts.push(format!(
                "{name} {:.0}",
                per(self.programs.get(*name).copied().unwrap_or(0.0))
            ));
        }
        parts.join(", ")
    }
}

/// User and system CPU seconds of every process, summed by process name.
fn per_program() -> std::collections::BTreeMap<String, f64> {
    let mut totals = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (name) state ... utime stime: fields 14 and 15, counted after the name's ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        *totals.entry(name).or_insert(0.0) += (ticks(11) + ticks(12)) / TICKS;
    }
    totals
}
