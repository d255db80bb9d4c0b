//! Intrinsic functions (`States.Format(...)` and friends), parsed once at load
//! time and evaluated against an [`Env`].
//!
//! Arguments are string literals in single quotes (escapes `\'`, `\{`, `\}`,
//! `\\`), numbers, `true`/`false`/`null`, paths (`$...`, `$$...`) or nested
//! calls. Argument counts are checked at load time; argument types at run
//! time, where a mismatch raises `States.IntrinsicFailure`.

use crate::env::Env;
use crate::error::StateError;
use crate::path::JsonPath;
use base64::Engine as _;
use serde_json::Value;

/// One intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Literal(Value),
    Path(JsonPath),
    Call(Call),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("States.Format", Func::Format, 1, usize::MAX),
    ("States.StringToJson", Func::StringToJson, 1, 1),
    ("States.JsonToString", Func::JsonToString, 1, 1),
    ("States.Array", Func::Array, 0, usize::MAX),
    ("States.ArrayPartition", Func::ArrayPartition, 2, 2),
    ("States.ArrayContains", Func::ArrayContains, 2, 2),
    ("States.ArrayRange", Func::ArrayRange, 3, 3),
    ("States.ArrayGetItem", Func::ArrayGetItem, 2, 2),
    ("States.ArrayLength", Func::ArrayLength, 1, 1),
    ("States.ArrayUnique", Func::ArrayUnique, 1, 1),
    ("States.Base64Encode", Func::Base64Encode, 1, 1),
    ("States.Base64Decode", Func::Base64Decode, 1, 1),
    ("States.Hash", Func::Hash, 2, 2),
    ("States.JsonMerge", Func::JsonMerge, 3, 3),
    ("States.MathRandom", Func::MathRandom, 2, 3),
    ("States.MathAdd", Func::MathAdd, 2, 2),
    ("States.StringSplit", Func::StringSplit, 2, 2),
    ("States.UUID", Func::Uuid, 0, 0),
];

/// Largest input the string/hash functions accept, as on AWS.
const MAX_STRING: usize = 10_000;
/// Largest array `States.ArrayRange` may build, as on AWS.
const MAX_RANGE: usize = 1_000;

/// Whether a `.$` value is an intrinsic function call rather than a path.
pub fn looks_like_call(s: &str) -> bool {
    s.starts_with("States.")
}

impl Call {
    /// Parse a whole string such as `States.Format('{}', $.a)`.
    pub fn parse(text: &str) -> Result<Call, String> {
        let mut p = P { s: text, i: 0 };
        let call = p.call()?;
        p.ws();
        if p.i != text.len() {
            return Err(format!("unexpected text after the call: '{}'", &text[p.i..]));
        }
        Ok(call)
    }

    /// Evaluate the call.
    pub fn eval(&self, env: &Env<'_>) -> Result<Value, StateError> {
        let args = self
            .args
            .iter()
            .map(|a| match a {
                Arg::Literal(v) => Ok(v.clone()),
                Arg::Path(p) => env.resolve(p).map_err(|e| StateError::runtime(e.to_string())),
                Arg::Call(c) => c.eval(env),
            })
            .collect::<Result<Vec<_>, _>>()?;
        apply(self.func, args)
    }

    fn name(&self) -> &'static str {
        FUNCS.iter().find(|f| f.1 == self.func).map(|f| f.0).unwrap_or("States.?")
    }
}

struct P<'a> {
    s: &'a str,
    i: usize,
}

