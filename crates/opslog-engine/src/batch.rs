//! Batches of stream items as they are handed to JavaScript: one JSON array text for one
//! `JSON.parse`, and the strings taken out of it beside it.
//!
//! Why strings travel apart: V8's `JSON.parse` internalizes every short string value (up to 10
//! UTF-16 units), a lookup in the isolate's string table that costs more than the rest of the
//! string's parse, and an insertion for a new string (measured: ~0.2 us of ~0.8 us per record
//! for ids like `id-0000000`). Ids are unique, so the lookup buys nothing. An id without escapes
//! goes as its length in UTF-16 units in the array, its text in `strings`, and JavaScript takes
//! it with `slice`, which copies without internalizing. An id with escapes (they may stand for
//! lone surrogates, which Rust text cannot hold) stays in the array as its JSON string.
//!
//! Ops of the usual forms go as their values only, and JavaScript builds each op with an object
//! literal: `JSON.parse` builds objects key by key, a literal in one allocation of a known shape
//! (measured: 100,000 ops in ~47 ms instead of ~70 ms). The same holds one level down, for an
//! op's records (`data`, and `prev` when it is an object): see `Shapes`. An op's `ts`, the same
//! for every op a write or a batch made at once, goes once for a run of equal ones.

use std::fmt::Write;

use super::error::Result;
use super::json;
use super::op;

/// One batch for JavaScript.
#[derive(Debug, PartialEq)]
pub struct Batch {
    /// A JSON array text.
    pub items: String,
    /// The strings `items` gives by length, one after the other.
    pub strings: String,
}

/// A source of batches for streaming reads.
pub trait BatchStream: Send {
    /// Up to `max` items, or `None` at the end.
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>>;

    /// The data version a snapshot stream read from its header.
    fn version(&self) -> Option<f64> {
        None
    }
}

/// Views of a batch as the JavaScript side decodes it, for the engine's tests and the fuzzers
/// (which see the crate from outside, hence the `testing` feature besides `cfg(test)`).
#[cfg(any(test, feature = "testing"))]
impl Batch {
    /// A pairs batch as the flat `[id, record, ...]` JSON text JavaScript's `parsePairs` makes
    /// of it (for tests). A shaped record comes back as `{key:value,...}` in its keys' order.
    pub fn pairs_text(&self) -> String {
        let (items, mut shapes) = self.elements_and_shapes();
        let mut strings = self.strings.chars();
        let mut texts = Vec::new();
        let mut at = 0;
        while at < items.len() {
            match items[at].parse::<i64>() {
                Ok(complement) if complement < 0 => {
                    let id = take_string(&(!complement).to_string(), &mut strings);
                    let (record, len) =
                        record_text(&items[at + 1..], &mut shapes, &mut strings, true);
                    texts.extend([id, record]);
                    at += 1 + len;
                }
                _ => {
                    texts.extend([
                        take_string(items[at], &mut strings),
                        items[at + 1].to_string(),
                    ]);
                    at += 2;
                }
            }
        }
        assert_eq!(strings.next(), None, "every string taken");
        assert_shapes_used(&shapes);
        format!("[{}]", texts.join(","))
    }

    /// The batch's elements without its last one, the table of shapes, and that table.
    fn elements_and_shapes(&self) -> (Vec<&str>, Vec<TestShape<'_>>) {
        let mut items = json::array_elements(&self.items)
            .unwrap_or_else(|e| panic!("a JSON array, not {:?}: {e}", self.items));
        let table = json::array_elements(items.pop().expect("the shapes table")).expect("shapes");
        let shapes = table
            .into_iter()
            .map(|entry| {
                let entry = json::array_elements(entry).expect("[count, keys, kinds]");
                let keys = json::array_elements(entry[1]).expect("keys");
                let kinds = json::decode_string(entry[2]).expect("kinds");
                assert_eq!(kinds.len(), keys.len());
                let count = entry[0].parse().expect("a count");
                TestShape {
                    count,
                    kinds: kinds.into_bytes(),
                    keys,
                }
            })
            .collect();
        (items, shapes)
    }

