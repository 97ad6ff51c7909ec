//! Batches of stream items as they are handed to JavaScript: one JSON array text for one
//! `JSON.parse`, and the ids of its records or ops beside it.
//!
//! Why the ids travel apart: V8's `JSON.parse` internalizes every short string value (up to
//! about 10 UTF-16 units), a lookup in the isolate's string table that costs more than the rest
//! of the id's parse (measured: ~0.2 us of ~0.8 us per record for ids like `id-0000000`). Ids are
//! unique, so the lookup buys nothing. An id without escapes goes as its length in UTF-16 units
//! in the array, its text in `ids`, and JavaScript takes it with `slice`, which copies without
//! internalizing. An id with escapes (they may stand for lone surrogates, which Rust text cannot
//! hold) stays in the array as its JSON string.
//!
//! Ops of the usual forms go as their values only, and JavaScript builds each op with an object
//! literal: `JSON.parse` builds objects key by key, a literal in one allocation of a known shape
//! (measured: 100,000 ops in ~47 ms instead of ~70 ms).

use std::fmt::Write;
use std::marker::PhantomData;

use super::json;

/// One batch for JavaScript.
#[derive(Debug, PartialEq)]
pub struct Batch {
    /// A JSON array text.
    pub items: String,
    /// The ids `items` gives by length, one after the other.
    pub ids: String,
}

#[cfg(test)]
impl Batch {
    /// A pairs batch as the flat `[id, record, ...]` JSON text JavaScript's `parsePairs` makes
    /// of it (for tests).
    pub fn pairs_text(&self) -> String {
        let items = json::array_elements(&self.items).expect("a JSON array");
        let mut ids = self.ids.chars();
        let texts: Vec<String> = items
            .chunks(2)
            .flat_map(|pair| [take_id(pair[0], &mut ids), pair[1].to_string()])
            .collect();
        assert_eq!(ids.next(), None, "every id taken");
        format!("[{}]", texts.join(","))
    }

    /// An ops batch as the JSON text of the array of ops JavaScript's `parseOps` makes of it
    /// (for tests).
    pub fn ops_text(&self) -> String {
        let items = json::array_elements(&self.items).expect("a JSON array");
        let mut ids = self.ids.chars();
        let mut ops = Vec::new();
        let mut rest = &items[..];
        while let Some((code, values)) = rest.split_first() {
            let (op, n) = match *code {
                "0" => (values[0].to_string(), 1),
                "1" => (
                    format!(
                        "{{\"ts\":{},\"op\":\"set\",\"id\":{},\"prev\":{},\"data\":{}}}",
                        values[0],
                        take_id(values[1], &mut ids),
                        values[2],
                        values[3]
                    ),
                    4,
                ),
                "2" => (
                    format!(
                        "{{\"ts\":{},\"op\":\"delete\",\"id\":{},\"prev\":{}}}",
                        values[0],
                        take_id(values[1], &mut ids),
                        values[2]
                    ),
                    3,
                ),
                other => panic!("unknown op code {other}"),
            };
            ops.push(op);
            rest = &values[n..];
        }
        assert_eq!(ids.next(), None, "every id taken");
        format!("[{}]", ops.join(","))
    }
}

/// An id element of a batch as a JSON string token: a length takes that many UTF-16 units from
/// `ids`.
#[cfg(test)]
fn take_id(element: &str, ids: &mut std::str::Chars<'_>) -> String {
    let Ok(mut units) = element.parse::<usize>() else {
        return element.to_string();
    };
    let mut id = String::new();
    while units > 0 {
        let c = ids.next().expect("ids as long as the lengths say");
        units -= c.len_utf16();
        id.push(c);
    }
    json::quote(&id)
}

/// Bytes of a typical record or op, to size a batch's text up front.
const TYPICAL_ITEM_BYTES: usize = 160;