impl P<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn ws(&mut self) {
        while self.rest().starts_with([' ', '\t', '\n']) {
            self.i += 1;
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        self.ws();
        let start = self.i;
        while self.rest().starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.') {
            self.i += 1;
        }
        let name = &self.s[start..self.i];
        let &(_, func, min, max) = FUNCS
            .iter()
            .find(|f| f.0 == name)
            .ok_or_else(|| format!("unknown intrinsic function '{name}'"))?;
        self.ws();
        if !self.rest().starts_with('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.i += 1;
        let mut args = Vec::new();
        self.ws();
        if self.rest().starts_with(')') {
            self.i += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.ws();
                if self.rest().starts_with(',') {
                    self.i += 1;
                } else if self.rest().starts_with(')') {
                    self.i += 1;
                    break;
                } else {
                    return Err(format!("expected ',' or ')' in the arguments of {name}"));
                }
            }
        }
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!("{name} takes {want} argument(s), got {}", args.len()));
        }
        if func == Func::Format
            && let Some(Arg::Literal(Value::String(t))) = args.first()
        {
            let holes = count_placeholders(t);
            if holes != args.len() - 1 {
                return Err(format!(
                    "States.Format template has {holes} placeholder(s) but {} argument(s) follow",
                    args.len() - 1
                ));
            }
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.ws();
        let r = self.rest();
        if r.starts_with('\'') {
            return self.string().map(|s| Arg::Literal(Value::String(s)));
        }
        if r.starts_with('$') {
            // A path runs to the next ',' or ')' outside brackets and quotes.
            let start = self.i;
            let mut depth = 0i32;
            let mut quote: Option<char> = None;
            let r = r.to_string();
            for (off, c) in r.char_indices() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '\'' | '"') => quote = Some(c),
                    (None, '[' | '(') => depth += 1,
                    (None, ']') => depth -= 1,
                    (None, ')') if depth > 0 => depth -= 1,
                    (None, ',' | ')') if depth == 0 => {
                        self.i = start + off;
                        break;
                    }
                    _ => {}
                }
                self.i = start + off + c.len_utf8();
            }
            let text = self.s[start..self.i].trim_end();
            return JsonPath::parse(text).map(Arg::Path).map_err(|e| e.to_string());
        }
        if r.starts_with("States.") {
            return self.call().map(Arg::Call);
        }
        let start = self.i;
        while self.rest().starts_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')) {
            self.i += 1;
        }
        let t = &self.s[start..self.i];
        match serde_json::from_str::<Value>(t) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Arg::Literal(v)),
            _ => Err(format!("bad argument '{t}'")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        let start = self.i;
        while let Some((off, c)) = chars.next() {
            match c {
                '\'' => {
                    self.i = start + off + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    // `\{` and `\}` stay escaped so States.Format can tell them
                    // from placeholders; `format` unescapes them.
                    Some((_, n @ ('{' | '}'))) => {
                        out.push('\\');
                        out.push(n);
                    }
                    Some((_, n)) => out.push(n),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("unterminated string literal".into())
    }
}

fn count_placeholders(t: &str) -> usize {
    let mut n = 0;
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                n += 1;
            }
            _ => {}
        }
    }
    n
}

/// Unescape a literal that contains no placeholders (plain string argument).
fn unescape_braces(s: &str) -> String {
    s.replace("\\{", "{").replace("\\}", "}")
}

fn fail(f: Func, msg: impl std::fmt::Display) -> StateError {
    let name = Call { func: f, args: vec![] }.name();
    StateError::intrinsic(format!("Invalid arguments in {name}: {msg}"))
}

fn as_str(f: Func, v: &Value, what: &str) -> Result<String, StateError> {
    match v {
        Value::String(s) => Ok(unescape_braces(s)),
        other => Err(fail(f, format!("{what} must be a string, got {other}"))),
    }
}

fn as_array(f: Func, v: Value, what: &str) -> Result<Vec<Value>, StateError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(fail(f, format!("{what} must be an array, got {other}"))),
    }
}

fn as_int(f: Func, v: &Value, what: &str) -> Result<i64, StateError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
            .ok_or_else(|| fail(f, format!("{what} must be an integer, got {n}"))),
        other => Err(fail(f, format!("{what} must be an integer, got {other}"))),
    }
}

