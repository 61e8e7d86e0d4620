//! Where CPU time goes: the server's own threads, the zygote, the sandboxes
//! (live inits with the commands they reaped, plus the inits the zygote
//! reaped, whose time adds up in its children's time), this benchmark's own
//! client, and the whole host (`/proc/stat`), which also sees kernel work no
//! process is charged for (namespace and cgroup teardown in kernel threads)
//! and whatever else runs on the machine.

use std::fs;

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Cumulative CPU milliseconds by owner at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    server: f64,
    zygote: f64,
    sandboxes: f64,
    client: f64,
    host_busy: f64,
    host_total: f64,
}

fn ticks_ms(t: u64) -> f64 {
    t as f64 / TICKS_PER_SEC * 1000.0
}

/// `(utime + stime, cutime + cstime)` of a process, in ms (tick resolution).
fn proc_ms(pid: u32) -> Option<(f64, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; f[0] is field 3 (state),
    // so field n (utime is 14) is f[n - 3].
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    Some((ticks_ms(f.get(11)? + f.get(12)?), ticks_ms(f.get(13)? + f.get(14)?)))
}

/// CPU time of a single-threaded process in ms, at nanosecond precision
/// (`/proc/PID/schedstat`): a short-lived init's few milliseconds would
/// round to zero ticks in `/proc/PID/stat`.
fn precise_ms(pid: u32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e6)
}

/// `(busy, total)` ms of all CPUs from the `cpu` line of `/proc/stat`.
fn host_ms() -> Option<(f64, f64)> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    let total: u64 = v.iter().take(8).sum();
    // idle and iowait are not busy; steal is the hypervisor running someone else.
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let idle = at(3) + at(4) + at(7);
    Some((ticks_ms(total - idle), ticks_ms(total)))
}

/// Cores kept busy on the whole host over `window` (blocking).
pub fn host_busy_cores(window: std::time::Duration) -> f64 {
    let Some((b0, t0)) = host_ms() else { return 0.0 };
    std::thread::sleep(window);
    let Some((b1, t1)) = host_ms() else { return 0.0 };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    if t1 > t0 {
        (b1 - b0) / (t1 - t0) * cpus
    } else {
        0.0
    }
}

impl CpuSnapshot {
    pub fn take(server: u32, zygote: Option<u32>) -> Self {
        let (server_self, _) = proc_ms(server).unwrap_or_default();
        let (zygote_self, reaped) = zygote.and_then(proc_ms).unwrap_or_default();
        // Live inits (their own time, precisely) with the commands they reaped.
        let live: f64 = zygote
            .map(|z| {
                crate::host::children(z)
                    .iter()
                    .map(|(p, _)| precise_ms(*p).unwrap_or(0.0) + proc_ms(*p).map_or(0.0, |(_, c)| c))
                    .sum()
            })
            .unwrap_or(0.0);
        let (client, _) = proc_ms(std::process::id()).unwrap_or_default();
        let (host_busy, host_total) = host_ms().unwrap_or_default();
        Self { server: server_self, zygote: zygote_self, sandboxes: reaped + live, client, host_busy, host_total }
    }

    /// CPU milliseconds per operation between `self` and `later`, split by owner.
    pub fn per_op(&self, later: &Self, ops: usize) -> CpuPerOp {
        let n = ops.max(1) as f64;
        let d = |a: f64, b: f64| (b - a).max(0.0) / n;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let total = later.host_total - self.host_total;
        CpuPerOp {
            server: d(self.server, later.server),
            zygote: d(self.zygote, later.zygote),
            sandboxes: d(self.sandboxes, later.sandboxes),
            client: d(self.client, later.client),
            host: d(self.host_busy, later.host_busy),
            host_util: if total > 0.0 { (later.host_busy - self.host_busy) / total * cpus } else { 0.0 },
        }
    }
}

/// CPU milliseconds per operation.
#[derive(Debug, Clone, Copy)]
pub struct CpuPerOp {
    pub server: f64,
    pub zygote: f64,
    /// Sandbox inits and their commands.
    pub sandboxes: f64,
    /// This benchmark's HTTP client.
    pub client: f64,
    /// Busy time of every CPU of the host.
    pub host: f64,
    /// Cores kept busy on average over the interval.
    pub host_util: f64,
}

impl CpuPerOp {
    /// Host busy time not charged to the server, zygote, sandboxes or client:
    /// kernel threads (teardown work) and other processes.
    pub fn rest(&self) -> f64 {
        (self.host - self.server - self.zygote - self.sandboxes - self.client).max(0.0)
    }

    pub fn line(&self) -> String {
        format!(
            "server {:.2} + zygote {:.2} + sandboxes {:.2} + bench client {:.2} + kernel threads/other {:.2} ms \
             ({:.2} cores busy on average)",
            self.server,
            self.zygote,
            self.sandboxes,
            self.client,
            self.rest(),
            self.host_util
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_times_and_host_times_read() {
        assert!(proc_ms(std::process::id()).is_some());
        assert!(precise_ms(std::process::id()).is_some());
        let (busy, total) = host_ms().expect("/proc/stat has a cpu line");
        assert!(total >= busy && total > 0.0);
    }
}
