//! One operation of the log: its JSON line format (written, split in its usual forms, parsed in
//! any form) and validation (`validateOp`).

use std::ops::Range;
use std::sync::Arc;

use super::json::{self, Kind};

/// The fixed parts of an op line, in the reference's key order:
/// `{"ts":<string>,"op":"set","id":<string>,"prev":<value>,"data":<value>}` for a set (a delete
/// has no `data`), then `agent`, `clock` and `encoding` where they apply.
const TS_MEMBER: &str = "{\"ts\":";
const SET_ID_MEMBERS: &str = ",\"op\":\"set\",\"id\":";
const DELETE_ID_MEMBERS: &str = ",\"op\":\"delete\",\"id\":";
const PREV_MEMBER: &str = ",\"prev\":";
const DATA_MEMBER: &str = ",\"data\":";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Set,
    Delete,
}

/// Where an encoded line holds the op's id token and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSpans {
    pub id: Range<usize>,
    pub data: Option<Range<usize>>,
}

/// An operation with every value as canonical JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Shared by the ops made in the same millisecond.
    pub ts: Arc<str>,
    pub kind: OpKind,
    /// The id as a JSON string token (quotes included), so any JavaScript string survives.
    pub id: String,
    /// `None` for a create; otherwise the full previous record or, with `delta`, a patch.
    pub prev: Option<String>,
    pub data: Option<String>,
    pub delta: bool,
    pub agent: Option<String>,
    pub clock: Option<u64>,
}

/// The values of an op line of one of the forms the engine writes (`Op::encode`) for ops
/// without agent, clock or encoding:
/// `{"ts":<string>,"op":"set","id":<string>,"prev":<value>,"data":<value>}` or
/// `{"ts":<string>,"op":"delete","id":<string>,"prev":<value>}`.
/// `R` is what the record values (`prev`, `data`) are taken as.
pub struct UsualOp<'a, R> {
    pub ts: &'a str,
    pub id: &'a str,
    pub prev: R,
    /// Set ops only.
    pub data: Option<R>,
}

/// `line` (a valid op) split into its values when it has a usual form; `None` otherwise.
/// `record` takes the record value a text starts with, and gives its length.
pub fn split_usual<'a, R>(
    line: &'a str,
    mut record: impl FnMut(&'a str) -> Option<(R, usize)>,
) -> Option<UsualOp<'a, R>> {
    let rest = line.strip_prefix(TS_MEMBER)?;
    let (ts, rest) = rest.split_at(json::valid_string_len(rest)?.0);
    let (set, rest) = if let Some(rest) = rest.strip_prefix(SET_ID_MEMBERS) {
        (true, rest)
    } else {
        (false, rest.strip_prefix(DELETE_ID_MEMBERS)?)
    };
    let (id, rest) = rest.split_at(json::valid_string_len(rest)?.0);
    let rest = rest.strip_prefix(PREV_MEMBER)?;
    let (prev, len) = record(rest)?;
    let rest = &rest[len..];
    let (data, rest) = if set {
        let rest = rest.strip_prefix(DATA_MEMBER)?;
        let (data, len) = record(rest)?;
        (Some(data), &rest[len..])
    } else {
        (None, rest)
    };
    (rest == "}").then_some(UsualOp { ts, id, prev, data })
}

