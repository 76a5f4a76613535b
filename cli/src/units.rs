//! Sizes on the command line (`8M`, `64KiB`, `4096`) and human-readable byte counts and rates.

use std::time::Duration;

/// Parses a byte count: a number with an optional binary suffix K, M, G, T (also KiB, MiB, ...,
/// case-insensitive, optional `B`). `8M` is 8 MiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a size (expected e.g. 4096, 64K, 8M, 1G)"
        ));
    }
    let n: u64 = num.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown suffix {suffix:?} (expected K, M, G or T)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} does not fit in 64 bits"))
}

/// `268435456` -> `256.0 MiB`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Decimal gigabytes per second (1 GB = 10^9 bytes), as every benchmark table here uses.
pub fn gbps(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        bytes as f64 / 1e9 / secs
    }
}

/// `1.23 GB/s`, or `45.6 MB/s` below one gigabyte per second.
pub fn fmt_rate(bytes: u64, elapsed: Duration) -> String {
    let g = gbps(bytes, elapsed);
    if g >= 1.0 {
        format!("{g:.2} GB/s")
    } else {
        format!("{:.1} MB/s", g * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("8X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn human() {
        assert_eq!(fmt_bytes(12), "12 B");
        assert_eq!(fmt_bytes(256 << 20), "256.0 MiB");
        assert_eq!(fmt_rate(2_000_000_000, Duration::from_secs(1)), "2.00 GB/s");
        assert_eq!(fmt_rate(500_000_000, Duration::from_secs(1)), "500.0 MB/s");
    }
}
