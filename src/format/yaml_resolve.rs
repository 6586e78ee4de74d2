//! What a YAML scalar means, as go-yaml v3 (and so sops) resolves it: the type of a plain
//! scalar, the value a standard tag (`!!int "3"`) gives, and the text sops stores for
//! it. coffer must read every scalar as sops does, or the two would disagree about a
//! file's values (a `0755` that sops reads as 493).

use crate::scalar;
use crate::tree::ScalarType;

/// The type of a plain scalar: go-yaml's `resolve` with no tag. Its first character
/// picks the candidates (a digit or sign: time, int, float; `.`: float; else only the
/// words true, null, .inf and their kin).
pub fn resolve_plain(s: &str) -> ScalarType {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarType::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarType::Float,
        _ => {}
    }
    match s.as_bytes().first() {
        Some(b'.') if go_float(s).is_some() => ScalarType::Float,
        Some(b'0'..=b'9' | b'+' | b'-') => {
            if scalar::time_canonical(s, false).is_some() {
                return ScalarType::Time;
            }
            let plain = s.replace('_', "");
            if go_int(&plain).is_some() {
                ScalarType::Int
            } else if yaml_style_float(&plain) && go_float(&plain).is_some() {
                ScalarType::Float
            } else {
                ScalarType::Str
            }
        }
        _ => ScalarType::Str,
    }
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` (or `ParseUint`) reads it: a sign,
/// then `0x`, `0o`, `0b` or a leading `0` (octal), or decimal digits. Values beyond 64
/// bits still read as integers here; the caller refuses them.
pub fn go_int(s: &str) -> Option<i128> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = match body.get(..2) {
        Some("0x" | "0X") => (16, &body[2..]),
        Some("0o" | "0O") => (8, &body[2..]),
        Some("0b" | "0B") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Beyond 64 bits go-yaml reads a float, and the digits are lost: an int here, which
    // the caller refuses with the reason.
    let v = i128::from_str_radix(digits, radix).unwrap_or(i128::MAX);
    Some(if negative { -v } else { v })
}

/// go-yaml's `yamlStyleFloat`: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |t: &[u8]| !t.is_empty() && t.iter().all(u8::is_ascii_digit);
    let unsigned = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let (mantissa, exp) = match unsigned.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.iter().position(|c| *c == b'.') {
        Some(0) => digits(&mantissa[1..]),
        Some(i) => digits(&mantissa[..i]) && mantissa[i + 1..].iter().all(u8::is_ascii_digit),
        None => digits(mantissa),
    };
    mantissa_ok
        && exp.is_none_or(|e| {
            digits(
                e.strip_prefix(b"-")
                    .or_else(|| e.strip_prefix(b"+"))
                    .unwrap_or(e),
            )
        })
}

/// A finite float as Go's `strconv.ParseFloat` reads it; out of range (`1e400`) is
/// an error there, so none here.
fn go_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The text sops stores for a plain scalar of type `ty` (what it encrypts and hashes):
/// an int in decimal, a float as written when Go reads it so, a time in RFC 3339.
pub fn stored_form(ty: ScalarType, s: &str) -> String {
    match ty {
        ScalarType::Int => match go_int(&s.replace('_', "")) {
            Some(v) if i64::try_from(v).is_ok() => v.to_string(),
            _ => s.to_string(),
        },
        ScalarType::Time => scalar::time_canonical(s, false).unwrap_or_else(|| s.to_string()),
        ScalarType::Float => match s.to_ascii_lowercase().as_str() {
            ".inf" | "+.inf" => "+Inf".into(),
            "-.inf" => "-Inf".into(),
            ".nan" => "NaN".into(),
            _ => s.replace('_', ""),
        },
        _ => s.to_string(),
    }
}

/// Why go-yaml refuses a tagged scalar. Never names the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("go-yaml (so sops) cannot read the value as !!{0}")]
    Tag(String),
    #[error("!!binary values are not supported: sops stores the decoded bytes; store the text without the tag")]
    Binary,
}

/// A scalar with a standard tag (`!!int`, `!!float`, `!!bool`, `!!timestamp`, `!!null`),
/// quoted or not, as go-yaml decodes it: its type and stored text, or why go-yaml
/// refuses it. `!!str` and tags of other schemas are the caller's.
pub fn resolve_tagged(tag: &str, s: &str) -> Result<(ScalarType, String), Refused> {
    let plain = resolve_plain(s);
    let refused = || Refused::Tag(tag.to_string());
    let ty = match (tag, plain) {
        ("int", ScalarType::Int) => ScalarType::Int,
        // An int is a float too.
        ("float", ScalarType::Int | ScalarType::Float) => ScalarType::Float,
        ("bool", ScalarType::Bool) => ScalarType::Bool,
        ("timestamp", ScalarType::Time) => ScalarType::Time,
        ("null", ScalarType::Null) => ScalarType::Null,
        _ => return Err(refused()),
    };
    let stored = match (ty, plain) {
        (ScalarType::Float, ScalarType::Int) => {
            let v = go_int(&s.replace('_', "")).ok_or_else(refused)?;
            scalar::format_float(v as f64)
        }
        _ => stored_form(ty, s),
    };
    Ok((ty, stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ScalarType::*;

    /// go-yaml v3's answers (resolve.go), case by case.
    #[test]
    fn plain_scalars_resolve_as_go_yaml_resolves_them() {
        for (s, ty, stored) in [
            ("0755", Int, "493"),
            ("+0x1F", Int, "31"),
            ("-0x1F", Int, "-31"),
            ("0b101", Int, "5"),
            ("-0b101", Int, "-5"),
            ("0o17", Int, "15"),
            ("1_000", Int, "1000"),
            ("0x_1F", Int, "31"),
            ("42", Int, "42"),
            ("-0", Int, "0"),
            ("08", Float, "08"),
            ("09.5", Float, "09.5"),
            ("1_0.5", Float, "10.5"),
            ("1.5e10", Float, "1.5e10"),
            (".5", Float, ".5"),
            ("+.5", Float, "+.5"),
            ("1e400", Str, "1e400"),
            ("-1e400", Str, "-1e400"),
            ("1e-400", Float, "1e-400"),
            ("_1", Str, "_1"),
            ("0x", Str, "0x"),
            ("0b102", Str, "0b102"),
            ("yes", Str, "yes"),
            ("on", Str, "on"),
            ("True", Bool, "True"),
            ("~", Null, "~"),
            ("<<", Str, "<<"),
            ("2024-01-02", Time, "2024-01-02T00:00:00Z"),
            ("18446744073709551615", Int, "18446744073709551615"),
            ("18446744073709551616", Int, "18446744073709551616"),
        ] {
            assert_eq!(resolve_plain(s), ty, "{s}");
            assert_eq!(stored_form(ty, s), stored, "{s}");
        }
    }

    #[test]
    fn standard_tags_give_go_yaml_values_or_its_refusal() {
        for (tag, s, want) in [
            ("int", "3", Ok((Int, "3"))),
            ("int", "0x10", Ok((Int, "16"))),
            ("float", "1", Ok((Float, "1"))),
            ("float", ".inf", Ok((Float, "+Inf"))),
            ("float", "2.5", Ok((Float, "2.5"))),
            ("bool", "true", Ok((Bool, "true"))),
            (
                "timestamp",
                "2024-01-02",
                Ok((Time, "2024-01-02T00:00:00Z")),
            ),
            ("null", "", Ok((Null, ""))),
            ("int", "abc", Err(())),
            ("bool", "yes", Err(())),
            ("int", "1.5", Err(())),
        ] {
            let got = resolve_tagged(tag, s);
            match want {
                Ok((ty, stored)) => assert_eq!(got, Ok((ty, stored.to_string())), "!!{tag} {s}"),
                Err(()) => assert!(got.is_err(), "!!{tag} {s}: {got:?}"),
            }
        }
    }
}
