//! What each intrinsic function does with its evaluated arguments, and the
//! argument rules of "Intrinsic functions for JSONPath states in Step
//! Functions" (AWS Step Functions Developer Guide):
//!
//! - `States.ArrayPartition`: an array (at most 256 KiB) and a positive chunk
//!   size; a non-integer size is rounded to the nearest integer.
//! - `States.ArrayContains`: an array (at most 256 KiB) and any JSON value.
//! - `States.ArrayRange`: start, end, step; non-integers are rounded; the
//!   step is not 0; the array has at most 1000 items.
//! - `States.Base64Encode` / `Base64Decode`: a string of at most 10,000
//!   characters.
//! - `States.Hash`: data of at most 10,000 characters; MD5, SHA-1, SHA-256,
//!   SHA-384 or SHA-512.
//! - `States.JsonMerge`: two objects and `false` (shallow merge only).
//! - `States.MathRandom`: start (inclusive), end (exclusive), optional seed;
//!   a non-integer start or end is rounded.
//! - `States.MathAdd`: two integers in -2147483648..=2147483647; non-integers
//!   are rounded.
//! - `States.StringSplit`: a string and a string of delimiter characters.
//! - `States.Format`: `{}` placeholders, one argument each; an argument is a
//!   string, number, boolean or null, never an array or object.
//!
//! Where the guide is silent: "nearest integer" leaves halves open; they round
//! up (towards +infinity, as Java's `Math.round`, the service's language).
//! A template that comes from a path has `{}` placeholders and no escapes
//! (the reserved characters are a rule of the invocation string, not of data).
//! Numbers compare by value in `ArrayContains`/`ArrayUnique` (`1` equals `1.0`).

use super::{Func, Piece};
use crate::error::StateError;
use crate::limits;
use base64::Engine as _;
use serde_json::Value;

/// Largest input the string and hash functions accept, in characters.
const MAX_STRING_CHARS: usize = 10_000;
/// Largest array `States.ArrayRange` may build.
const MAX_RANGE: usize = 1_000;

fn fail(f: Func, msg: impl std::fmt::Display) -> StateError {
    StateError::intrinsic(format!("Invalid arguments in {}: {msg}", f.name()))
}

fn as_str(f: Func, v: &Value, what: &str) -> Result<String, StateError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(fail(f, format!("{what} must be a string, got {other}"))),
    }
}

fn as_array(f: Func, v: Value, what: &str) -> Result<Vec<Value>, StateError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(fail(f, format!("{what} must be an array, got {other}"))),
    }
}

/// An array argument within the payload quota.
fn as_bounded_array(f: Func, v: Value, what: &str) -> Result<Vec<Value>, StateError> {
    let n = limits::json_bytes(&v);
    if n > limits::PAYLOAD_BYTES {
        return Err(fail(
            f,
            format!("{what} is {n} bytes, more than the {} bytes allowed", limits::PAYLOAD_BYTES),
        ));
    }
    as_array(f, v, what)
}

/// An integer, exactly (no rounding).
fn as_int(f: Func, v: &Value, what: &str) -> Result<i64, StateError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0 && x.abs() < 9.0e18).map(|x| x as i64))
            .ok_or_else(|| fail(f, format!("{what} must be an integer, got {n}"))),
        other => Err(fail(f, format!("{what} must be an integer, got {other}"))),
    }
}

/// A number rounded to the nearest integer, halves up.
fn as_rounded_int(f: Func, v: &Value, what: &str) -> Result<i64, StateError> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None => n
                .as_f64()
                .map(|x| (x + 0.5).floor())
                .filter(|x| x.is_finite() && x.abs() < 9.0e18)
                .map(|x| x as i64)
                .ok_or_else(|| fail(f, format!("{what} must be a number within the integer range, got {n}"))),
        },
        other => Err(fail(f, format!("{what} must be a number, got {other}"))),
    }
}

/// A string argument of at most 10,000 characters.
fn as_short_str(f: Func, v: &Value, what: &str) -> Result<String, StateError> {
    let s = as_str(f, v, what)?;
    let n = s.chars().count();
    if n > MAX_STRING_CHARS {
        return Err(fail(f, format!("{what} has {n} characters, more than {MAX_STRING_CHARS}")));
    }
    Ok(s)
}

/// JSON equality with numbers compared by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn format(f: Func, template: Option<Vec<Piece>>, args: &[Value]) -> Result<Value, StateError> {
    let pieces = match template {
        Some(p) => p,
        None => match args.first() {
            Some(Value::String(s)) => split_template(s),
            Some(other) => return Err(fail(f, format!("the template must be a string, got {other}"))),
            None => return Err(fail(f, "the template is missing")),
        },
    };
    let holes = pieces.iter().filter(|p| **p == Piece::Hole).count();
    if holes != args.len() - 1 {
        return Err(fail(f, format!("{holes} placeholder(s) but {} argument(s)", args.len() - 1)));
    }
    let mut out = String::new();
    let mut rest = args.iter().skip(1);
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(&t),
            Piece::Hole => match rest.next() {
                Some(Value::String(s)) => out.push_str(s),
                Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => out.push_str(&v.to_string()),
                Some(v) => return Err(fail(f, format!("cannot format a {}", crate::path::type_name(v)))),
                None => return Err(fail(f, "more placeholders than arguments")),
            },
        }
    }
    Ok(Value::String(out))
}

