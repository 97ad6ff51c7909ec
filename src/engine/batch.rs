//! Batches of stream items as they are handed to JavaScript: one JSON array text for one
//! `JSON.parse`, and for record pairs the ids beside it.
//!
//! Why the ids travel apart: V8's `JSON.parse` internalizes every short string value (up to
//! about 10 UTF-16 units), a lookup in the isolate's string table that costs more than the rest
//! of the id's parse (measured: ~0.2 us of ~0.8 us per record for ids like `id-0000000`). Ids are
//! unique, so the lookup buys nothing. An id without escapes goes as its length in UTF-16 units
//! in the array, its text in `ids`, and JavaScript takes it with `slice`, which copies without
//! internalizing. An id with escapes (they may stand for lone surrogates, which Rust text cannot
//! hold) stays in the array as its JSON string.

use std::fmt::Write;

/// One batch for JavaScript.
#[derive(Debug, PartialEq)]
pub struct Batch {
    /// A JSON array text.
    pub items: String,
    /// Record pairs: the ids `items` gives by length, one after the other. Empty otherwise.
    pub ids: String,
}

impl Batch {
    /// A batch of items only (ops).
    pub fn items(items: String) -> Batch {
        Batch {
            items,
            ids: String::new(),
        }
    }
}

#[cfg(test)]
impl Batch {
    /// A pairs batch as the flat `[id, record, ...]` JSON text JavaScript's `parsePairs` makes
    /// of it (for tests).
    pub fn pairs_text(&self) -> String {
        let items = super::json::array_elements(&self.items).expect("a JSON array");
        let mut ids = self.ids.chars();
        let texts: Vec<String> = items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.parse::<usize>() {
                Ok(mut units) if i % 2 == 0 => {
                    let mut id = String::new();
                    while units > 0 {
                        let c = ids.next().expect("ids as long as the lengths say");
                        units -= c.len_utf16();
                        id.push(c);
                    }
                    super::json::quote(&id)
                }
                _ => item.to_string(),
            })
            .collect();
        assert_eq!(ids.next(), None, "every id taken");
        format!("[{}]", texts.join(","))
    }
}

/// Builds a record pairs batch: `items` is `[id, record, id, record, ...]` where each id is
/// either the length of the next id in `ids` or, for an id with escapes, its JSON string.
pub struct PairsBuilder {
    items: String,
    ids: String,
    len: usize,
}

/// Bytes of a typical `id, record` entry, to size a batch's text up front.
const TYPICAL_PAIR_BYTES: usize = 160;

impl PairsBuilder {
    /// A builder with room for `records` typical records.
    pub fn new(records: usize) -> Self {
        let mut items = String::with_capacity(records.saturating_mul(TYPICAL_PAIR_BYTES) + 2);
        items.push('[');
        PairsBuilder {
            items,
            ids: String::new(),
            len: 0,
        }
    }

    /// Adds a record: `id` is a JSON string token, `data` a JSON value text.
    pub fn push(&mut self, id: &str, data: &str) {
        if self.len > 0 {
            self.items.push(',');
        }
        match plain_string_content(id) {
            Some(text) => {
                let units: usize = text.chars().map(char::len_utf16).sum();
                write!(self.items, "{units}").expect("writing to a String");
                self.ids.push_str(text);
            }
            None => self.items.push_str(id),
        }
        self.items.push(',');
        self.items.push_str(data);
        self.len += 1;
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The batch, or `None` when no record was pushed.
    pub fn finish(mut self) -> Option<Batch> {
        if self.is_empty() {
            return None;
        }
        self.items.push(']');
        Some(Batch {
            items: self.items,
            ids: self.ids,
        })
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
    fn empty_builder_gives_no_batch() {
        assert_eq!(PairsBuilder::new(10).finish(), None);
    }
}