impl Op {
    /// The op's line, without the trailing newline, keys in the reference's order.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.encode_into(&mut out);
        out
    }

    /// `encode` appended to `out` (a buffer reused from op to op). Returns where in `out` the id
    /// token and the data are.
    pub fn encode_into(&self, out: &mut String) -> LineSpans {
        self.encode_with_data(self.data.as_deref(), out)
    }

    /// `encode_into` with `data` as the op's data (a set's record text, borrowed from where the
    /// caller has it, so it is not copied into the op only to be copied into the line).
    pub fn encode_with_data(&self, data: Option<&str>, out: &mut String) -> LineSpans {
        let data_len = data.map_or(0, str::len);
        let prev_len = self.prev.as_ref().map_or(4, String::len);
        out.reserve(64 + self.id.len() + prev_len + data_len);
        // `ts` is an ISO timestamp: no character in it needs escaping.
        out.push_str(TS_MEMBER);
        out.push('"');
        out.push_str(&self.ts);
        out.push('"');
        out.push_str(match self.kind {
            OpKind::Set => SET_ID_MEMBERS,
            OpKind::Delete => DELETE_ID_MEMBERS,
        });
        let id_at = out.len();
        out.push_str(&self.id);
        let id = id_at..out.len();
        out.push_str(PREV_MEMBER);
        out.push_str(self.prev.as_deref().unwrap_or("null"));
        let mut data_span = None;
        if let Some(data) = data {
            out.push_str(DATA_MEMBER);
            let data_at = out.len();
            out.push_str(data);
            data_span = Some(data_at..out.len());
        }
        if let Some(agent) = &self.agent {
            out.push_str(",\"agent\":");
            out.push_str(&json::quote(agent));
        }
        if let Some(clock) = self.clock {
            out.push_str(&format!(",\"clock\":{clock}"));
        }
        if self.delta {
            out.push_str(",\"encoding\":\"delta\"");
        }
        out.push('}');
        LineSpans {
            id,
            data: data_span,
        }
    }

    /// Parses and validates one line of an op file, with `validateOp`'s rules and messages.
    pub fn parse(line: &str) -> Result<Op, String> {
        let kind = json::kind_of(line.trim_start());
        if kind != Kind::Object {
            json::validate(line).map_err(|e| e.to_string())?;
            return Err("Invalid operation: not an object".into());
        }
        let members = json::object_members_dedup(line).map_err(|e| e.to_string())?;
        // Keys in canonical form so `"\u0074s"` counts as `ts`, as JSON.parse would see it.
        let mut fields: Vec<(String, &str)> = Vec::with_capacity(members.len());
        for m in &members {
            let key = json::canonicalize(m.key)
                .map_err(|e| e.to_string())?
                .into_owned();
            fields.push((key, m.value));
        }
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let string_field = |name: &str| -> Option<String> {
            get(name)
                .filter(|v| json::kind_of(v) == Kind::String)
                .and_then(|v| json::decode_string(v).ok())
        };

        let ts = string_field("\"ts\"").filter(|s| !s.is_empty());
        let ts = ts.ok_or("Invalid operation: ts must be a non-empty string")?;
        let op = get("\"op\"");
        let kind = match op.map(|v| (json::kind_of(v), v)) {
            Some((Kind::String, v)) if json::decode_string(v).as_deref() == Ok("set") => {
                OpKind::Set
            }
            Some((Kind::String, v)) if json::decode_string(v).as_deref() == Ok("delete") => {
                OpKind::Delete
            }
            other => {
                let got = other.map_or("undefined".to_string(), |(_, v)| json::js_string(v));
                return Err(format!(
                    "Invalid operation: op must be \"set\" or \"delete\", got \"{got}\""
                ));
            }
        };
        let id = get("\"id\"").filter(|v| json::kind_of(v) == Kind::String && *v != "\"\"");
        let id = id.ok_or("Invalid operation: id must be a non-empty string")?;
        let id = json::canonicalize(id)
            .map_err(|e| e.to_string())?
            .into_owned();
        let prev = get("\"prev\"").ok_or("Invalid operation: missing prev")?;
        let prev = match json::kind_of(prev) {
            Kind::Null => None,
            Kind::Object => Some(
                json::canonicalize(prev)
                    .map_err(|e| e.to_string())?
                    .into_owned(),
            ),
            _ => return Err("Invalid operation: prev must be an object or null".into()),
        };
        let data = get("\"data\"");
        if kind == OpKind::Set && data.is_none_or(|d| json::kind_of(d) == Kind::Null) {
            return Err("Invalid operation: set op must have non-null data".into());
        }
        if kind == OpKind::Delete && prev.is_none() {
            return Err("Invalid operation: delete op must have non-null prev".into());
        }
        if kind == OpKind::Delete && data.is_some() {
            return Err("Invalid operation: delete op must not have data field".into());
        }
        let data = match data {
            Some(d) => Some(
                json::canonicalize(d)
                    .map_err(|e| e.to_string())?
                    .into_owned(),
            ),
            None => None,
        };
        let delta = match get("\"encoding\"") {
            None => false,
            Some("\"delta\"") => true,
            Some("\"full\"") => false,
            Some(other) => {
                let got = json::js_string(other);
                return Err(format!(
                    "Invalid operation: encoding must be \"full\" or \"delta\", got \"{got}\""
                ));
            }
        };
        let agent = match get("\"agent\"") {
            None => None,
            Some(_) => {
                let a = string_field("\"agent\"").filter(|s| !s.is_empty());
                Some(a.ok_or("Invalid operation: agent must be a non-empty string")?)
            }
        };
        let clock = match get("\"clock\"") {
            None => None,
            Some(raw) => {
                let bad = || "Invalid operation: clock must be a non-negative integer".to_string();
                if json::kind_of(raw) != Kind::Number {
                    return Err(bad());
                }
                let v: f64 = raw.parse().map_err(|_| bad())?;
                if !v.is_finite() || v.fract() != 0.0 || v < 0.0 || v > u64::MAX as f64 {
                    return Err(bad());
                }
                Some(v as u64)
            }
        };
        Ok(Op {
            ts: ts.into(),
            kind,
            id,
            prev,
            data,
            delta,
            agent,
            clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_reference_key_order() {
        let op = Op {
            ts: "2026-11-24T10:42:12.136Z".into(),
            kind: OpKind::Set,
            id: "\"a\"".into(),
            prev: Some(r#"{"$set":{"status":"x"},"$unset":["extra"]}"#.into()),
            data: Some(r#"{"name":"A","status":"z","extra":1}"#.into()),
            delta: true,
            agent: None,
            clock: None,
        };
        let line = op.encode();
        assert_eq!(
            line,
            r#"{"ts":"2026-11-24T10:42:12.136Z","op":"set","id":"a","prev":{"$set":{"status":"x"},"$unset":["extra"]},"data":{"name":"A","status":"z","extra":1},"encoding":"delta"}"#
        );
        assert_eq!(Op::parse(&line).unwrap(), op);
        let mut out = String::from("after a line\n");
        let spans = op.encode_into(&mut out);
        assert_eq!(&out[spans.id], "\"a\"");
        assert_eq!(&out[spans.data.unwrap()], op.data.as_deref().unwrap());
    }

    #[test]
    fn validation_messages() {
        let cases = [
            ("[1]", "Invalid operation: not an object"),
            (
                r#"{"op":"set"}"#,
                "Invalid operation: ts must be a non-empty string",
            ),
            (
                r#"{"ts":"t","op":"put"}"#,
                "Invalid operation: op must be \"set\" or \"delete\", got \"put\"",
            ),
            (
                r#"{"ts":"t","op":"set","id":""}"#,
                "Invalid operation: id must be a non-empty string",
            ),
            (
                r#"{"ts":"t","op":"set","id":"a"}"#,
                "Invalid operation: missing prev",
            ),
            (
                r#"{"ts":"t","op":"set","id":"a","prev":[1]}"#,
                "Invalid operation: prev must be an object or null",
            ),
            (
                r#"{"ts":"t","op":"set","id":"a","prev":null,"data":null}"#,
                "Invalid operation: set op must have non-null data",
            ),
            (
                r#"{"ts":"t","op":"delete","id":"a","prev":null}"#,
                "Invalid operation: delete op must have non-null prev",
            ),
            (
                r#"{"ts":"t","op":"delete","id":"a","prev":{},"data":{}}"#,
                "Invalid operation: delete op must not have data field",
            ),
            (
                r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{},"encoding":"x"}"#,
                "Invalid operation: encoding must be \"full\" or \"delta\", got \"x\"",
            ),
            (
                r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{},"agent":""}"#,
                "Invalid operation: agent must be a non-empty string",
            ),
            (
                r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{},"clock":1.5}"#,
                "Invalid operation: clock must be a non-negative integer",
            ),
        ];
        for (line, msg) in cases {
            assert_eq!(Op::parse(line).unwrap_err(), msg, "{line}");
        }
        assert!(Op::parse("{not json").is_err());
        assert!(Op::parse(
            r#"{"ts":"t","op":"delete","id":"a","prev":{"x":1},"agent":"b","clock":3}"#
        )
        .is_ok());
    }

    #[test]
    fn parsed_values_are_canonical() {
        let op =
            Op::parse(r#"{ "ts":"t", "op":"set", "id":"\u0061", "prev":null, "data":{"n": 1.0} }"#)
                .unwrap();
        assert_eq!(op.id, "\"a\"");
        assert_eq!(op.data.as_deref(), Some(r#"{"n":1}"#));
    }
}
