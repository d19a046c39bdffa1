//! `org.systemd.property.NAME` annotations: extra unit properties, as runc
//! takes them. Values are GVariant text; the forms systemd properties use
//! are understood: `true`/`false`, `'text'` or `"text"`, a typed number
//! (`uint64 123`, `@t 123`, `uint32`, `int64`, `int32`, `byte` and their
//! `@` letters; a bare integer is an int32, as in GVariant) and arrays of
//! strings (`['a', 'b']`, `@as []`). A NAME ending in `Sec` after a
//! lowercase letter (`TimeoutStopSec`) takes seconds and is sent as
//! NAMEUSec in microseconds, as runc does.

use std::collections::HashMap;

use super::dbus::Value;
use crate::{CgroupError, Result};

const PREFIX: &str = "org.systemd.property.";

/// The extra properties of `annotations`, in name order.
pub fn properties(annotations: &HashMap<String, String>) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    for key in keys {
        let name = &key[PREFIX.len()..];
        let raw = &annotations[key];
        let bad = |why: String| CgroupError::invalid(format!("annotations.{key}"), why);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(format!("{name:?} is not a systemd property name")));
        }
        let value = parse(raw).map_err(|e| bad(format!("{raw:?}: {e}")))?;
        match seconds_name(name) {
            Some(usec_name) => {
                let usec = to_usec(&value)
                    .ok_or_else(|| bad(format!("{raw:?}: {name} takes a number of seconds")))?;
                out.push((usec_name, Value::U64(usec)));
            }
            None => {
                let v = value
                    .into_value()
                    .ok_or_else(|| bad(format!("{raw:?}: doubles are not supported")))?;
                out.push((name.to_string(), v));
            }
        }
    }
    Ok(out)
}

/// "TimeoutStopSec" -> "TimeoutStopUSec"; None for names that are not in
/// seconds ("TimeoutStopUSec" included).
fn seconds_name(name: &str) -> Option<String> {
    let stem = name.strip_suffix("Sec")?;
    stem.bytes()
        .last()
        .filter(u8::is_ascii_lowercase)
        .map(|_| format!("{stem}USec"))
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Value(Value),
    /// A number without a type: an int32 in GVariant, unless a float.
    Number(f64, bool),
}

impl Parsed {
    /// None for a float (a GVariant double; no property hull sets takes one).
    fn into_value(self) -> Option<Value> {
        match self {
            Parsed::Value(v) => Some(v),
            Parsed::Number(n, true) => Some(Value::I32(n as i32)),
            Parsed::Number(_, false) => None,
        }
    }
}

fn to_usec(p: &Parsed) -> Option<u64> {
    let secs = match p {
        Parsed::Number(n, _) => *n,
        Parsed::Value(Value::U64(n)) => *n as f64,
        Parsed::Value(Value::U32(n)) => f64::from(*n),
        Parsed::Value(Value::I64(n)) => *n as f64,
        Parsed::Value(Value::I32(n)) => f64::from(*n),
        Parsed::Value(Value::Byte(n)) => f64::from(*n),
        _ => return None,
    };
    (secs >= 0.0 && secs.is_finite()).then_some((secs * 1e6) as u64)
}

fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if c == q => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn parse(text: &str) -> std::result::Result<Parsed, String> {
    let t = text.trim();
    match t {
        "true" => return Ok(Parsed::Value(Value::Bool(true))),
        "false" => return Ok(Parsed::Value(Value::Bool(false))),
        _ => {}
    }
    if let Some(s) = unquote(t) {
        return Ok(Parsed::Value(Value::Str(s)));
    }
    if let Some(body) = t.strip_prefix("@as").map(str::trim).or(Some(t)) {
        if let Some(items) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
            let items = items.trim();
            let list = if items.is_empty() {
                Vec::new()
            } else {
                items
                    .split(',')
                    .map(|i| unquote(i.trim()).map(Value::Str))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("only arrays of strings are supported")?
            };
            return Ok(Parsed::Value(Value::Array("s".into(), list)));
        }
    }
    if let Some((typ, num)) = t.split_once(char::is_whitespace) {
        let num = num.trim();
        let bad = || format!("{num:?} is not a {typ}");
        let v = match typ {
            "uint64" | "@t" => Value::U64(num.parse().map_err(|_| bad())?),
            "uint32" | "@u" => Value::U32(num.parse().map_err(|_| bad())?),
            "int64" | "@x" => Value::I64(num.parse().map_err(|_| bad())?),
            "int32" | "@i" => Value::I32(num.parse().map_err(|_| bad())?),
            "byte" | "@y" => Value::Byte(num.parse().map_err(|_| bad())?),
            _ => return Err(format!("unsupported type {typ:?}")),
        };
        return Ok(Parsed::Value(v));
    }
    if let Ok(n) = t.parse::<i32>() {
        return Ok(Parsed::Number(f64::from(n), true));
    }
    if let Ok(f) = t.parse::<f64>() {
        return Ok(Parsed::Number(f, false));
    }
    Err("not a GVariant value hull understands (e.g. \"uint64 123\", \"'text'\", true)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Result<Vec<(String, Value)>> {
        let a = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .chain([("other".to_string(), "x".to_string())])
            .collect();
        properties(&a)
    }

    #[test]
    fn values_parse_as_gvariant_text() {
        let got = props(&[
            ("CollectMode", "'inactive-or-failed'"),
            ("TimeoutStopUSec", "uint64 123456789"),
            ("TimeoutStopSec", "2.5"),
            ("RuntimeMaxSec", "@t 7"),
            ("SendSIGKILL", "false"),
            ("Nice", "-5"),
            ("Environment", "['A=1', \"B=2\"]"),
            ("Wants", "@as []"),
            ("IOWeight", "uint64 50"),
        ])
        .unwrap();
        let want = vec![
            ("CollectMode", Value::str("inactive-or-failed")),
            (
                "Environment",
                Value::Array("s".into(), vec![Value::str("A=1"), Value::str("B=2")]),
            ),
            ("IOWeight", Value::U64(50)),
            ("Nice", Value::I32(-5)),
            ("RuntimeMaxUSec", Value::U64(7_000_000)),
            ("SendSIGKILL", Value::Bool(false)),
            ("TimeoutStopUSec", Value::U64(2_500_000)),
            ("TimeoutStopUSec", Value::U64(123456789)),
            ("Wants", Value::Array("s".into(), vec![])),
        ];
        let want: Vec<(String, Value)> = want.into_iter().map(|(k, v)| (k.into(), v)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_values_name_the_annotation() {
        for (k, v) in [
            ("CollectMode", "inactive"),
            ("TimeoutStopSec", "'soon'"),
            ("X", "uint64 -1"),
            ("X", "[1, 2]"),
            ("X", "1.5"),
            ("Bad-Name", "true"),
        ] {
            let e = props(&[(k, v)]).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("annotations.{PREFIX}{k}: ")),
                "{k}={v}: {e}"
            );
        }
    }
}
