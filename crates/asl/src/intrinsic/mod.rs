//! Intrinsic functions (`States.Format(...)` and friends), parsed once at load
//! time and evaluated against an [`Env`].
//!
//! The rules follow "Intrinsic functions for JSONPath states in Step
//! Functions" (AWS Step Functions Developer Guide,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html>):
//!
//! - at most 10 intrinsic functions in one field (a load-time error here);
//! - string literals are in single quotes; `'`, `{`, `}` and `\` are reserved
//!   and written `\'`, `\{`, `\}`, `\\`; any other backslash is an "open
//!   escape", a runtime error (`States.Runtime`) when the field is evaluated;
//! - a path argument names fields in dot notation only with letters, digits
//!   and `_` (JSONPath `member-name-shorthand`); anything else needs brackets,
//!   `$['my-field']` (a load-time error here);
//! - argument counts are checked at load time, argument types and values at
//!   run time, where a mismatch raises `States.IntrinsicFailure`.
//!
//! Each function's own rules are in [`funcs`].

mod funcs;
#[cfg(test)]
mod tests;

use crate::env::Env;
use crate::error::StateError;
use crate::path::JsonPath;
use serde_json::Value;

pub use funcs::uuid_v4;

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
    /// The literal first argument of `States.Format`, with its placeholders.
    Template(Vec<Piece>),
    /// A string literal with an open escape: evaluating it is a runtime error.
    OpenEscape(String),
}

/// Part of a `States.Format` template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Hole,
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

/// Name, function, fewest and most arguments.
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

/// Intrinsic functions one field may hold, nested ones included.
pub const MAX_FUNCTIONS_PER_FIELD: usize = 10;

/// Whether a `.$` value is an intrinsic function call rather than a path.
pub fn looks_like_call(s: &str) -> bool {
    s.starts_with("States.")
}

impl Func {
    fn name(self) -> &'static str {
        FUNCS.iter().find(|f| f.1 == self).map(|f| f.0).unwrap_or("States.?")
    }
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
        let n = call.count();
        if n > MAX_FUNCTIONS_PER_FIELD {
            return Err(format!(
                "{n} intrinsic functions in one field; at most {MAX_FUNCTIONS_PER_FIELD} may be nested"
            ));
        }
        Ok(call)
    }

    /// This call and the calls nested in its arguments.
    fn count(&self) -> usize {
        1 + self.args.iter().map(|a| if let Arg::Call(c) = a { c.count() } else { 0 }).sum::<usize>()
    }

    /// Evaluate the call.
    pub fn eval(&self, env: &Env<'_>) -> Result<Value, StateError> {
        let mut template = None;
        let mut args = Vec::with_capacity(self.args.len());
        for a in &self.args {
            match a {
                Arg::Literal(v) => args.push(v.clone()),
                Arg::Path(p) => args.push(env.resolve(p).map_err(|e| StateError::runtime(e.to_string()))?),
                Arg::Call(c) => args.push(c.eval(env)?),
                Arg::Template(pieces) => {
                    template = Some(pieces.clone());
                    args.push(Value::Null);
                }
                Arg::OpenEscape(msg) => return Err(StateError::runtime(msg.clone())),
            }
        }
        funcs::apply(self.func, template, args)
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
                let first_of_format = func == Func::Format && args.is_empty();
                args.push(self.arg(first_of_format)?);
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
        if let Some(Arg::Template(pieces)) = args.first() {
            let holes = pieces.iter().filter(|p| **p == Piece::Hole).count();
            if holes != args.len() - 1 {
                return Err(format!(
                    "States.Format template has {holes} placeholder(s) but {} argument(s) follow",
                    args.len() - 1
                ));
            }
        }
        // The guide: States.JsonToString "takes only one argument, which is the path".
        if func == Func::JsonToString && !matches!(args[0], Arg::Path(_)) {
            return Err("States.JsonToString takes a path ($... or $$...) as its argument".into());
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self, format_template: bool) -> Result<Arg, String> {
        self.ws();
        let r = self.rest();
        if r.starts_with('\'') {
            let lit = self.string()?;
            return Ok(match lit {
                Literal::Ok { text, pieces } => {
                    if format_template {
                        Arg::Template(pieces)
                    } else {
                        Arg::Literal(Value::String(text))
                    }
                }
                Literal::OpenEscape(msg) => Arg::OpenEscape(msg),
            });
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
            shorthand_names(text)?;
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

    /// A single-quoted literal: `\'`, `\{`, `\}`, `\\` are the escapes;
    /// an unescaped `{}` is a placeholder (it only means one in the first
    /// argument of `States.Format`, where `pieces` is used).
    fn string(&mut self) -> Result<Literal, String> {
        self.i += 1;
        let start = self.i;
        let mut text = String::new();
        let mut pieces = Vec::new();
        let mut piece = String::new();
        let mut open_escape = None;
        let mut chars = self.rest().char_indices().peekable();
        while let Some((off, c)) = chars.next() {
            match c {
                '\'' => {
                    self.i = start + off + 1;
                    if let Some(msg) = open_escape {
                        return Ok(Literal::OpenEscape(msg));
                    }
                    if !piece.is_empty() {
                        pieces.push(Piece::Text(piece));
                    }
                    return Ok(Literal::Ok { text, pieces });
                }
                '\\' => match chars.peek() {
                    Some(&(_, n @ ('\'' | '{' | '}' | '\\'))) => {
                        chars.next();
                        text.push(n);
                        piece.push(n);
                    }
                    other => {
                        // Keep scanning to the closing quote, so the rest of
                        // the call still parses; evaluating it fails.
                        let after = other.map_or("the end".to_string(), |(_, n)| format!("'{n}'"));
                        open_escape.get_or_insert(format!(
                            "Invalid escape in an intrinsic function string: a backslash before {after} (only \\', \\{{, \\}} and \\\\ are escapes)"
                        ));
                    }
                },
                '{' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    text.push_str("{}");
                    if !piece.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut piece)));
                    }
                    pieces.push(Piece::Hole);
                }
                c => {
                    text.push(c);
                    piece.push(c);
                }
            }
        }
        Err("unterminated string literal".into())
    }
}

enum Literal {
    Ok { text: String, pieces: Vec<Piece> },
    OpenEscape(String),
}

/// The guide: a path passed to an intrinsic must use bracket notation for a
/// field name with characters outside JSONPath's `member-name-shorthand`
/// (letters, digits, `_`, not starting with a digit).
fn shorthand_names(path: &str) -> Result<(), String> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, '.') if depth == 0 => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                let ok = name == "*"
                    || name.is_empty()
                    || (!name.starts_with(|c: char| c.is_ascii_digit())
                        && name.chars().all(|c| c.is_alphanumeric() || c == '_'));
                if !ok {
                    return Err(format!(
                        "the path '{path}' names the field '{name}' in dot notation; an intrinsic function argument needs bracket notation for it: ['{name}']"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