/// A batch ends once its text has this many bytes, whatever the caller's item limit. V8 puts a
/// string over 128 KiB in its large-object space, which is old generation: a stream's batches,
/// garbage as soon as parsed, would then grow the old generation and bring on major (marking)
/// collections on the JavaScript thread. Smaller ones die young, in scavenges (measured on
/// `getWalOps` of 100,000 ops: ~86 ms with 400 KB batches, ~79 ms with 96 KB ones).
const BATCH_BYTES: usize = 96 * 1024;

/// A batch being built: the array text so far and the ids taken out of it. `K` is what it holds
/// (`Pairs` or `Ops`), which decides how items are pushed.
pub struct Builder<K> {
    items: String,
    ids: String,
    len: usize,
    kind: PhantomData<K>,
}

/// Record pairs: `items` is `[id, record, id, record, ...]` where each id is either the length of
/// the next id in `ids` or, for an id with escapes, its JSON string.
pub struct Pairs;

/// Ops, each a code and its values (see `OpCode`).
pub struct Ops;

/// Record ids only, each as in `Pairs`.
pub struct Ids;

pub type PairsBuilder = Builder<Pairs>;
pub type IdsBuilder = Builder<Ids>;
pub type OpsBuilder = Builder<Ops>;

impl<K> Builder<K> {
    /// A builder with room for `capacity` typical items.
    pub fn new(capacity: usize) -> Self {
        let bytes = capacity.saturating_mul(TYPICAL_ITEM_BYTES).min(BATCH_BYTES);
        let mut items = String::with_capacity(bytes + 2);
        items.push('[');
        Builder {
            items,
            ids: String::new(),
            len: 0,
            kind: PhantomData,
        }
    }

    /// Items pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch has `max` items, or is as large as a batch should be.
    pub fn is_full(&self, max: usize) -> bool {
        self.len >= max || self.items.len() >= BATCH_BYTES
    }

    /// The batch, or `None` when nothing was pushed.
    pub fn finish(mut self) -> Option<Batch> {
        if self.len == 0 {
            return None;
        }
        self.items.push(']');
        Some(Batch {
            items: self.items,
            ids: self.ids,
        })
    }

    /// Counts one more record or op (made of one or more elements).
    fn count_item(&mut self) {
        self.len += 1;
    }

    /// Adds `text`, a JSON value, as the next element of the array.
    fn push_value(&mut self, text: &str) {
        if !self.items.ends_with('[') {
            self.items.push(',');
        }
        self.items.push_str(text);
    }

    /// Adds an id (a JSON string token): its length, its text into `ids`; or the token itself
    /// when it has escapes.
    fn push_id(&mut self, token: &str) {
        match plain_string_content(token) {
            Some(text) => {
                let units: usize = text.chars().map(char::len_utf16).sum();
                let mut length = String::new();
                write!(length, "{units}").expect("writing to a String");
                self.push_value(&length);
                self.ids.push_str(text);
            }
            None => self.push_value(token),
        }
    }
}

impl Builder<Pairs> {
    /// Adds a record: `id` is a JSON string token, `data` a JSON value text.
    pub fn push(&mut self, id: &str, data: &str) {
        self.count_item();
        self.push_id(id);
        self.push_value(data);
    }
}

impl Builder<Ids> {
    /// Adds a record's id (a JSON string token).
    pub fn push(&mut self, id: &str) {
        self.count_item();
        self.push_id(id);
    }
}

/// How an op is written in an ops batch: a code, then its values. JavaScript's `parseOps`
/// knows the same codes.
#[derive(Clone, Copy)]
enum OpCode {
    /// The op's whole JSON object follows.
    Object = 0,
    /// `{ts, op: "set", id, prev, data}`: ts, id, prev and data follow.
    Set = 1,
    /// `{ts, op: "delete", id, prev}`: ts, id and prev follow.
    Delete = 2,
}

