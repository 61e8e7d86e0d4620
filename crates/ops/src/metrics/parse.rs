//! Pure parsers of the kernel's text files the collectors read. Each takes
//! the file's text, so the unit tests feed them sample contents.

use std::collections::HashMap;

/// Jiffies from the first `cpu` line of `/proc/stat`: (busy, total).
/// Busy is everything but `idle` and `iowait`.
pub fn proc_stat_cpu(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // guest and guest_nice (fields 9, 10) are already counted in user/nice.
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages.
pub fn loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `/proc/meminfo`, values in bytes, keyed by field name.
pub fn meminfo(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let mut f = rest.split_whitespace();
            let n: u64 = f.next()?.parse().ok()?;
            let mult = if f.next() == Some("kB") { 1024 } else { 1 };
            Some((k.to_string(), n.saturating_mul(mult)))
        })
        .collect()
}

/// `/proc/diskstats`: (device, sectors read × 512, sectors written × 512)
/// for each device `keep` accepts.
pub fn diskstats(text: &str, keep: impl Fn(&str) -> bool) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || !keep(f[2]) {
                return None;
            }
            let read: u64 = f[5].parse().ok()?;
            let written: u64 = f[9].parse().ok()?;
            Some((f[2].to_string(), read.saturating_mul(512), written.saturating_mul(512)))
        })
        .collect()
}

/// `/proc/net/dev` (host or a pid's namespace): (interface, rx bytes, tx
/// bytes) for each interface `keep` accepts.
pub fn net_dev(text: &str, keep: impl Fn(&str) -> bool) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if !keep(name) {
                return None;
            }
            let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            Some((name.to_string(), *f.first()?, *f.get(8)?))
        })
        .collect()
}

/// Interfaces counted in the host's network rates: not loopback, not the
/// host side of container or sandbox veths, not bridges (their traffic is
/// counted on the physical interface or the veths already).
pub fn host_interface(name: &str) -> bool {
    !(name == "lo"
        || name.starts_with("veth")
        || name.starts_with("br-")
        || name == "docker0"
        || name.starts_with("ss"))
}

/// `/proc/<pid>/stat`: utime + stime in clock ticks. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn pid_stat_cpu_ticks(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `/proc/<pid>/statm`: resident pages.
pub fn statm_rss_pages(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// `/proc/<pid>/cgroup`: (v1 controllers → path, v2 path).
pub fn pid_cgroup(text: &str) -> (HashMap<String, String>, Option<String>) {
    let mut v1 = HashMap::new();
    let mut v2 = None;
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        if ctrls.is_empty() {
            v2 = Some(path.to_string());
        } else {
            for c in ctrls.split(',') {
                v1.insert(c.to_string(), path.to_string());
            }
        }
    }
    (v1, v2)
}

/// cgroup v2 `cpu.stat`: `usage_usec` in nanoseconds.
pub fn cpu_stat_usage_ns(text: &str) -> Option<u64> {
    keyed(text, "usage_usec").map(|u| u.saturating_mul(1000))
}

/// A `key value` line's value.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// cgroup v2 `io.stat`: (read bytes, written bytes) summed over devices.
pub fn io_stat(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for l in text.lines() {
        for kv in l.split_whitespace().skip(1) {
            match kv.split_once('=') {
                Some(("rbytes", v)) => r = r.saturating_add(v.parse().unwrap_or(0)),
                Some(("wbytes", v)) => w = w.saturating_add(v.parse().unwrap_or(0)),
                _ => {}
            }
        }
    }
    (r, w)
}

/// cgroup v1 `blkio.throttle.io_service_bytes`: (read, write) summed over
/// devices (the `Total` line is skipped).
pub fn blkio_service_bytes(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let n: u64 = f[2].parse().unwrap_or(0);
        match f[1] {
            "Read" => r = r.saturating_add(n),
            "Write" => w = w.saturating_add(n),
            _ => {}
        }
    }
    (r, w)
}

/// A cgroup memory limit file: `max` (v2) or a huge number (v1 without a
/// limit) means none.
pub fn memory_limit(text: &str) -> Option<u64> {
    let t = text.trim();
    let n: u64 = t.parse().ok()?;
    (n < (1 << 62)).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_busy_and_total() {
        let t = "cpu  100 10 50 800 40 0 5 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n";
        // total = 100+10+50+800+40+0+5+0 = 1005; idle = 840.
        assert_eq!(proc_stat_cpu(t), Some((165, 1005)));
        assert_eq!(proc_stat_cpu("intr 1\n"), None);
    }

    #[test]
    fn load_and_meminfo() {
        assert_eq!(loadavg("4.41 2.86 2.04 6/534 18107\n"), Some([4.41, 2.86, 2.04]));
        assert_eq!(loadavg("x"), None);
        let m = meminfo("MemTotal:       16000 kB\nMemAvailable:    8000 kB\nHugePages_Total:       0\n");
        assert_eq!(m["MemTotal"], 16000 * 1024);
        assert_eq!(m["MemAvailable"], 8000 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
    }

    #[test]
    fn diskstats_and_net_dev() {
        let d = "   8       0 sda 100 0 2000 0 50 0 4000 0 0 0 0\n   8       1 sda1 1 0 8 0 1 0 8 0 0 0 0\n   7  0 loop0 1 0 2 0 0 0 0 0 0 0 0\n";
        assert_eq!(diskstats(d, |n| n == "sda"), vec![("sda".to_string(), 2000 * 512, 4000 * 512)]);
        let n = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1234 10 0 0 0 0 0 0 5678 20 0 0 0 0 0 0\nveth12ab: 9 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n";
        assert_eq!(net_dev(n, host_interface), vec![("eth0".to_string(), 1234, 5678)]);
        assert_eq!(net_dev(n, |_| true).len(), 3);
    }

    #[test]
    fn pid_files() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 200";
        assert_eq!(pid_stat_cpu_ticks(stat), Some(300));
        assert_eq!(statm_rss_pages("1000 250 30 1 0 100 0\n"), Some(250));
        let (v1, v2) =
            pid_cgroup("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/system.slice/docker-abc.scope\n");
        assert_eq!(v1["memory"], "/docker/abc");
        assert_eq!(v1["cpuacct"], "/docker/abc");
        assert_eq!(v2.as_deref(), Some("/system.slice/docker-abc.scope"));
    }

    #[test]
    fn cgroup_files() {
        assert_eq!(cpu_stat_usage_ns("usage_usec 1500\nuser_usec 1000\n"), Some(1_500_000));
        assert_eq!(io_stat("8:0 rbytes=100 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n"), (101, 22));
        let blk = "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n";
        assert_eq!(blkio_service_bytes(blk), (4096, 8192));
        assert_eq!(memory_limit("max\n"), None);
        assert_eq!(memory_limit("9223372036854771712\n"), None);
        assert_eq!(memory_limit("67108864\n"), Some(64 << 20));
    }
}
