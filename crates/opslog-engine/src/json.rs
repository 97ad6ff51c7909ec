//! JSON text handling that never re-formats what JavaScript produced.
//!
//! Records live as the exact text `JSON.stringify` gave. Text read from files may have been
//! written by another tool (pretty-printed legacy snapshots, hand edits), so it is brought to the
//! form `JSON.stringify(JSON.parse(text))` would have: [`canonicalize`] returns the input
//! untouched when it already is in that form (the usual case) and rewrites it otherwise.

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting accepted when a value must be rewritten (recursion guard for hostile input).
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

fn err<T>(msg: &str, at: usize) -> Result<T, JsonError> {
    Err(JsonError(format!("{msg} at byte {at}")))
}

/// One top-level member of an object: raw key token (quotes included) and raw value text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// What kind of value a raw JSON text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// A string escape: the letter of a short one (`\\n`, `\\"`, ...) or the code unit of a `\\uXXXX`.
#[derive(Clone, Copy)]
enum Escape {
    Short(u8),
    Unit(u16),
}

impl Escape {
    /// The UTF-16 code unit it stands for.
    fn unit(self) -> u16 {
        match self {
            Escape::Short(b'b') => 0x08,
            Escape::Short(b'f') => 0x0c,
            Escape::Short(b'n') => 0x0a,
            Escape::Short(b'r') => 0x0d,
            Escape::Short(b't') => 0x09,
            Escape::Short(c) => u16::from(c),
            Escape::Unit(u) => u,
        }
    }
}

/// The escape `b` starts with (at its backslash) and its length in bytes: JSON's escape grammar,
/// for every reader that validates, decodes or checks strings (`valid_string_len` skips escapes
/// of text already checked without it).
fn escape_at(b: &[u8]) -> Result<(Escape, usize), &'static str> {
    match b.get(1) {
        Some(&c @ (b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't')) => {
            Ok((Escape::Short(c), 2))
        }
        Some(b'u') => {
            let hex = b.get(2..6).ok_or("bad unicode escape")?;
            let mut unit = 0u16;
            for &h in hex {
                let digit = char::from(h).to_digit(16).ok_or("bad unicode escape")?;
                unit = unit << 4 | digit as u16;
            }
            Ok((Escape::Unit(unit), 6))
        }
        _ => Err("bad escape"),
    }
}

/// The length of the JSON string token `text` starts with (quotes included), if it starts with one.
pub fn string_token_len(text: &str) -> Option<usize> {
    let mut sc = Scanner::new(text);
    sc.skip_string().ok().map(|()| sc.pos)
}

/// The length of the JSON value `text` starts with, if it starts with one.
pub fn value_token_len(text: &str) -> Option<usize> {
    let mut sc = Scanner::new(text);
    sc.skip_value().ok().map(|()| sc.pos)
}

/// `string_token_len` for text known to be valid JSON (an op line that was checked), without
/// the checks, and whether the string has escapes. It does not panic on other text, but its
/// answer is then meaningless. (For `getWalOps` batches, which the worker builds from checked
/// lines: 100,000 ops in ~18 ms instead of ~25 ms with the checking scanners.)
pub fn valid_string_len(text: &str) -> Option<(usize, bool)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut at = 1;
    let mut escapes = false;
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'"' {
            return Some((at + 1, escapes));
        }
        // A backslash and the character it escapes (the digits of `\uXXXX` need no skipping).
        escapes = true;
        at += 2;
    }
}

