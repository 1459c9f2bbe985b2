//! Text formatting for the report page: HTML escaping and numbers, times and sizes printed
//! with a sensible number of digits.

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Shortens `s` to at most `max` characters, ending with "…" when cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// An integer with thousands separators.
pub(super) fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in milliseconds, in ms or s as fits; "—" for none.
pub(super) fn fmt_ms(ms: Option<f64>) -> String {
    match ms {
        Some(v) if v.is_finite() => {
            if v.abs() < 10.0 {
                format!("{v:.1} ms")
            } else if v.abs() < 1000.0 {
                format!("{v:.0} ms")
            } else {
                fmt_secs(v / 1000.0)
            }
        }
        _ => "—".to_string(),
    }
}

/// A duration in seconds with sensible precision; "—" if not finite.
pub(super) fn fmt_secs(s: f64) -> String {
    if !s.is_finite() {
        "—".to_string()
    } else if s.abs() >= 100.0 || s == 0.0 {
        format!("{s:.0} s")
    } else if s.abs() >= 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.2} s")
    }
}

/// A number with three significant digits and an SI prefix (k, M, G), then `unit`.
pub(super) fn fmt_sig(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let a = v.abs();
    let (scaled, prefix) = match a {
        _ if a >= 1e9 => (v / 1e9, "G"),
        _ if a >= 1e6 => (v / 1e6, "M"),
        _ if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let s = scaled.abs();
    let num = if s >= 100.0 || s == 0.0 {
        format!("{scaled:.0}")
    } else if s >= 10.0 {
        format!("{scaled:.1}")
    } else if s >= 0.01 || !prefix.is_empty() {
        format!("{scaled:.2}")
    } else {
        format!("{scaled:.2e}")
    };
    let sep = if prefix.is_empty() && unit.is_empty() {
        ""
    } else {
        " "
    };
    format!("{num}{sep}{prefix}{unit}")
}

/// A memory size in bytes, in binary units; "—" for none.
pub(super) fn fmt_mem(b: Option<u64>) -> String {
    match b {
        None => "—".to_string(),
        Some(b) if b < 1024 => format!("{b} B"),
        Some(b) if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) if b < 1 << 30 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        Some(b) => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
    }
}