impl Builder<Ops> {
    /// Adds an op from its line, which must be a valid op.
    pub fn push(&mut self, line: &str) {
        self.count_item();
        match usual_op_form(line) {
            Some(op) => {
                let code = if op.data.is_some() {
                    OpCode::Set
                } else {
                    OpCode::Delete
                };
                self.push_value(&(code as u8).to_string());
                self.push_value(op.ts);
                self.push_id(op.id);
                self.push_value(op.prev);
                if let Some(data) = op.data {
                    self.push_value(data);
                }
            }
            None => {
                self.push_value(&(OpCode::Object as u8).to_string());
                self.push_value(line);
            }
        }
    }
}

/// The values of an op line of one of the forms the engine writes (`Op::encode`) for ops
/// without agent, clock or encoding:
/// `{"ts":<string>,"op":"set","id":<string>,"prev":<value>,"data":<value>}` or
/// `{"ts":<string>,"op":"delete","id":<string>,"prev":<value>}`.
struct UsualOp<'a> {
    ts: &'a str,
    id: &'a str,
    prev: &'a str,
    /// Set ops only.
    data: Option<&'a str>,
}

/// `line` (a valid op) split into its values when it has a usual form; `None` otherwise.
fn usual_op_form(line: &str) -> Option<UsualOp<'_>> {
    let rest = line.strip_prefix("{\"ts\":")?;
    let (ts, rest) = rest.split_at(json::string_token_len(rest)?);
    let (set, rest) = if let Some(rest) = rest.strip_prefix(",\"op\":\"set\",\"id\":") {
        (true, rest)
    } else {
        (false, rest.strip_prefix(",\"op\":\"delete\",\"id\":")?)
    };
    let (id, rest) = rest.split_at(json::string_token_len(rest)?);
    let rest = rest.strip_prefix(",\"prev\":")?;
    let (prev, rest) = rest.split_at(json::value_token_len(rest)?);
    let (data, rest) = if set {
        let rest = rest.strip_prefix(",\"data\":")?;
        let (data, rest) = rest.split_at(json::value_token_len(rest)?);
        (Some(data), rest)
    } else {
        (None, rest)
    };
    (rest == "}").then_some(UsualOp { ts, id, prev, data })
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
        b.push("\"id-1\"", "{\"a\":1}");
        b.push("\"é😀\"", "null");
        b.push("\"\"", "[]");
        assert_eq!(b.len(), 3);
        let batch = b.finish().unwrap();
        assert_eq!(batch.items, "[4,{\"a\":1},3,null,0,[]]");
        assert_eq!(batch.ids, "id-1é😀");
        assert_eq!(
            batch.pairs_text(),
            "[\"id-1\",{\"a\":1},\"é😀\",null,\"\",[]]"
        );
    }

    #[test]
    fn ids_with_escapes_stay_json() {
        let mut b = PairsBuilder::new(0);
        b.push(r#""b\ud800""#, "{}");
        b.push("\"x\"", "1");
        let batch = b.finish().unwrap();
        assert_eq!(batch.items, r#"["b\ud800",{},1,1]"#);
        assert_eq!(batch.ids, "x");
        assert_eq!(batch.pairs_text(), r#"["b\ud800",{},"x",1]"#);
    }

    #[test]
    fn ops_of_the_usual_forms_go_as_values() {
        let set = r#"{"ts":"t1","op":"set","id":"a","prev":null,"data":{"n":[1]}}"#;
        let delete = r#"{"ts":"t2","op":"delete","id":"b\"c","prev":{"n":1}}"#;
        let mut b = OpsBuilder::new(2);
        b.push(set);
        b.push(delete);
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        assert_eq!(
            batch.items,
            r#"[1,"t1",1,null,{"n":[1]},2,"t2","b\"c",{"n":1}]"#
        );
        assert_eq!(batch.ids, "a");
        assert_eq!(batch.ops_text(), format!("[{set},{delete}]"));
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
        assert_eq!(batch.ids, "");
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
