//! What the kernel knows about CPU time and memory, read from /proc. The bench's own client and
//! origin run as named threads of this process, so their CPU is summed per thread name; the
//! proxy is a child process and is read as a whole (all its threads).

/// Thread-name prefixes of the bench's two runtimes (the kernel keeps 15 bytes of a name).
pub(crate) const CLIENT_THREADS: &str = "e2e-client";
pub(crate) const ORIGIN_THREADS: &str = "e2e-origin";

/// CPU seconds of one process (all threads, plus reaped children): utime + stime + cutime +
/// cstime from /proc/PID/stat.
pub(crate) fn process_cpu(pid: u32) -> Option<f64> {
    stat_cpu(
        &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
        true,
    )
}

/// CPU seconds of the threads of this process whose name starts with `prefix`. A thread that
/// has already exited is not counted, so the bench keeps its runtimes alive for the whole run.
pub(crate) fn threads_cpu(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end().starts_with(prefix))
        })
        .filter_map(|task| {
            stat_cpu(
                &std::fs::read_to_string(task.path().join("stat")).ok()?,
                false,
            )
        })
        .sum()
}

/// Fields after the command name (which may contain spaces and parentheses) are split by
/// spaces; utime is field 14 of the line, i.e. index 11 after the state.
fn stat_cpu(stat: &str, with_children: bool) -> Option<f64> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let take = if with_children { 4 } else { 2 };
    let mut ticks = 0u64;
    for field in fields.get(11..11 + take)? {
        ticks += field.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / ticks_per_second())
}

fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// A `/proc/PID/status` value in bytes (the file gives kB), e.g. `VmRSS` or `VmHWM`.
pub(crate) fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak resident set size (VmHWM) to the current one, so that the next reading is
/// the peak of the next workload only.
pub(crate) fn reset_peak_rss(pid: u32) -> Result<(), std::io::Error> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Busy and total jiffies of the whole machine (all cores), from the first line of /proc/stat.
/// Idle and iowait count as not busy; steal counts as busy for the guest that lost it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MachineTicks {
    pub(crate) total: u64,
    pub(crate) idle: u64,
}

pub(crate) fn machine_ticks() -> MachineTicks {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return MachineTicks::default();
    };
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    MachineTicks {
        total: values.iter().sum(),
        idle,
    }
}

/// Share of all cores that was busy between two readings (0.0 to 1.0).
pub(crate) fn busy_share(before: MachineTicks, after: MachineTicks) -> f64 {
    let total = after.total.saturating_sub(before.total);
    let idle = after.idle.saturating_sub(before.idle);
    if total == 0 {
        return 0.0;
    }
    total.saturating_sub(idle) as f64 / total as f64
}

/// One-line description of this machine: cores, CPU model, memory, kernel.
pub(crate) fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib >> 20);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {mem_gib} GiB RAM, Linux {}",
        kernel.trim()
    )
}

/// The 1-, 5- and 15-minute load averages, as the kernel prints them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Raises this process's open-file limit to at least `want`; children (the proxy) inherit it.
/// Root may raise the hard limit too; anyone else gets at most the hard limit. Returns the soft
/// limit now in force.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(u64::MAX);
    let hard = now.maximum.unwrap_or(u64::MAX);
    let wanted = Rlimit {
        current: Some(soft.max(want)),
        maximum: Some(hard.max(want)),
    };
    if setrlimit(Resource::Nofile, wanted).is_err() {
        let capped = Rlimit {
            current: Some(hard),
            maximum: now.maximum,
        };
        let _ = setrlimit(Resource::Nofile, capped);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