fn apply(f: Func, mut args: Vec<Value>) -> Result<Value, StateError> {
    match f {
        Func::Format => {
            let template = match args.first() {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(fail(f, "the template must be a string")),
            };
            let mut out = String::new();
            let mut rest = args.iter().skip(1);
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    }
                    '{' if chars.peek() == Some(&'}') => {
                        chars.next();
                        match rest.next() {
                            Some(Value::String(s)) => out.push_str(s),
                            Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                                out.push_str(&v.to_string())
                            }
                            Some(v) => {
                                return Err(fail(
                                    f,
                                    format!("cannot format a {}", crate::path::type_name(v)),
                                ));
                            }
                            None => return Err(fail(f, "more placeholders than arguments")),
                        }
                    }
                    c => out.push(c),
                }
            }
            if rest.next().is_some() {
                return Err(fail(f, "more arguments than placeholders"));
            }
            Ok(Value::String(out))
        }
        Func::StringToJson => {
            let s = as_str(f, &args[0], "the argument")?;
            serde_json::from_str(&s).map_err(|e| fail(f, format!("not JSON: {e}")))
        }
        Func::JsonToString => Ok(Value::String(args[0].to_string())),
        Func::Array => Ok(Value::Array(args.into_iter().map(unescape_value).collect())),
        Func::ArrayPartition => {
            let size = as_int(f, &args[1], "the chunk size")?;
            if size <= 0 {
                return Err(fail(f, "the chunk size must be positive"));
            }
            let arr = as_array(f, args.swap_remove(0), "the first argument")?;
            Ok(Value::Array(arr.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
        }
        Func::ArrayContains => {
            let needle = args.pop().unwrap_or(Value::Null);
            let arr = as_array(f, args.swap_remove(0), "the first argument")?;
            Ok(Value::Bool(arr.contains(&needle)))
        }
        Func::ArrayRange => {
            let start = as_int(f, &args[0], "start")?;
            let end = as_int(f, &args[1], "end")?;
            let step = as_int(f, &args[2], "step")?;
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
                i += step;
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
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
        Func::Base64Encode => {
            let s = as_str(f, &args[0], "the argument")?;
            if s.len() > MAX_STRING {
                return Err(fail(f, format!("input longer than {MAX_STRING} characters")));
            }
            Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s)))
        }
        Func::Base64Decode => {
            let s = as_str(f, &args[0], "the argument")?;
            if s.len() > MAX_STRING {
                return Err(fail(f, format!("input longer than {MAX_STRING} characters")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| fail(f, format!("not base64: {e}")))?;
            String::from_utf8(bytes).map(Value::String).map_err(|_| fail(f, "decoded data is not UTF-8"))
        }
        Func::Hash => {
            let data = match &args[0] {
                Value::String(s) => unescape_braces(s),
                other => other.to_string(),
            };
            if data.len() > MAX_STRING {
                return Err(fail(f, format!("input longer than {MAX_STRING} characters")));
            }
            let algo = as_str(f, &args[1], "the algorithm")?;
            Ok(Value::String(hash(&algo, data.as_bytes()).ok_or_else(|| {
                fail(f, format!("unknown algorithm '{algo}' (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"))
            })?))
        }
        Func::JsonMerge => {
            if args[2] != Value::Bool(false) {
                return Err(fail(f, "only shallow merging (false) is supported, as on AWS"));
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
            let start = as_int(f, &args[0], "start")?;
            let end = as_int(f, &args[1], "end")?;
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
            let a = as_int(f, &args[0], "the first argument")?;
            let b = as_int(f, &args[1], "the second argument")?;
            a.checked_add(b).map(Value::from).ok_or_else(|| fail(f, "overflow"))
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

fn unescape_value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(unescape_braces(&s)),
        other => other,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expr: &str, input: Value) -> Result<Value, StateError> {
        let ctx = || json!({"Execution": {"Name": "exec-1"}});
        let env = Env::new(&input, &ctx);
        Call::parse(expr).map_err(StateError::intrinsic)?.eval(&env)
    }

    #[test]
    fn format_with_escapes_and_paths() {
        assert_eq!(
            run(
                "States.Format('Hello, {}! You are {} \\{literal\\} it\\'s', $.name, $.age)",
                json!({"name": "Ann", "age": 30})
            )
            .unwrap(),
            json!("Hello, Ann! You are 30 {literal} it's")
        );
        assert_eq!(run("States.Format('{}', $$.Execution.Name)", json!({})).unwrap(), json!("exec-1"));
        assert!(Call::parse("States.Format('{} {}', $.a)").is_err());
        assert_eq!(
            run("States.Format('{}', $.o)", json!({"o": {}})).unwrap_err().error,
            "States.IntrinsicFailure"
        );
    }

    #[test]
    fn json_round_trip() {
        assert_eq!(
            run("States.StringToJson($.s)", json!({"s": "{\"a\":[1,2]}"})).unwrap(),
            json!({"a": [1, 2]})
        );
        assert_eq!(run("States.JsonToString($.o)", json!({"o": {"a": 1}})).unwrap(), json!("{\"a\":1}"));
    }

    #[test]
    fn arrays() {
        assert_eq!(
            run("States.Array('a', 1, true, null, $.x)", json!({"x": [1]})).unwrap(),
            json!(["a", 1, true, null, [1]])
        );
        assert_eq!(
            run("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3, 4, 5]})).unwrap(),
            json!([[1, 2], [3, 4], [5]])
        );
        assert_eq!(run("States.ArrayContains($.a, 3)", json!({"a": [1, 2, 3]})).unwrap(), json!(true));
        assert_eq!(run("States.ArrayContains($.a, 9)", json!({"a": [1, 2, 3]})).unwrap(), json!(false));
        assert_eq!(run("States.ArrayRange(1, 9, 2)", json!({})).unwrap(), json!([1, 3, 5, 7, 9]));
        assert_eq!(run("States.ArrayRange(3, 1, -1)", json!({})).unwrap(), json!([3, 2, 1]));
        assert!(run("States.ArrayRange(0, 5000, 1)", json!({})).is_err());
        assert_eq!(run("States.ArrayGetItem($.a, 1)", json!({"a": [1, 2, 3]})).unwrap(), json!(2));
        assert!(run("States.ArrayGetItem($.a, 5)", json!({"a": [1]})).is_err());
        assert_eq!(run("States.ArrayLength($.a)", json!({"a": [1, 2, 3]})).unwrap(), json!(3));
        assert_eq!(
            run("States.ArrayUnique($.a)", json!({"a": [1, 2, 2, 1, "x", "x"]})).unwrap(),
            json!([1, 2, "x"])
        );
        assert_eq!(run("States.ArrayLength(States.Array(1, 2))", json!({})).unwrap(), json!(2));
    }

    #[test]
    fn encoding_and_hashing() {
        assert_eq!(
            run("States.Base64Encode('Data to encode')", json!({})).unwrap(),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            run("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})).unwrap(),
            json!("Data to encode")
        );
        assert_eq!(
            run("States.Hash('input data', 'SHA-1')", json!({})).unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            run("States.Hash('abc', 'MD5')", json!({})).unwrap(),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            run("States.Hash('abc', 'SHA-256')", json!({})).unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(run("States.Hash('abc', 'SHA-3')", json!({})).is_err());
    }

    #[test]
    fn merge_math_split_uuid() {
        assert_eq!(
            run(
                "States.JsonMerge($.a, $.b, false)",
                json!({"a": {"x": 1, "n": {"p": 1}}, "b": {"y": 2, "n": {"q": 2}}})
            )
            .unwrap(),
            json!({"x": 1, "y": 2, "n": {"q": 2}})
        );
        assert!(run("States.JsonMerge($.a, $.a, true)", json!({"a": {}})).is_err());
        assert_eq!(run("States.MathAdd($.n, -3)", json!({"n": 10})).unwrap(), json!(7));
        let r = run("States.MathRandom(1, 10)", json!({})).unwrap().as_i64().unwrap();
        assert!((1..10).contains(&r));
        assert_eq!(
            run("States.MathRandom(1, 1000, 7)", json!({})).unwrap(),
            run("States.MathRandom(1, 1000, 7)", json!({})).unwrap()
        );
        assert_eq!(
            run("States.StringSplit('This.is+a,test=string', '.+,=')", json!({})).unwrap(),
            json!(["This", "is", "a", "test", "string"])
        );
        let u = run("States.UUID()", json!({})).unwrap();
        let u = u.as_str().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn parse_errors() {
        assert!(Call::parse("States.Nope(1)").unwrap_err().contains("unknown intrinsic"));
        assert!(Call::parse("States.ArrayLength()").unwrap_err().contains("takes 1"));
        assert!(Call::parse("States.Format('x'").is_err());
        assert!(Call::parse("States.UUID() extra").is_err());
    }
}
