//! What the kernel says about this process and its children.

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

/// User + system CPU time of this process so far (getrusage, microsecond resolution).
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we own; an all-zero rusage is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// The CPU time of the calling thread so far (CLOCK_THREAD_CPUTIME_ID, nanoseconds).
pub fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime writes into the struct we own; an all-zero timespec is valid.
    let now = unsafe {
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now);
        now
    };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The resident set of this process now, KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// The high-water mark of this process's resident set, KiB.
pub fn hwm_kib() -> u64 {
    status_kib("VmHWM:")
}

fn status_kib(key: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("a {key} line"))
}

/// Runs `command` to the end (output discarded) and returns its peak resident set in KiB
/// (wait4's `ru_maxrss`, for this child alone) and whether it exited with status 0.
pub fn peak_rss_kib(command: &mut Command) -> (u64, bool) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let mut status = 0;
    // SAFETY: wait4 reaps our own child and writes into the struct we own. `child` is not
    // waited on by std afterwards (dropping a Child does not wait).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let reaped = libc::wait4(pid, &mut status, 0, &mut usage);
        assert_eq!(reaped, pid, "wait4 reaped the child");
        usage
    };
    drop(child);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (u64::try_from(usage.ru_maxrss).unwrap_or(0), ok)
}

/// The machine: CPU model, CPU count, memory.
pub fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cpus} × {cpu}, {mem_gib:.0} GiB")
}