/// `value_token_len` for text known to be valid JSON (an op line that was checked), without the
/// checks. It does not panic on other text, but its answer is then meaningless.
pub fn valid_value_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|c| !c.is_ascii_whitespace())?;
    let mut at = start;
    let mut depth = 0usize;
    loop {
        match *bytes.get(at)? {
            b'"' => at += valid_string_len(&text[at..])?.0,
            b'{' | b'[' => {
                depth += 1;
                at += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            _ if depth == 0 => {
                // A number or literal: up to the next delimiter.
                at += bytes[at..]
                    .iter()
                    .position(|&c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                    .unwrap_or(bytes.len() - at);
            }
            _ => at += 1,
        }
        if depth == 0 {
            return Some(at);
        }
    }
}

pub fn kind_of(raw: &str) -> Kind {
    match raw.as_bytes().first() {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            s: text.as_bytes(),
            text,
            pos: 0,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            err(&format!("expected '{}'", b as char), self.pos)
        }
    }

    /// Skips a string token (starting at the opening quote), validating its escapes.
    fn skip_string(&mut self) -> Result<(), JsonError> {
        self.expect(b'"')?;
        loop {
            // The run of plain characters up to the next quote, backslash or control character:
            // one look-up a byte (record strings are short, too short for a vector search, or
            // eight bytes a step, to repay its setup: both measured slower).
            let rest = &self.s[self.pos..];
            let Some(special) = rest.iter().position(|&c| STRING_SPECIAL[c as usize]) else {
                self.pos = self.s.len();
                return err("unterminated string", self.pos);
            };
            self.pos += special;
            match rest[special] {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => match escape_at(&self.s[self.pos..]) {
                    Ok((_, len)) => self.pos += len,
                    Err(msg) => return err(msg, self.pos),
                },
                _ => return err("control character in string", self.pos),
            }
        }
    }

    fn skip_number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return err("bad number", start),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return err("bad number", start);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return err("bad number", start);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            err("unexpected token", self.pos)
        }
    }

    /// Skips one value without recursion (so hostile nesting cannot exhaust the stack).
    fn skip_value(&mut self) -> Result<(), JsonError> {
        // Each entry: true = inside an object, false = inside an array.
        let mut stack = BoolStack::default();
        loop {
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(true);
                        self.skip_string()?;
                        self.ws();
                        self.expect(b':')?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                Some(b'"') => self.skip_string()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                _ => return err("unexpected token", self.pos),
            }
            // A value just ended: close containers or move to the next element.
            loop {
                let Some(in_object) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.ws();
                            self.skip_string()?;
                            self.ws();
                            self.expect(b':')?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {
                        self.pos += 1;
                        stack.pop();
                    }
                    Some(b']') if !in_object => {
                        self.pos += 1;
                        stack.pop();
                    }
                    _ => return err("expected ',' or closing bracket", self.pos),
                }
            }
        }
    }

    fn slice(&self, from: usize) -> &'a str {
        &self.text[from..self.pos]
    }
}

/// The bytes that end a string's plain run: its closing quote, a backslash, a control character.
static STRING_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Checks that `text` is exactly one JSON value (surrounding whitespace allowed).
pub fn validate(text: &str) -> Result<(), JsonError> {
    let mut sc = Scanner::new(text);
    sc.skip_value()?;
    sc.ws();
    if sc.pos != text.len() {
        return err("unexpected data after JSON value", sc.pos);
    }
    Ok(())
}

/// The top-level items of the one container `text` holds: `(key token, value)` of an object
/// (`open` = `{`), or `(None, element)` of an array (`open` = `[`).
fn container_items(text: &str, open: u8) -> Result<Vec<(Option<&str>, &str)>, JsonError> {
    let close = if open == b'{' { b'}' } else { b']' };
    let mut sc = Scanner::new(text);
    sc.ws();
    sc.expect(open)?;
    let mut items = Vec::new();
    sc.ws();
    if sc.peek() == Some(close) {
        sc.pos += 1;
    } else {
        loop {
            sc.ws();
            let key = if open == b'{' {
                let k = sc.pos;
                sc.skip_string()?;
                let key = sc.slice(k);
                sc.ws();
                sc.expect(b':')?;
                sc.ws();
                Some(key)
            } else {
                None
            };
            let v = sc.pos;
            sc.skip_value()?;
            items.push((key, sc.slice(v)));
            sc.ws();
            match sc.peek() {
                Some(b',') => sc.pos += 1,
                Some(c) if c == close => {
                    sc.pos += 1;
                    break;
                }
                _ => return err(&format!("expected ',' or '{}'", close as char), sc.pos),
            }
        }
    }
    sc.ws();
    if sc.pos != text.len() {
        return err("unexpected data after JSON value", sc.pos);
    }
    Ok(items)
}

