//! Scalar values as sops and Go spell them: the types sops knows, and Go's reading and
//! writing of numbers, booleans and times (`strconv`, `time.Time.MarshalText`), which
//! sops's MAC and type tags go by. No other module of coffer is needed here.

use zeroize::Zeroizing;

/// The value types sops knows, plus null (never encrypted) and comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    /// A YAML timestamp; sops 3.10 and later store it as `type:time`.
    Time,
    Comment,
    Null,
}

impl ScalarType {
    /// Every type a value's `type:` tag names: all but null.
    pub const TAGGED: [ScalarType; 7] = [
        ScalarType::Str,
        ScalarType::Int,
        ScalarType::Float,
        ScalarType::Bool,
        ScalarType::Bytes,
        ScalarType::Time,
        ScalarType::Comment,
    ];

    pub fn sops_name(self) -> &'static str {
        match self {
            ScalarType::Str | ScalarType::Null => "str",
            ScalarType::Int => "int",
            ScalarType::Float => "float",
            ScalarType::Bool => "bool",
            ScalarType::Bytes => "bytes",
            ScalarType::Time => "time",
            ScalarType::Comment => "comment",
        }
    }

    pub fn from_sops(name: &str) -> Option<Self> {
        Some(match name {
            "str" => ScalarType::Str,
            "int" | "int64" => ScalarType::Int,
            "float" => ScalarType::Float,
            "bool" => ScalarType::Bool,
            "bytes" => ScalarType::Bytes,
            "time" => ScalarType::Time,
            "comment" => ScalarType::Comment,
            _ => return None,
        })
    }
}

/// The text sops would produce for a typed value, where it differs from the stored bytes.
pub fn canonical(ty: ScalarType, plaintext: &[u8]) -> Option<Zeroizing<String>> {
    let s = std::str::from_utf8(plaintext).ok()?;
    match ty {
        ScalarType::Int => s.parse::<i64>().ok().map(|v| Zeroizing::new(v.to_string())),
        ScalarType::Float => s
            .parse::<f64>()
            .ok()
            .map(|v| Zeroizing::new(format_float(v))),
        ScalarType::Bool => {
            parse_bool(s).map(|b| Zeroizing::new(if b { "True" } else { "False" }.to_string()))
        }
        ScalarType::Time => time_canonical(s, true).map(Zeroizing::new),
        _ => None,
    }
}

/// A float as Go's `strconv.ParseFloat` reads it (`+Inf`, `NaN` and exponents included).
pub fn parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// Whether decrypted bytes are a value of type `ty` at all, as sops checks when it
/// decrypts (`strconv.Atoi`, `ParseFloat`, `ParseBool`, RFC 3339 for times).
pub fn valid_typed(ty: ScalarType, plaintext: &[u8]) -> bool {
    // Strings hold any bytes: a binary file is one `type:str` value.
    let Ok(s) = std::str::from_utf8(plaintext) else {
        return matches!(ty, ScalarType::Str | ScalarType::Bytes);
    };
    match ty {
        ScalarType::Int => s.parse::<i64>().is_ok(),
        ScalarType::Float => parse_float(s).is_some(),
        ScalarType::Bool => parse_bool(s).is_some(),
        ScalarType::Time => time_canonical(s, true).is_some(),
        _ => true,
    }
}

/// A timestamp in the text Go's `time.Time.MarshalText` gives (RFC 3339 with the
/// shortest fraction, `Z` for UTC), which is what sops encrypts and hashes for a
/// `type:time` value. `strict` accepts RFC 3339 only (what sops decrypts); otherwise
/// the YAML spellings go-yaml resolves as timestamps are read too: `2024-1-2`,
/// `2024-01-02 03:04:05`, a lower-case `t`.
pub fn time_canonical(s: &str, strict: bool) -> Option<String> {
    fn num(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n < min || n > max {
            return None;
        }
        Some((s[..n].parse().ok()?, &s[n..]))
    }
    let (dmin, tmin) = if strict { (2, 2) } else { (1, 1) };
    let (year, rest) = num(s, 4, 4)?;
    let (month, rest) = num(rest.strip_prefix('-')?, dmin, 2)?;
    let (day, rest) = num(rest.strip_prefix('-')?, dmin, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if rest.is_empty() {
        return (!strict).then(|| format!("{date}T00:00:00Z"));
    }
    let (rest, zoned) = if let Some(r) = rest.strip_prefix('T') {
        (r, true)
    } else if let Some(r) = rest.strip_prefix('t').filter(|_| !strict) {
        (r, true)
    } else if let Some(r) = rest.strip_prefix(' ').filter(|_| !strict) {
        (r, false)
    } else {
        return None;
    };
    let (hour, rest) = num(rest, tmin, 2)?;
    let (min, rest) = num(rest.strip_prefix(':')?, tmin, 2)?;
    let (sec, mut rest) = num(rest.strip_prefix(':')?, tmin, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        frac = r[..n].trim_end_matches('0');
        rest = &r[n..];
    }
    let zone = if !zoned {
        if !rest.is_empty() {
            return None;
        }
        "Z".to_string()
    } else if rest == "Z" {
        "Z".to_string()
    } else {
        let sign = rest.chars().next().filter(|c| *c == '+' || *c == '-')?;
        let (zh, r) = num(&rest[1..], 2, 2)?;
        let (zm, r) = num(r.strip_prefix(':')?, 2, 2)?;
        if !r.is_empty() || zh > 23 || zm > 59 {
            return None;
        }
        if zh == 0 && zm == 0 {
            "Z".to_string()
        } else {
            format!("{sign}{zh:02}:{zm:02}")
        }
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!("{date}T{hour:02}:{min:02}:{sec:02}{frac}{zone}"))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, no exponent.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which go-yaml (and so sops) writes YAML
/// floats with: an exponent below 1e-4 and from 1e6 up (`1.5e+10`, `1e-07`).
pub fn format_float_g(v: f64) -> String {
    if !v.is_finite() {
        return format_float(v);
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} writes a decimal exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format_float(v)
    }
}

/// Go's `strconv.ParseBool`, which is what sops uses to read `type:bool` values.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_match_go() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(7.0), "7");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(canonical(ScalarType::Int, b"+007").unwrap().as_str(), "7");
        assert_eq!(
            canonical(ScalarType::Bool, b"true").unwrap().as_str(),
            "True"
        );
    }
}