    /// An ops batch as the JSON text of the array of ops JavaScript's `parseOps` makes of it
    /// (for tests). A shaped record comes back as `{key:value,...}` in its keys' order.
    pub fn ops_text(&self) -> String {
        let (items, mut shapes) = self.elements_and_shapes();
        let mut strings = self.strings.chars();
        let mut at = 0;
        let mut ts = "";
        let mut ops = Vec::new();
        while at < items.len() {
            let code: u8 = items[at].parse().expect("an op code");
            if code == OpCode::Object as u8 {
                ops.push(items[at + 1].to_string());
                at += 2;
                continue;
            }
            if items[at + 1] != SAME_TS.to_string() {
                ts = items[at + 1];
            }
            let id = take_string(items[at + 2], &mut strings);
            at += 3;
            let mut record = |shaped: bool| {
                let (text, len) = record_text(&items[at..], &mut shapes, &mut strings, shaped);
                at += len;
                text
            };
            let prev = record(code & PREV_SHAPED != 0);
            ops.push(match code & !(PREV_SHAPED | DATA_SHAPED) {
                1 => {
                    let data = record(code & DATA_SHAPED != 0);
                    format!(r#"{{"ts":{ts},"op":"set","id":{id},"prev":{prev},"data":{data}}}"#)
                }
                2 => format!(r#"{{"ts":{ts},"op":"delete","id":{id},"prev":{prev}}}"#),
                _ => panic!("unknown op code {code}"),
            });
        }
        assert_eq!(strings.next(), None, "every string taken");
        assert_shapes_used(&shapes);
        format!("[{}]", ops.join(","))
    }
}

/// A shape of an ops batch's table, as `ops_text` reads it.
#[cfg(any(test, feature = "testing"))]
struct TestShape<'a> {
    count: usize,
    kinds: Vec<u8>,
    keys: Vec<&'a str>,
}

/// Checks that a batch had as many records of each shape as its table says.
#[cfg(any(test, feature = "testing"))]
fn assert_shapes_used(shapes: &[TestShape<'_>]) {
    for shape in shapes {
        assert_eq!(shape.count, 0, "as many records of a shape as its count");
    }
}

/// The record value `items` starts with as JSON text, and how many elements it took.
#[cfg(any(test, feature = "testing"))]
fn record_text(
    items: &[&str],
    shapes: &mut [TestShape<'_>],
    strings: &mut std::str::Chars<'_>,
    shaped: bool,
) -> (String, usize) {
    if !shaped {
        return (items[0].to_string(), 1);
    }
    let shape = &mut shapes[items[0].parse::<usize>().expect("a shape index")];
    shape.count -= 1;
    let members: Vec<String> = (0..shape.keys.len())
        .map(|k| {
            let value = match shape.kinds[k] {
                b's' => take_string(items[1 + k], strings),
                b'v' => items[1 + k].to_string(),
                other => panic!("unknown kind {}", other as char),
            };
            format!("{}:{value}", shape.keys[k])
        })
        .collect();
    (format!("{{{}}}", members.join(",")), 1 + shape.keys.len())
}

/// A string element of a batch as a JSON string token: a length takes that many UTF-16 units
/// from `strings`.
#[cfg(any(test, feature = "testing"))]
fn take_string(element: &str, strings: &mut std::str::Chars<'_>) -> String {
    let Ok(mut units) = element.parse::<usize>() else {
        return element.to_string();
    };
    let mut text = String::new();
    while units > 0 {
        let c = strings.next().expect("strings as long as the lengths say");
        units -= c.len_utf16();
        text.push(c);
    }
    json::quote(&text)
}

/// Bytes of a typical record or op, to size a batch's text up front.
const TYPICAL_ITEM_BYTES: usize = 160;

/// A batch ends once its text has this many bytes, whatever the caller's item limit. V8 puts a
/// string over 128 KiB in its large-object space, which is old generation: a stream's batches,
/// garbage as soon as parsed, would then grow the old generation and bring on major (marking)
/// collections on the JavaScript thread. Smaller ones die young, in scavenges (measured on
/// `getWalOps` of 100,000 ops: ~86 ms with 400 KB batches, ~79 ms with 96 KB ones).
const BATCH_BYTES: usize = 96 * 1024;

/// Longest string value, in UTF-16 units, that `JSON.parse` internalizes (V8's
/// `kMaxInternalizedStringValueLength`): up to this length a string is cheaper taken apart.
/// Longer ones stay in the JSON, where they cost a copy either way (a `slice` of 13 units or
/// more would even keep the whole batch's `strings` alive as long as the value lives).
const SHORT_STRING: usize = 10;

/// A batch being built: the array text so far, the strings taken out of it and the shapes of
/// its shaped records. `K` is what it holds (`Pairs` or `Ops`), which decides how items are
/// pushed and keeps what the batch needs of them. Either kind ends with its table of shapes.
pub struct Builder<K> {
    items: String,
    strings: String,
    len: usize,
    shapes: Shapes,
    kind: K,
}

/// Record pairs: `items` is `[id, record, id, record, ..., shapes]` where each id is the length
/// of the next id in `strings` and its record the record's JSON text, or minus one minus that
/// length and its record shaped (its shape's index, then its values; see `Shapes`), or, for an id
/// with escapes, its JSON string and its record's JSON text.
#[derive(Default)]
pub struct Pairs;

/// Ops, each a code and its values (see `OpCode`), then the batch's shapes (see `Shapes`).
#[derive(Default)]
pub struct Ops {
    /// The `ts` token of the last op of a usual form.
    last_ts: String,
}

pub type PairsBuilder = Builder<Pairs>;
pub type OpsBuilder = Builder<Ops>;

impl<K: Default> Builder<K> {
    /// A builder with room for `capacity` typical items.
    pub fn new(capacity: usize) -> Self {
        let bytes = capacity.saturating_mul(TYPICAL_ITEM_BYTES).min(BATCH_BYTES);
        let mut items = String::with_capacity(bytes + 2);
        items.push('[');
        Builder {
            items,
            strings: String::new(),
            len: 0,
            shapes: Shapes::default(),
            kind: K::default(),
        }
    }

    /// Items pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch has `max` items, or either of its texts is as large as it should be.
    pub fn is_full(&self, max: usize) -> bool {
        self.len >= max || self.items.len() >= BATCH_BYTES || self.strings.len() >= BATCH_BYTES
    }

    /// The batch, or `None` when nothing was pushed.
    pub fn finish(mut self) -> Option<Batch> {
        if self.len == 0 {
            return None;
        }
        self.items.push(',');
        self.shapes.write_table(&mut self.items);
        self.items.push(']');
        Some(Batch {
            items: self.items,
            strings: self.strings,
        })
    }

    /// Counts one more record or op (made of one or more elements).
    fn count_item(&mut self) {
        self.len += 1;
    }

    /// Adds `text`, a JSON value, as the next element of the array.
    fn push_value(&mut self, text: &str) {
        self.separate();
        self.items.push_str(text);
    }

    /// Adds a number.
    fn push_number(&mut self, n: usize) {
        self.separate();
        self.write_digits(n);
    }

    /// Adds minus one minus `n` (the bitwise complement of `n` in JavaScript: `~n` gives `n`).
    fn push_complement(&mut self, n: usize) {
        self.separate();
        self.items.push('-');
        self.write_digits(n + 1);
    }

    /// Writes `n` in decimal (by hand: `write!` through `fmt` was ~10% of a batch's time).
    fn write_digits(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = std::str::from_utf8(&digits[at..]).expect("ASCII digits");
        self.items.push_str(digits);
    }

    /// The comma before a further element.
    fn separate(&mut self) {
        if !self.items.ends_with('[') {
            self.items.push(',');
        }
    }

    /// Adds a string without escapes apart: its length in the array, its text into `strings`.
    fn push_string(&mut self, text: &str) {
        self.push_number(json::utf16_len(text));
        self.strings.push_str(text);
    }

    /// Adds an id (a JSON string token) apart, or the token itself when it has escapes.
    fn push_id(&mut self, token: &str) {
        match plain_string_content(token) {
            Some(text) => self.push_string(text),
            None => self.push_value(token),
        }
    }

    /// Adds a record value: its shape's index and its values, or its JSON text.
    fn push_record(&mut self, record: Record<'_>) {
        let Shaped { index, values } = match record {
            Record::Shaped(shaped) => shaped,
            Record::Json(text) => return self.push_value(text),
        };
        self.push_shaped(index, values);
    }

    /// Adds a shaped record's index and values.
    fn push_shaped(&mut self, index: usize, values: Vec<Value<'_>>) {
        self.shapes.shapes[index].count += 1;
        self.push_number(index);
        for value in values {
            match value {
                Value::Short(text) => self.push_string(text),
                Value::Json(text) => self.push_value(text),
            }
        }
    }
}

impl Builder<Pairs> {
    /// A builder of the records a view keeps: their short strings are not taken apart (see
    /// `Shapes::keep_short_strings`).
    pub fn for_view(capacity: usize) -> Self {
        let mut builder = Self::new(capacity);
        builder.shapes.keep_short_strings = true;
        builder
    }

    /// Adds a record whose `data` may not be valid JSON: false (and nothing added) when it is
    /// not. A record that can be shaped is checked while it is shaped (one pass over its text
    /// instead of a check and then the shaping); any other is checked whole first.
    pub fn push_checked(&mut self, id: &str, data: &str) -> bool {
        if self.push_shaped_record(id, data, Scan::Checking) {
            return true;
        }
        if json::validate(data).is_err() {
            return false;
        }
        self.push_json_record(id, data);
        true
    }

    /// Adds a record: `id` is a JSON string token, `data` a valid JSON value text.
    pub fn push(&mut self, id: &str, data: &str) {
        if !self.push_shaped_record(id, data, Scan::Valid) {
            self.push_json_record(id, data);
        }
    }

    /// Adds the record as its id apart and its shaped object, when both can go so (then `data`
    /// was found valid, with `Scan::Checking`); false, and nothing added, when not.
    fn push_shaped_record(&mut self, id: &str, data: &str, scan: Scan) -> bool {
        let Some(id_text) = plain_string_content(id) else {
            return false;
        };
        match self.shapes.shaped(data, scan) {
            Some((Shaped { index, values }, len)) if len == data.len() => {
                self.count_item();
                self.push_complement(json::utf16_len(id_text));
                self.strings.push_str(id_text);
                self.push_shaped(index, values);
                true
            }
            _ => false,
        }
    }

    /// Adds the record with its value as JSON (its id apart when it has no escapes).
    fn push_json_record(&mut self, id: &str, data: &str) {
        self.count_item();
        self.push_id(id);
        self.push_value(data);
    }
}

/// How an op is written in an ops batch: a code, then its values. JavaScript's `parseOps`
/// knows the same codes.
#[derive(Clone, Copy)]
enum OpCode {
    /// The op's whole JSON object follows.
    Object = 0,
    /// `{ts, op: "set", id, prev, data}`: ts (or `SAME_TS`), id, prev and data follow.
    Set = 1,
    /// `{ts, op: "delete", id, prev}`: ts (or `SAME_TS`), id and prev follow.
    Delete = 2,
}

/// Added to `Set` or `Delete` when `prev` is shaped: its shape's index in the batch's table,
/// then its values, in place of its JSON text.
const PREV_SHAPED: u8 = 4;
/// Added to `Set` when `data` is shaped.
const DATA_SHAPED: u8 = 8;
/// In place of a `ts` equal to the previous op's (a `ts` is otherwise a string).
const SAME_TS: usize = 0;

impl Builder<Ops> {
    /// Adds an op from its line, which must be a valid op.
    pub fn push(&mut self, line: &str) {
        self.count_item();
        let shapes = &mut self.shapes;
        let Some(op) = op::split_usual(line, |text| shapes.record(text)) else {
            self.push_number(OpCode::Object as usize);
            self.push_value(line);
            return;
        };
        let mut code = match op.data {
            Some(_) => OpCode::Set as u8,
            None => OpCode::Delete as u8,
        };
        if let Record::Shaped(_) = op.prev {
            code |= PREV_SHAPED;
        }
        if let Some(Record::Shaped(_)) = op.data {
            code |= DATA_SHAPED;
        }
        self.push_number(code.into());
        if op.ts == self.kind.last_ts {
            self.push_number(SAME_TS);
        } else {
            self.push_value(op.ts);
            self.kind.last_ts.clear();
            self.kind.last_ts.push_str(op.ts);
        }
        self.push_id(op.id);
        self.push_record(op.prev);
        if let Some(data) = op.data {
            self.push_record(data);
        }
    }
}

/// Most keys a shaped object may have. Larger objects are rarer and make for long builders; they
/// go as JSON.
const MAX_SHAPE_KEYS: usize = 32;
/// Most bytes of a shape's keys (which the batch's table carries once).
const MAX_SHAPE_TEXT: usize = 512;
/// Most shapes in one batch; objects of further shapes go as JSON. With the limits above, the
/// table stays under ~9 KB.
const MAX_BATCH_SHAPES: usize = 16;

/// The shapes of a batch's shaped objects.
///
/// `JSON.parse` builds an object key by key, checking each key against the layouts it has seen;
/// an object literal allocates the object at once with its final layout. Records of one store
/// mostly have the same keys, so an op's record goes as its shape and its values, and JavaScript
/// builds it with a builder it keeps per shape (`lib/stream.js`). A shape is the object's keys
/// and, per value, its kind: `s` a short string without escapes, which goes apart (see
/// `SHORT_STRING`), or `v` any other JSON value, which goes as it is. Measured on the batches of
/// `getWalOps` of the benchmark's 100,000 ops (records of 5 keys, `name` a short string), parsing
/// them and building the ops on the JavaScript thread, warm: ~47 ms with records as JSON, ~31 ms
/// shaped, ~21 ms shaped with short strings apart (`JSON.parse` alone: ~45, ~28, ~17 ms).
///
/// The batch ends with its table of shapes as its last element, `[[count, keys, kinds], ...]`:
/// the number of objects of each shape, its keys as an array, its kinds as one string. Only
/// objects without whitespace between their top-level tokens (as the engine writes them) are
/// shaped; one with no keys, too many, a key with escapes (JavaScript would have to decode it),
/// or the key `__proto__` (an object literal sets the prototype with it where `JSON.parse`
/// makes a property) goes as JSON.
#[derive(Default)]
struct Shapes {
    shapes: Vec<Shape>,
    /// Short strings stay in the JSON (every value is of kind `v`), where `JSON.parse`
    /// internalizes them: records a view keeps then share their repeated short strings (a
    /// status, a tag), as the reference's records do, where taken apart each would be a copy
    /// (measured: ~25 MB more for the benchmark's million records).
    keep_short_strings: bool,
    /// The keys and kinds of the object at hand (kept to reuse their allocations).
    keys: String,
    kinds: String,
}

struct Shape {
    /// The keys as a JSON array of their tokens.
    keys: String,
    kinds: String,
    count: usize,
}

/// A record value of an op.
enum Record<'a> {
    Shaped(Shaped<'a>),
    Json(&'a str),
}

/// A shaped object: its shape's index and its values.
struct Shaped<'a> {
    index: usize,
    values: Vec<Value<'a>>,
}

/// A value of a shaped object.
enum Value<'a> {
    /// A short string without escapes: its content.
    Short(&'a str),
    /// Any other value: its JSON text.
    Json(&'a str),
}

impl Shapes {
    /// The JSON value `text` starts with, shaped when it can be, and its length.
    fn record<'a>(&mut self, text: &'a str) -> Option<(Record<'a>, usize)> {
        if let Some((shaped, len)) = self.shaped(text, Scan::Valid) {
            return Some((Record::Shaped(shaped), len));
        }
        let len = json::valid_value_len(text)?;
        Some((Record::Json(&text[..len]), len))
    }

    /// The object `text` starts with as a shaped object, and its length; `None` when it does not
    /// start with an object that can be shaped (or, with `Scan::Checking`, with valid JSON).
    fn shaped<'a>(&mut self, text: &'a str, scan: Scan) -> Option<(Shaped<'a>, usize)> {
        let mut rest = text.strip_prefix('{')?;
        let mut values = Vec::with_capacity(8);
        self.keys.clear();
        self.kinds.clear();
        self.keys.push('[');
        loop {
            let key = &rest[..scan.string_len(rest)?];
            if plain_string_content(key)? == "__proto__" || values.len() == MAX_SHAPE_KEYS {
                return None;
            }
            rest = rest[key.len()..].strip_prefix(':')?;
            if rest.starts_with([' ', '\t', '\n', '\r']) {
                return None;
            }
            let value = &rest[..scan.value_len(rest)?];
            rest = &rest[value.len()..];
            if self.keys.len() > 1 {
                self.keys.push(',');
            }
            self.keys.push_str(key);
            values.push(match plain_string_content(value) {
                // (Four bytes at most per unit: a bound checked before counting.)
                Some(s)
                    if !self.keep_short_strings
                        && s.len() <= 4 * SHORT_STRING
                        && json::utf16_len(s) <= SHORT_STRING =>
                {
                    self.kinds.push('s');
                    Value::Short(s)
                }
                _ => {
                    self.kinds.push('v');
                    Value::Json(value)
                }
            });
            match rest.as_bytes().first() {
                Some(b',') => rest = &rest[1..],
                Some(b'}') => break,
                _ => return None,
            }
        }
        self.keys.push(']');
        if self.keys.len() > MAX_SHAPE_TEXT {
            return None;
        }
        let index = self.index()?;
        Some((Shaped { index, values }, text.len() - rest.len() + 1))
    }

    /// The index of the shape of the object at hand, added if new; `None` when the table is full.
    fn index(&mut self) -> Option<usize> {
        let known = self
            .shapes
            .iter()
            .position(|s| s.keys == self.keys && s.kinds == self.kinds);
        if known.is_some() || self.shapes.len() == MAX_BATCH_SHAPES {
            return known;
        }
        self.shapes.push(Shape {
            keys: self.keys.clone(),
            kinds: self.kinds.clone(),
            count: 0,
        });
        Some(self.shapes.len() - 1)
    }

    /// Appends the table of shapes as one JSON array element.
    fn write_table(&self, out: &mut String) {
        out.push('[');
        for (n, shape) in self.shapes.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let Shape { keys, kinds, count } = shape;
            write!(out, "[{count},{keys},\"{kinds}\"]").expect("writing to a String");
        }
        out.push(']');
    }
}

/// How a record's text is read while it is shaped.
#[derive(Clone, Copy)]
enum Scan {
    /// The text is known to be valid JSON: its tokens are skipped without checks.
    Valid,
    /// The text may not be: each token is checked as it is skipped.
    Checking,
}

impl Scan {
    fn string_len(self, text: &str) -> Option<usize> {
        match self {
            Scan::Valid => json::valid_string_len(text).map(|(len, _)| len),
            Scan::Checking => json::string_token_len(text),
        }
    }