/// The top-level members of an object, in text order (duplicates kept as written).
pub fn object_members(text: &str) -> Result<Vec<Member<'_>>, JsonError> {
    Ok(container_items(text, b'{')?
        .into_iter()
        .map(|(key, value)| Member {
            key: key.expect("object items have keys"),
            value,
        })
        .collect())
}

/// The elements of an array, as raw texts.
pub fn array_elements(text: &str) -> Result<Vec<&str>, JsonError> {
    Ok(container_items(text, b'[')?
        .into_iter()
        .map(|(_, value)| value)
        .collect())
}

/// Members of an object with JSON.parse semantics for duplicate keys: the last value wins,
/// at the position of the first occurrence. Keys compare by their decoded text.
pub fn object_members_dedup(text: &str) -> Result<Vec<Member<'_>>, JsonError> {
    let mut members = object_members(text)?;
    if members.len() > 1 {
        let mut out: Vec<Member<'_>> = Vec::with_capacity(members.len());
        let mut canon_keys: Vec<String> = Vec::with_capacity(members.len());
        for m in members.drain(..) {
            let ck = canonical_string(m.key)?;
            if let Some(i) = canon_keys.iter().position(|k| *k == ck) {
                out[i].value = m.value;
            } else {
                canon_keys.push(ck);
                out.push(m);
            }
        }
        return Ok(out);
    }
    Ok(members)
}

/// Decodes a raw string token to Rust text; lone surrogates become U+FFFD.
pub fn decode_string(raw: &str) -> Result<String, JsonError> {
    let units = string_units(raw)?;
    Ok(String::from_utf16_lossy(&units))
}

/// The UTF-16 code units of a raw string token, exactly as JavaScript would hold them (lone
/// surrogates too, which Rust text cannot hold).
pub fn string_units(raw: &str) -> Result<Vec<u16>, JsonError> {
    let mut sc = Scanner::new(raw);
    sc.skip_string()?;
    if sc.pos != raw.len() {
        return err("not a single string", sc.pos);
    }
    let inner = &raw[1..raw.len() - 1];
    let mut units = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let (escape, len) = escape_at(&inner.as_bytes()[i..]).expect("validated escape");
        // The escape's characters are ASCII: one char a byte.
        for _ in 1..len {
            chars.next();
        }
        units.push(escape.unit());
    }
    Ok(units)
}

/// Encodes UTF-16 code units as `JSON.stringify` does (well-formed JSON.stringify).
fn quote_units(units: &[u16], out: &mut String) {
    out.push('"');
    let mut i = 0;
    while i < units.len() {
        let u = units[i];
        if (0xD800..0xDC00).contains(&u)
            && i + 1 < units.len()
            && (0xDC00..0xE000).contains(&units[i + 1])
        {
            let c = 0x10000 + (((u as u32) - 0xD800) << 10) + ((units[i + 1] as u32) - 0xDC00);
            out.push(char::from_u32(c).expect("valid pair"));
            i += 2;
            continue;
        }
        if (0xD800..0xE000).contains(&u) {
            out.push_str(&format!("\\u{u:04x}"));
        } else {
            push_escaped_char(char::from_u32(u as u32).expect("not a surrogate"), out);
        }
        i += 1;
    }
    out.push('"');
}

fn push_escaped_char(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

/// `JSON.stringify(s)` for a Rust string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped_char(c, &mut out);
    }
    out.push('"');
    out
}

