//! Serde for durations: `"1.5s"`-style strings when human readable, nanoseconds otherwise.
//!
//! Deliberately public: drivers use it for their own config files (`#[serde(with = "swim_proto::duration")]`) and [`parse`] for flags.

use core::fmt;
use core::time::Duration;
use serde::{Deserializer, Serializer, de};

/// Formats a duration with the largest unit that keeps it exact (`"1s"`, `"250ms"`, `"90s"`).
pub fn format(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let n = d.as_nanos();
    for (unit, scale) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
        if n >= scale && n.is_multiple_of(scale) {
            return write!(f, "{}{unit}", n / scale);
        }
    }
    write!(f, "{n}ns")
}

/// Parses `"<number><unit>"`, unit one of `ns`, `us`, `ms`, `s`, `m`, `h`; the number may
/// have a fractional part (`"1.5s"`).
pub fn parse(s: &str) -> Result<Duration, &'static str> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or("missing unit (ns, us, ms, s, m, h)")?;
    let (num, unit) = s.split_at(split);
    let scale: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err("unknown unit (use ns, us, ms, s, m or h)"),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("missing number");
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| "bad number")?
    };
    let mut nanos = int.checked_mul(scale).ok_or("too large")?;
    let mut place = scale;
    for c in frac.chars() {
        let digit = c.to_digit(10).ok_or("bad number")? as u128;
        place /= 10;
        nanos += digit * place;
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| "too large")
}

/// Serializes a duration.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        struct Show(Duration);
        impl fmt::Display for Show {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                format(self.0, f)
            }
        }
        s.collect_str(&Show(*d))
    } else {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Deserializes a duration.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"500ms\" or \"1.5s\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(|why| E::custom(alloc::format!("invalid duration {v:?}: {why}")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_nanos(v))
        }
    }
    if d.is_human_readable() {
        d.deserialize_str(V)
    } else {
        d.deserialize_u64(V)
    }
}

/// Serde for `Option<Duration>` in the same formats (`None` is absent or `null`).
pub mod option {
    use core::time::Duration;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Wrapped(#[serde(with = "super")] Duration);

    /// Serializes an optional duration.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(Wrapped).serialize(s)
    }

    /// Deserializes an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