    fn value_len(self, text: &str) -> Option<usize> {
        match self {
            Scan::Valid => json::valid_value_len(text),
            Scan::Checking => json::value_token_len(text),
        }
    }
}

/// The content of a JSON string token without escapes: then it is the string itself.
fn plain_string_content(token: &str) -> Option<&str> {
    let content = token.strip_prefix('"')?.strip_suffix('"')?;
    (!content.contains('\\')).then_some(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_without_escapes_go_apart_by_utf16_length() {
        let mut b = PairsBuilder::new(0);
        b.push("\"id-1\"", "[1]");
        b.push("\"é😀\"", "null");
        b.push("\"\"", "[]");
        assert_eq!(b.len(), 3);
        let batch = b.finish().unwrap();
        assert_eq!(batch.items, "[4,[1],3,null,0,[],[]]");
        assert_eq!(batch.strings, "id-1é😀");
        assert_eq!(batch.pairs_text(), "[\"id-1\",[1],\"é😀\",null,\"\",[]]");
    }

    #[test]
    fn ids_with_escapes_stay_json() {
        let mut b = PairsBuilder::new(0);
        b.push(r#""b\ud800""#, "{}");
        b.push(r#""c\n""#, r#"{"a":1}"#);
        b.push("\"x\"", "1");
        let batch = b.finish().unwrap();
        assert_eq!(batch.items, r#"["b\ud800",{},"c\n",{"a":1},1,1,[]]"#);
        assert_eq!(batch.strings, "x");
        assert_eq!(batch.pairs_text(), r#"["b\ud800",{},"c\n",{"a":1},"x",1]"#);
    }

    #[test]
    fn records_of_pairs_go_as_their_shape_and_values() {
        let records = [
            r#"{"n":"x","m":[1,{"k":2}]}"#,
            r#"{"n":"a long string here","m":null}"#,
            r#"{ "n":"x"}"#,
            "-2",
            r#"{"m":1,"n":"z"}"#,
        ];
        let mut b = PairsBuilder::new(0);
        for (k, record) in records.iter().enumerate() {
            b.push(&format!("\"id{k}\""), record);
        }
        let batch = b.finish().unwrap();
        // A shaped record's id is minus one minus its length; -2 as a record is only a record.
        assert_eq!(
            batch.items,
            r#"[-4,0,1,[1,{"k":2}],-4,1,"a long string here",null,3,{ "n":"x"},3,-2,-4,2,1,1,[[1,["n","m"],"sv"],[1,["n","m"],"vv"],[1,["m","n"],"vs"]]]"#
        );
        assert_eq!(batch.strings, "id0xid1id2id3id4z");
        let expected: Vec<String> = records
            .iter()
            .enumerate()
            .map(|(k, r)| format!(r#""id{k}",{r}"#))
            .collect();
        assert_eq!(batch.pairs_text(), format!("[{}]", expected.join(",")));
    }

    /// Records that look shapeable but are not valid JSON in one place, and valid ones.
    const CHECKED_CASES: &[&str] = &[
        r#"{"a":1}"#,
        r#"{"a":"x","b":[1,{"c":null}],"d":-0.5e3}"#,
        r#"{"a":"\u00e9\n","b":"\ud800"}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":tru}"#,
        r#"{"a":1,}"#,
        r#"{"a":1}x"#,
        r#"{"a":1} "#,
        "{\"a\":\"\u{1}\"}",
        r#"{"a":"\x"}"#,
        r#"{"a\q":1}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":{"b":}}"#,
        r#"{"a" :1}"#,
        r#"{"a":1"b":2}"#,
        r#"{"a":"unterminated}"#,
        r#"{}"#,
        r#"{"#,
        "[1,2]",
        "nul",
    ];

    #[test]
    fn push_checked_refuses_exactly_what_validate_refuses() {
        for view in [false, true] {
            let make = || {
                if view {
                    PairsBuilder::for_view(0)
                } else {
                    PairsBuilder::new(0)
                }
            };
            let (mut checked, mut expected) = (make(), make());
            for (k, data) in CHECKED_CASES.iter().enumerate() {
                let id = format!("\"id{k}\"");
                let valid = json::validate(data).is_ok();
                assert_eq!(checked.push_checked(&id, data), valid, "{data}");
                if valid {
                    expected.push(&id, data);
                }
            }
            assert_eq!(checked.len(), expected.len());
            let (checked, expected) = (checked.finish().unwrap(), expected.finish().unwrap());
            assert_eq!(checked.items, expected.items);
            assert_eq!(checked.strings, expected.strings);
        }
    }

    #[test]
    fn a_view_keeps_short_strings_in_the_json() {
        let mut b = PairsBuilder::for_view(0);
        b.push("\"a\"", r#"{"s":"open","n":1}"#);
        let batch = b.finish().unwrap();
        assert_eq!(batch.items, r#"[-2,0,"open",1,[[1,["s","n"],"vv"]]]"#);
        assert_eq!(batch.strings, "a");
        assert_eq!(batch.pairs_text(), r#"["a",{"s":"open","n":1}]"#);
    }

    #[test]
    fn ops_of_the_usual_forms_go_as_values() {
        let set = r#"{"ts":"t1","op":"set","id":"a","prev":null,"data":[1]}"#;
        let delete = r#"{"ts":"t2","op":"delete","id":"b\"c","prev":{"n":1}}"#;
        let mut b = OpsBuilder::new(2);
        b.push(set);
        b.push(delete);
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        assert_eq!(
            batch.items,
            r#"[1,"t1",1,null,[1],6,"t2","b\"c",0,1,[[1,["n"],"v"]]]"#
        );
        assert_eq!(batch.strings, "a");
        assert_eq!(batch.ops_text(), format!("[{set},{delete}]"));
    }

    #[test]
    fn records_go_as_their_shape_and_values() {
        let lines = [
            r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{"n":"x","m":[1,{"k":2}]}}"#,
            r#"{"ts":"t","op":"set","id":"b","prev":{"n":"y","m":null},"data":{"m":1,"n":"z"}}"#,
            r#"{"ts":"u","op":"delete","id":"c","prev":{"n":"w","m":2}}"#,
        ];
        let mut b = OpsBuilder::new(3);
        for line in lines {
            b.push(line);
        }
        let batch = b.finish().unwrap();
        // Shape 0 (n, m) three times, shape 1 (m, n) once; a run of equal ts goes once.
        assert_eq!(
            batch.items,
            r#"[9,"t",1,null,0,1,[1,{"k":2}],13,0,1,0,1,null,1,1,1,6,"u",1,0,1,2,[[3,["n","m"],"sv"],[1,["m","n"],"vs"]]]"#
        );
        assert_eq!(batch.strings, "axbyzcw");
        assert_eq!(batch.ops_text(), format!("[{}]", lines.join(",")));
    }

    #[test]
    fn strings_internalized_by_json_parse_go_apart() {
        // Up to 10 UTF-16 units, without escapes.
        let set = |value: &str| {
            format!(r#"{{"ts":"t","op":"set","id":"a","prev":null,"data":{{"s":{value}}}}}"#)
        };
        let lines: Vec<String> = [
            r#""""#,
            r#""0123456789""#,
            r#""😀😀😀😀😀""#,
            r#""é""#,
            r#""01234567890""#,
            r#""😀😀😀😀😀😀""#,
            r#""\n""#,
            r#""\ud800""#,
        ]
        .iter()
        .map(|v| set(v))
        .collect();
        let mut b = OpsBuilder::new(0);
        for line in &lines {
            b.push(line);
        }
        let batch = b.finish().unwrap();
        assert_eq!(batch.strings, "aa0123456789a😀😀😀😀😀aéaaaa");
        assert!(
            batch.items.ends_with(r#"[[4,["s"],"s"],[4,["s"],"v"]]]"#),
            "{}",
            batch.items
        );
        assert_eq!(batch.ops_text(), format!("[{}]", lines.join(",")));
    }

    #[test]
    fn objects_that_cannot_be_shaped_go_as_json() {
        let many = |n: usize| {
            let members: Vec<String> = (0..n).map(|k| format!(r#""k{k}":{k}"#)).collect();
            format!("{{{}}}", members.join(","))
        };
        let long_keys = format!(r#"{{"{}":1,"{}":2}}"#, "a".repeat(300), "b".repeat(300));
        let records = [
            "{}".to_string(),
            r#"{ "a":1}"#.to_string(),
            r#"{"a" :1}"#.to_string(),
            r#"{"a": 1}"#.to_string(),
            r#"{"a":1 }"#.to_string(),
            r#"{"__proto__":1}"#.to_string(),
            r#"{"a\u0062":1}"#.to_string(),
            many(MAX_SHAPE_KEYS + 1),
            long_keys,
        ];
        let mut b = OpsBuilder::new(0);
        let lines: Vec<String> = records
            .iter()
            .map(|r| format!(r#"{{"ts":"t","op":"set","id":"a","prev":null,"data":{r}}}"#))
            .collect();
        for line in &lines {
            b.push(line);
        }
        let batch = b.finish().unwrap();
        assert!(batch.items.ends_with(",[]]"), "{}", batch.items);
        assert_eq!(batch.ops_text(), format!("[{}]", lines.join(",")));
        // The largest that can be.
        let mut b = OpsBuilder::new(0);
        b.push(&format!(
            r#"{{"ts":"t","op":"set","id":"a","prev":null,"data":{}}}"#,
            many(MAX_SHAPE_KEYS)
        ));
        assert!(b.finish().unwrap().items.starts_with("[9,"));
    }

    #[test]
    fn a_batch_has_at_most_max_batch_shapes() {
        let lines: Vec<String> = (0..MAX_BATCH_SHAPES + 2)
            .map(|k| format!(r#"{{"ts":"t","op":"set","id":"a","prev":null,"data":{{"k{k}":1}}}}"#))
            .collect();
        let mut b = OpsBuilder::new(0);
        for line in &lines {
            b.push(line);
        }
        let batch = b.finish().unwrap();
        let table = json::array_elements(&batch.items).unwrap().pop().unwrap();
        assert_eq!(json::array_elements(table).unwrap().len(), MAX_BATCH_SHAPES);
        assert!(
            batch
                .items
                .contains(r#",1,0,1,null,{"k16":1},1,0,1,null,{"k17":1},"#),
            "{}",
            batch.items
        );
        assert_eq!(batch.ops_text(), format!("[{}]", lines.join(",")));
    }

    #[test]
    fn ops_of_other_forms_go_whole() {
        let lines = [
            r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{},"agent":"x","clock":3}"#,
            r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{},"encoding":"delta"}"#,
            r#"{"op":"set","ts":"t","id":"a","prev":null,"data":{}}"#,
            r#"{"ts":"t","op":"delete","id":"a","prev":{},"agent":"x"}"#,
            r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{},"extra":1}"#,
        ];
        let mut b = OpsBuilder::new(0);
        for line in lines {
            b.push(line);
        }
        let batch = b.finish().unwrap();
        assert!(batch.items.starts_with("[0,{"), "{}", batch.items);
        assert_eq!(batch.strings, "");
        assert_eq!(batch.ops_text(), format!("[{}]", lines.join(",")));
    }

    #[test]
    fn a_batch_is_full_at_max_items_or_at_its_size_limit() {
        let mut b = PairsBuilder::new(3);
        for _ in 0..3 {
            assert!(!b.is_full(3));
            b.push("\"a\"", "1");
        }
        assert!(b.is_full(3));
        let record = format!("\"{}\"", "x".repeat(1000));
        let mut b = OpsBuilder::new(usize::MAX);
        while !b.is_full(usize::MAX) {
            b.push(&format!(
                r#"{{"ts":"t","op":"set","id":"a","prev":null,"data":{record}}}"#
            ));
        }
        let len = b.finish().unwrap().items.len();
        assert!((BATCH_BYTES..BATCH_BYTES + 1100).contains(&len), "{len}");
    }

    #[test]
    fn empty_builder_gives_no_batch() {
        assert_eq!(PairsBuilder::new(10).finish(), None);
        assert_eq!(OpsBuilder::new(10).finish(), None);
    }
}