fn canonical_string(raw: &str) -> Result<String, JsonError> {
    let units = string_units(raw)?;
    let mut out = String::with_capacity(raw.len());
    quote_units(&units, &mut out);
    Ok(out)
}

/// `String(value)` for the value a JSON text holds, as a template literal would show it.
pub fn js_string(raw: &str) -> String {
    let raw = raw.trim();
    match kind_of(raw) {
        Kind::String => decode_string(raw).unwrap_or_default(),
        Kind::Object => "[object Object]".into(),
        Kind::Array => array_elements(raw)
            .map(|es| {
                es.iter()
                    .map(|e| {
                        if kind_of(e) == Kind::Null {
                            String::new()
                        } else {
                            js_string(e)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        Kind::Number => canonical_number(raw).into_owned(),
        Kind::Bool | Kind::Null => raw.to_string(),
    }
}

/// Appends the object of `members` (key tokens and value texts, in their order) as
/// `JSON.stringify` writes it: no white space.
pub fn push_object(members: &[(impl AsRef<str>, impl AsRef<str>)], out: &mut String) {
    out.push('{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k.as_ref());
        out.push(':');
        out.push_str(v.as_ref());
    }
    out.push('}');
}

/// Length of a JSON text in UTF-16 code units (JavaScript's `.length`).
pub fn utf16_len(text: &str) -> usize {
    if text.is_ascii() {
        return text.len();
    }
    text.chars().map(char::len_utf16).sum()
}

/// `Number.prototype.toString` for a finite double; non-finite values become `null`, as
/// `JSON.stringify` writes them.
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return "null".to_string();
    }
    // ryu-js writes the shortest digits as ECMA-262 `Number::toString` chooses them (on an
    // exact tie, the even ones) in its layout (`1e+21`, `1.5e-7`, `-0` as `0`).
    ryu_js::Buffer::new().format_finite(x).to_string()
}

fn canonical_number(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    let unsigned = b.strip_prefix(b"-").unwrap_or(b);
    let simple_int = !unsigned.is_empty()
        && unsigned.len() <= 15
        && unsigned.iter().all(u8::is_ascii_digit)
        && (unsigned[0] != b'0' || unsigned.len() == 1)
        && raw != "-0";
    if simple_int {
        return Cow::Borrowed(raw);
    }
    let value: f64 = raw.parse().unwrap_or(f64::NAN);
    let formatted = format_number(value);
    if formatted == raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(formatted)
    }
}

/// True when `key` (a canonical key token) names an array index, which JavaScript orders
/// before every other property, ascending.
fn array_index(key: &str) -> Option<u32> {
    let inner = key.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    if b.is_empty()
        || b.len() > 10
        || !b.iter().all(u8::is_ascii_digit)
        || (b[0] == b'0' && b.len() > 1)
    {
        return None;
    }
    let v: u64 = inner.parse().ok()?;
    (v < u32::MAX as u64).then_some(v as u32)
}

/// Orders object members as a JavaScript object would hold them: array-index keys first in
/// ascending order, then the others in insertion order.
pub fn js_property_order<T>(members: &mut [(String, T)]) {
    if members.iter().any(|(k, _)| array_index(k).is_some()) {
        members.sort_by_key(|(k, _)| match array_index(k) {
            Some(i) => (0u8, i),
            None => (1u8, 0),
        });
    }
}

fn write_canonical(sc: &mut Scanner<'_>, out: &mut String, depth: usize) -> Result<(), JsonError> {
    if depth > MAX_DEPTH {
        return err("nesting too deep", sc.pos);
    }
    sc.ws();
    let start = sc.pos;
    match sc.peek() {
        Some(b'{') => {
            sc.pos += 1;
            let mut members: Vec<(String, String)> = Vec::new();
            sc.ws();
            if sc.peek() == Some(b'}') {
                sc.pos += 1;
            } else {
                loop {
                    sc.ws();
                    let k = sc.pos;
                    sc.skip_string()?;
                    let key = canonical_string(sc.slice(k))?;
                    sc.ws();
                    sc.expect(b':')?;
                    let mut value = String::new();
                    write_canonical(sc, &mut value, depth + 1)?;
                    match members.iter_mut().find(|(existing, _)| *existing == key) {
                        Some(slot) => slot.1 = value,
                        None => members.push((key, value)),
                    }
                    sc.ws();
                    match sc.peek() {
                        Some(b',') => sc.pos += 1,
                        Some(b'}') => {
                            sc.pos += 1;
                            break;
                        }
                        _ => return err("expected ',' or '}'", sc.pos),
                    }
                }
            }
            js_property_order(&mut members);
            push_object(&members, out);
        }
        Some(b'[') => {
            sc.pos += 1;
            out.push('[');
            sc.ws();
            if sc.peek() == Some(b']') {
                sc.pos += 1;
            } else {
                let mut first = true;
                loop {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_canonical(sc, out, depth + 1)?;
                    sc.ws();
                    match sc.peek() {
                        Some(b',') => sc.pos += 1,
                        Some(b']') => {
                            sc.pos += 1;
                            break;
                        }
                        _ => return err("expected ',' or ']'", sc.pos),
                    }
                }
            }
            out.push(']');
        }
        Some(b'"') => {
            sc.skip_string()?;
            out.push_str(&canonical_string(sc.slice(start))?);
        }
        Some(b'-' | b'0'..=b'9') => {
            sc.skip_number()?;
            out.push_str(&canonical_number(sc.slice(start)));
        }
        Some(b't') => {
            sc.literal(b"true")?;
            out.push_str("true");
        }
        Some(b'f') => {
            sc.literal(b"false")?;
            out.push_str("false");
        }
        Some(b'n') => {
            sc.literal(b"null")?;
            out.push_str("null");
        }
        _ => return err("unexpected token", sc.pos),
    }
    Ok(())
}

/// A stack of booleans, held in one word up to 64 deep: the scanners' nesting, without an
/// allocation for a record of usual depth (an allocation per record was ~10% of a load).
#[derive(Default)]
struct BoolStack {
    word: u64,
    len: usize,
    deeper: Vec<bool>,
}

impl BoolStack {
    fn push(&mut self, value: bool) {
        if self.len < 64 {
            self.word = self.word & !(1 << self.len) | u64::from(value) << self.len;
        } else {
            self.deeper.push(value);
        }
        self.len += 1;
    }

    fn last(&self) -> Option<bool> {
        match self.len {
            0 => None,
            n if n <= 64 => Some(self.word >> (n - 1) & 1 == 1),
            _ => self.deeper.last().copied(),
        }
    }

    fn pop(&mut self) -> Option<bool> {
        let last = self.last()?;
        if self.len > 64 {
            self.deeper.pop();
        }
        self.len -= 1;
        Some(last)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// True when `text` is byte for byte what `JSON.stringify(JSON.parse(text))` gives. Runs
/// without recursion; conservative (a `false` only costs a rewrite).
fn is_canonical(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    // Per open object: (where its keys start in `keys`, whether a non-index key was seen, last
    // index key). The keys of all open objects, one after the other, in `keys`.
    let mut objects: Vec<(usize, bool, Option<u32>)> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    // true: an object, false: an array.
    let mut containers = BoolStack::default();
    let mut expect_key = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    match b[i] {
                        b'\\' => match escape_at(&b[i..]) {
                            // `JSON.stringify` writes a slash as it is.
                            Err(_) | Ok((Escape::Short(b'/'), _)) => return false,
                            Ok((Escape::Short(_), len)) => i += len,
                            Ok((Escape::Unit(u), len)) => {
                                // Canonical only for lowercase escapes of control chars and
                                // lone surrogates; anything else was written literally.
                                if b[i + 2..i + 6].iter().any(u8::is_ascii_uppercase) {
                                    return false;
                                }
                                let surrogate = (0xD800..0xE000).contains(&u);
                                let escaped_control =
                                    u < 0x20 && !matches!(u, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
                                if !escaped_control && !surrogate {
                                    return false;
                                }
                                // A well-formed pair would have been written literally.
                                // Checked at its high half, which comes first (a high half
                                // cannot be written literally): looking back from a low half
                                // could mistake an escaped backslash for an escape.
                                if (0xD800..0xDC00).contains(&u) {
                                    let next =
                                        b.get(i + len..).filter(|n| n.first() == Some(&b'\\'));
                                    if let Some(Ok((Escape::Unit(low), _))) = next.map(escape_at) {
                                        if (0xDC00..0xE000).contains(&low) {
                                            return false;
                                        }
                                    }
                                }
                                i += len;
                            }
                        },
                        c if c < 0x20 => return false,
                        _ => i += 1,
                    }
                }
                if i >= b.len() {
                    return false;
                }
                i += 1;
                if expect_key {
                    let key = &text[start..i];
                    let Some((first_key, seen_plain, last_index)) = objects.last_mut() else {
                        return false;
                    };
                    if keys[*first_key..].contains(&key) {
                        return false;
                    }
                    match array_index(key) {
                        Some(ix) => {
                            if *seen_plain || last_index.is_some_and(|l| l >= ix) {
                                return false;
                            }
                            *last_index = Some(ix);
                        }
                        None => *seen_plain = true,
                    }
                    keys.push(key);
                    if b.get(i) != Some(&b':') {
                        return false;
                    }
                    i += 1;
                    expect_key = false;
                }
            }
            b'{' => {
                containers.push(true);
                objects.push((keys.len(), false, None));
                i += 1;
                expect_key = b.get(i) != Some(&b'}');
            }
            b'[' => {
                containers.push(false);
                i += 1;
            }
            b'}' => {
                if containers.pop() != Some(true) {
                    return false;
                }
                if let Some((first_key, ..)) = objects.pop() {
                    keys.truncate(first_key);
                }
                i += 1;
            }
            b']' => {
                if containers.pop() != Some(false) {
                    return false;
                }
                i += 1;
            }
            b',' => {
                i += 1;
                expect_key = containers.last() == Some(true);
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let raw = &text[start..i];
                if !matches!(canonical_number(raw), Cow::Borrowed(_)) {
                    return false;
                }
            }
            b't' | b'f' | b'n' => {
                while i < b.len() && b[i].is_ascii_lowercase() {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
    containers.is_empty()
}

/// `JSON.stringify(JSON.parse(text))`, computed on text: borrowed when `text` already has that
/// form, rewritten otherwise (whitespace, number spelling, string escapes, duplicate keys,
/// array-index key order). Errors when `text` is not one JSON value.
pub fn canonicalize(text: &str) -> Result<Cow<'_, str>, JsonError> {
    validate(text)?;
    if is_canonical(text) {
        return Ok(Cow::Borrowed(text));
    }
    let mut sc = Scanner::new(text);
    let mut out = String::with_capacity(text.len());
    write_canonical(&mut sc, &mut out, 0)?;
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(s).unwrap().into_owned()
    }

    #[test]
    fn numbers_follow_javascript() {
        for (x, js) in [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123456789012345680000.0, "123456789012345680000"),
            (-2.5, "-2.5"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            // Shortest digits tie: JavaScript takes the even one.
            (1574.8977661132812, "1574.8977661132812"),
        ] {
            assert_eq!(format_number(x), js, "{x}");
        }
    }

    #[test]
    fn canonical_text_is_borrowed() {
        for s in [
            r#"{"a":1,"b":[1,2,{"c":"d"}],"e":null,"f":true,"g":1e+21,"h":-1.5}"#,
            r#"{"1":1,"2":2,"a":3}"#,
            r#""\ud800""#,
            "\"\u{2028}é😀\"",
            r#""\u0001\n\"\\""#,
            "[]",
            "{}",
        ] {
            assert!(matches!(canonicalize(s).unwrap(), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn rewrites_to_what_javascript_would_produce() {
        assert_eq!(
            canon("{ \"a\" : 1.0 ,\n \"b\": [ 1e2 , -0 ] }"),
            r#"{"a":1,"b":[100,0]}"#
        );
        assert_eq!(canon(r#"{"b":1,"a":2,"b":3}"#), r#"{"b":3,"a":2}"#);
        assert_eq!(canon(r#"{"b":1,"10":2,"2":3}"#), r#"{"2":3,"10":2,"b":1}"#);
        assert_eq!(canon(r#""\u0041\/\uD83D\uDE00\uDC00""#), "\"A/😀\\udc00\"");
        assert_eq!(canon("12345678901234567890"), "12345678901234567000");
        assert_eq!(canon("1E400"), "null");
        assert_eq!(canon(r#""\u001F""#), r#""\u001f""#);
        assert_eq!(canon(r#""\u0008""#), r#""\b""#);
    }

    #[test]
    fn rejects_invalid_json() {
        for s in [
            "",
            "{",
            "{\"a\"}",
            "[1,]",
            "01",
            "1.",
            "tru",
            "\"\\x\"",
            "{} x",
            "\"a\u{1}\"",
        ] {
            assert!(canonicalize(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn lone_low_surrogates_are_recognised_as_canonical() {
        // Found by tests/fuzz_parsers.rs: looking back from a low surrogate for its high half,
        // `i - 6` underflowed near a string's start (a panic in debug builds), and an escaped
        // backslash followed by `ud800` read as a high half (a needless rewrite).
        for s in [
            r#""a\udc00""#,
            r#"["\udc00"]"#,
            r#"["ab\udc00"]"#,
            r#""abcd\udc00""#,
            r#"{"a\\ud800\udc00":1}"#,
        ] {
            assert!(matches!(canonicalize(s).unwrap(), Cow::Borrowed(_)), "{s}");
        }
        assert_eq!(canon(r#""\ud800\udc00""#), "\"\u{10000}\"");
        assert_eq!(canon(r#""\udc00\udc00""#), r#""\udc00\udc00""#);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(validate(&deep).is_ok());
        let deep_ws = "[ ".repeat(100_000) + &"]".repeat(100_000);
        assert!(canonicalize(&deep_ws).is_err());
    }

    #[test]
    fn members_and_dedup() {
        let m = object_members(r#" {"a":{"x":[1]},"b":"s","a":2} "#).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            Member {
                key: "\"a\"",
                value: "{\"x\":[1]}"
            }
        );
        let d = object_members_dedup(r#"{"a":1,"b":"s","\u0061":2}"#).unwrap();
        assert_eq!(
            d,
            vec![
                Member {
                    key: "\"a\"",
                    value: "2"
                },
                Member {
                    key: "\"b\"",
                    value: "\"s\""
                }
            ]
        );
    }

    #[test]
    fn js_string_follows_template_literals() {
        assert_eq!(js_string(r#""x""#), "x");
        assert_eq!(js_string(r#"{"a":1}"#), "[object Object]");
        assert_eq!(js_string(r#"[1,"a",null,[2,3]]"#), "1,a,,2,3");
        assert_eq!(js_string("1E3"), "1000");
        assert_eq!(js_string("null"), "null");
    }

    #[test]
    fn quote_and_decode() {
        assert_eq!(
            quote("a\"b\\c\n\u{1}\u{2028}"),
            "\"a\\\"b\\\\c\\n\\u0001\u{2028}\""
        );
        assert_eq!(decode_string(r#""a\u0041\n""#).unwrap(), "aA\n");
        assert_eq!(utf16_len("a😀é"), 4);
    }
}