/// A template string from the input: `{}` is a placeholder, nothing is escaped.
fn split_template(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (i, part) in s.split("{}").enumerate() {
        if i > 0 {
            pieces.push(Piece::Hole);
        }
        if !part.is_empty() {
            pieces.push(Piece::Text(part.to_string()));
        }
    }
    pieces
}

pub(super) fn apply(
    f: Func,
    template: Option<Vec<Piece>>,
    mut args: Vec<Value>,
) -> Result<Value, StateError> {
    match f {
        Func::Format => format(f, template, &args),
        Func::StringToJson => {
            let s = as_str(f, &args[0], "the argument")?;
            serde_json::from_str(&s).map_err(|e| fail(f, format!("not JSON: {e}")))
        }
        Func::JsonToString => Ok(Value::String(args[0].to_string())),
        Func::Array => Ok(Value::Array(args)),
        Func::ArrayPartition => {
            let size = as_rounded_int(f, &args[1], "the chunk size")?;
            if size <= 0 {
                return Err(fail(f, format!("the chunk size must be a positive integer, got {}", args[1])));
            }
            let arr = as_bounded_array(f, args.swap_remove(0), "the first argument")?;
            Ok(Value::Array(arr.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
        }
        Func::ArrayContains => {
            let needle = args.pop().unwrap_or(Value::Null);
            let arr = as_bounded_array(f, args.swap_remove(0), "the first argument")?;
            Ok(Value::Bool(arr.iter().any(|v| same(v, &needle))))
        }
        Func::ArrayRange => {
            let start = as_rounded_int(f, &args[0], "start")?;
            let end = as_rounded_int(f, &args[1], "end")?;
            let step = as_rounded_int(f, &args[2], "step")?;
            if step == 0 {
                return Err(fail(f, "step must not be 0"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                if out.len() == MAX_RANGE {
                    return Err(fail(f, format!("the range has more than {MAX_RANGE} elements")));
                }
                out.push(Value::from(i));
                match i.checked_add(step) {
                    Some(n) => i = n,
                    None => break,
                }
            }
            Ok(Value::Array(out))
        }
        Func::ArrayGetItem => {
            let idx = as_int(f, &args[1], "the index")?;
            let arr = as_array(f, args.swap_remove(0), "the first argument")?;
            usize::try_from(idx)
                .ok()
                .and_then(|i| arr.get(i).cloned())
                .ok_or_else(|| fail(f, format!("index {idx} is out of bounds")))
        }
        Func::ArrayLength => {
            let arr = as_array(f, args.swap_remove(0), "the argument")?;
            Ok(Value::from(arr.len()))
        }
        Func::ArrayUnique => {
            let arr = as_array(f, args.swap_remove(0), "the argument")?;
            let mut out: Vec<Value> = Vec::with_capacity(arr.len());
            for v in arr {
                if !out.iter().any(|o| same(o, &v)) {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
        Func::Base64Encode => {
            let s = as_short_str(f, &args[0], "the argument")?;
            Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s)))
        }
        Func::Base64Decode => {
            let s = as_short_str(f, &args[0], "the argument")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| fail(f, format!("not base64: {e}")))?;
            String::from_utf8(bytes).map(Value::String).map_err(|_| fail(f, "decoded data is not UTF-8"))
        }
        Func::Hash => {
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let data = as_short_str(f, &Value::String(data), "the data")?;
            let algo = as_str(f, &args[1], "the algorithm")?;
            Ok(Value::String(hash(&algo, data.as_bytes()).ok_or_else(|| {
                fail(f, format!("unknown algorithm '{algo}' (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"))
            })?))
        }
        Func::JsonMerge => {
            if args[2] != Value::Bool(false) {
                return Err(fail(f, "the third argument must be false: only shallow merging is supported"));
            }
            let b = args.swap_remove(1);
            let a = args.swap_remove(0);
            match (a, b) {
                (Value::Object(mut a), Value::Object(b)) => {
                    for (k, v) in b {
                        a.insert(k, v);
                    }
                    Ok(Value::Object(a))
                }
                _ => Err(fail(f, "both arguments must be objects")),
            }
        }
        Func::MathRandom => {
            let start = as_rounded_int(f, &args[0], "start")?;
            let end = as_rounded_int(f, &args[1], "end")?;
            if end <= start {
                return Err(fail(f, "end must be greater than start"));
            }
            let n = match args.get(2) {
                Some(seed) => {
                    let seed = as_int(f, seed, "seed")?;
                    fastrand::Rng::with_seed(seed as u64).i64(start..end)
                }
                None => fastrand::i64(start..end),
            };
            Ok(Value::from(n))
        }
        Func::MathAdd => {
            let mut sum = 0i64;
            for (v, what) in args.iter().zip(["the first argument", "the second argument"]) {
                let n = as_rounded_int(f, v, what)?;
                if i32::try_from(n).is_err() {
                    return Err(fail(f, format!("{what} ({n}) is outside -2147483648..2147483647")));
                }
                sum += n;
            }
            Ok(Value::from(sum))
        }
        Func::StringSplit => {
            let s = as_str(f, &args[0], "the string")?;
            let d = as_str(f, &args[1], "the delimiter")?;
            let parts = s
                .split(|c| d.contains(c))
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_string()))
                .collect();
            Ok(Value::Array(parts))
        }
        Func::Uuid => Ok(Value::String(uuid_v4())),
    }
}

fn hash(algo: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest;
    let bytes: Vec<u8> = match algo {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random (version 4) UUID in the canonical lower-case form.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
