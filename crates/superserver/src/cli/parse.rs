//! Parsers for command-line values: durations, `KEY=VALUE` pairs, sizes,
//! `--file` specs and `sandbox cp` locations.

use std::path::PathBuf;
use std::time::Duration;

const DURATION_HINT: &str = "use a number with a unit: ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h30m)";

/// Parses `500ms`, `10s`, `2m`, `1h30m`, `1.5s`, `2d`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {DURATION_HINT}"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return positive(secs, text);
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!("{text:?} is not a duration; {DURATION_HINT}"));
        }
        let value: f64 = num.parse().map_err(|_| format!("{num:?} is not a number; {DURATION_HINT}"))?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "" => return Err(format!("{num:?} has no unit; {DURATION_HINT}")),
            other => return Err(format!("unknown unit {other:?}; {DURATION_HINT}")),
        };
        total += value * scale;
        rest = next;
    }
    positive(total, text)
}

fn positive(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a duration; {DURATION_HINT}"));
    }
    if secs == 0.0 {
        return Err("the duration must be more than zero".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is too long"))
}

/// Whole milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Whole seconds of a duration, rounded up.
pub(crate) fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Parses `KEY=VALUE` (the value may be empty and may contain `=`).
pub(crate) fn parse_env(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!("expected KEY=VALUE, got {text:?} (write {text}= for an empty value)"));
    };
    if key.is_empty() {
        return Err(format!("{text:?} has no variable name before '='"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!("the variable name {key:?} contains white space"));
    }
    if text.contains('\0') {
        return Err("environment variables cannot contain NUL bytes".into());
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Parses a byte count: `65536`, `64K`, `1M`, `1MiB`, `2G` (binary units).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: u64 =
        num.parse().map_err(|_| format!("{text:?} is not a size; use bytes or K, M, G (e.g. 65536, 64K, 1M)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}; use K, M or G")),
    };
    value.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

/// A `--file LOCAL[:SANDBOX_PATH]` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSpec {
    pub local: PathBuf,
    /// Where it goes in the sandbox; relative paths are under `/workspace`.
    pub remote: String,
}

/// Parses `LOCAL:SANDBOX_PATH`, or `LOCAL` alone to use the file's name.
pub(crate) fn parse_file_spec(text: &str) -> Result<FileSpec, String> {
    let (local, remote) = match text.split_once(':') {
        Some((local, remote)) => (local, remote.to_owned()),
        None => {
            let name = std::path::Path::new(text)
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("{text:?} does not name a file"))?;
            (text, name.to_owned())
        }
    };
    if local.is_empty() {
        return Err("the local file before ':' is missing (expected LOCAL:SANDBOX_PATH)".into());
    }
    if remote.is_empty() {
        return Err("the sandbox path after ':' is missing (expected LOCAL:SANDBOX_PATH)".into());
    }
    Ok(FileSpec { local: PathBuf::from(local), remote })
}

/// One side of `sandbox cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// `-`: standard input as a source, standard output as a destination.
    Stdio,
    Local(PathBuf),
    Remote {
        id: String,
        path: String,
    },
}

/// Parses `ID:PATH` (a sandbox file), `-`, or a local path. As with
/// `docker cp`, a local path that contains ':' must start with `/` or `.`.
pub(crate) fn parse_location(text: &str) -> Result<Location, String> {
    if text == "-" {
        return Ok(Location::Stdio);
    }
    if text.is_empty() {
        return Err("empty path".into());
    }
    if text.starts_with('/') || text.starts_with('.') {
        return Ok(Location::Local(PathBuf::from(text)));
    }
    match text.split_once(':') {
        Some((id, path)) if !id.contains('/') => {
            if id.is_empty() {
                return Err(format!("{text:?} has no sandbox id before ':'"));
            }
            if path.is_empty() {
                return Err(format!("{text:?} has no path after ':' (e.g. {id}:/workspace/out.txt)"));
            }
            Ok(Location::Remote { id: id.to_owned(), path: path.to_owned() })
        }
        _ => Ok(Location::Local(PathBuf::from(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 45 "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        for bad in ["", "10x", "s", "1h30", "-5s", "ten", "1..5s", "5 s"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("e.g.") || err.contains("number"), "{bad:?}: {err}");
        }
        assert!(parse_duration("0s").expect_err("zero").contains("more than zero"));
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("1e300d").is_err());
    }

    #[test]
    fn duration_conversions() {
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_micros(200)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(secs_ceil(Duration::from_millis(1500)), 2);
        assert_eq!(secs_ceil(Duration::from_secs(60)), 60);
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env("A=1"), Ok(("A".into(), "1".into())));
        assert_eq!(parse_env("A="), Ok(("A".into(), String::new())));
        assert_eq!(parse_env("URL=http://x/?a=b"), Ok(("URL".into(), "http://x/?a=b".into())));
        assert!(parse_env("A").expect_err("no =").contains("KEY=VALUE"));
        assert!(parse_env("=1").expect_err("no key").contains("no variable name"));
        assert!(parse_env("A B=1").expect_err("space").contains("white space"));
        assert!(parse_env("A=\0").expect_err("nul").contains("NUL"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65_536));
        assert_eq!(parse_size("64K"), Ok(65_536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn file_specs() {
        assert_eq!(
            parse_file_spec("src/main.py:/workspace/app/main.py"),
            Ok(FileSpec { local: "src/main.py".into(), remote: "/workspace/app/main.py".into() })
        );
        assert_eq!(
            parse_file_spec("dir/data.csv"),
            Ok(FileSpec { local: "dir/data.csv".into(), remote: "data.csv".into() })
        );
        assert!(parse_file_spec(":x").is_err());
        assert!(parse_file_spec("x:").is_err());
    }

    #[test]
    fn cp_locations() {
        assert_eq!(parse_location("-"), Ok(Location::Stdio));
        assert_eq!(
            parse_location("sb_1:/workspace/a.txt"),
            Ok(Location::Remote { id: "sb_1".into(), path: "/workspace/a.txt".into() })
        );
        assert_eq!(parse_location("sb_1:out.txt"), Ok(Location::Remote { id: "sb_1".into(), path: "out.txt".into() }));
        assert_eq!(parse_location("notes.txt"), Ok(Location::Local("notes.txt".into())));
        assert_eq!(parse_location("./a:b"), Ok(Location::Local("./a:b".into())));
        assert_eq!(parse_location("/tmp/a:b"), Ok(Location::Local("/tmp/a:b".into())));
        assert_eq!(parse_location("dir/a:b"), Ok(Location::Local("dir/a:b".into())));
        assert!(parse_location("sb_1:").is_err());
        assert!(parse_location(":x").is_err());
        assert!(parse_location("").is_err());
    }
}
