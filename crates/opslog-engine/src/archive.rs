//! Archive segments: `archive/archive-<period>.json`, records moved out of the live set,
//! written as `JSON.stringify({version: 1, period, timestamp, records}, null, 2)`.

use std::collections::HashMap;
use std::path::Path;

use super::error::{display_join, Error, Result};
use super::fsutil;
use super::json::{self, Kind};
use super::time;

/// Re-indents canonical JSON text as `JSON.stringify(value, null, 2)` would at `depth`.
pub fn pretty(text: &str, depth: usize, out: &mut String) {
    let b = text.as_bytes();
    let mut level = depth;
    let mut i = 0;
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', level * 2));
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push_str(&text[start..=i]);
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                if b.get(i + 1) == Some(&close) {
                    out.push(c as char);
                    out.push(close as char);
                    i += 1;
                } else {
                    out.push(c as char);
                    level += 1;
                    newline(out, level);
                }
            }
            b'}' | b']' => {
                level -= 1;
                newline(out, level);
                out.push(c as char);
            }
            b',' => {
                out.push(',');
                newline(out, level);
            }
            b':' => out.push_str(": "),
            _ => {
                let start = i;
                while i + 1 < b.len() && !matches!(b[i + 1], b',' | b'}' | b']' | b':') {
                    i += 1;
                }
                out.push_str(&text[start..=i]);
            }
        }
        i += 1;
    }
}

/// `validateArchiveSegment`'s checks; returns the `records` text.
fn check_segment(text: &str) -> std::result::Result<&str, String> {
    let invalid = |msg: &str| format!("Invalid archive segment: {msg}");
    if json::kind_of(text.trim_start()) != Kind::Object {
        return Err(invalid("not an object"));
    }
    let members = json::object_members_dedup(text).map_err(|_| invalid("not an object"))?;
    let get = |name: &str| members.iter().find(|m| m.key == name).map(|m| m.value);
    let version_ok = get("\"version\"")
        .filter(|v| json::kind_of(v) == Kind::Number)
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|v| v.is_finite() && v.fract() == 0.0 && v >= 1.0);
    if !version_ok {
        return Err(invalid("version must be a positive finite integer"));
    }
    let non_empty_string =
        |name: &str| get(name).is_some_and(|v| json::kind_of(v) == Kind::String && v != "\"\"");
    if !non_empty_string("\"period\"") {
        return Err(invalid("period must be a non-empty string"));
    }
    if !non_empty_string("\"timestamp\"") {
        return Err(invalid("timestamp must be a non-empty string"));
    }
    get("\"records\"")
        .filter(|r| json::kind_of(r) == Kind::Object)
        .ok_or_else(|| invalid("records must be an object"))
}

/// `validateArchiveSegment` on JSON text: `Err(message)` when it fails.
pub fn validate(text: &str) -> std::result::Result<(), String> {
    check_segment(text).map(|_| ())
}

/// Parses a segment with `validateArchiveSegment`'s rules; returns its records, canonical.
pub fn parse(text: &str) -> Result<Vec<(String, String)>> {
    let records = check_segment(text).map_err(Error::Corrupt)?;
    let mut out = Vec::new();
    for m in json::object_members_dedup(records).map_err(|e| Error::Corrupt(e.to_string()))? {
        let id = json::canonicalize(m.key)
            .map_err(|e| Error::Corrupt(e.to_string()))?
            .into_owned();
        let data = json::canonicalize(m.value)
            .map_err(|e| Error::Corrupt(e.to_string()))?
            .into_owned();
        out.push((id, data));
    }
    // `new Map(Object.entries(records))`: array-index ids first, as JSON.parse orders them.
    json::js_property_order(&mut out);
    Ok(out)
}

/// A period names a file inside `archive/`; refuse anything that could point elsewhere.
pub fn check_period(period: &str) -> Result<()> {
    if period.is_empty() || period.contains(['/', '\\', '\0']) || period == "." || period == ".." {
        return Err(Error::Type(format!(
            "archive segment name must be a non-empty file name without path separators, got {}",
            json::quote(period)
        )));
    }
    Ok(())
}

/// Writes `records` into the period's segment, merged over what it already holds
/// (`{...existing, ...new}`). Returns the segment's relative path.
pub fn write(
    dir: &Path,
    dir_display: &str,
    period: &str,
    records: &[(String, String)],
) -> Result<String> {
    check_period(period)?;
    let name = format!("archive-{period}.json");
    let rel = format!("archive/{name}");
    let path = dir.join(&rel);
    let mut merged: Vec<(String, String)> = match fsutil::read_text(&path) {
        Ok(text) => parse(&text)
            .map_err(|e| Error::Corrupt(format!("{e} ({})", display_join(dir_display, &rel))))?,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut index: HashMap<String, usize> = merged
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    for (id, data) in records {
        match index.get(id) {
            Some(&i) => merged[i].1 = data.clone(),
            None => {
                index.insert(id.clone(), merged.len());
                merged.push((id.clone(), data.clone()));
            }
        }
    }
    json::js_property_order(&mut merged);
    let mut text = format!(
        "{{\n  \"version\": 1,\n  \"period\": {},\n  \"timestamp\": {},\n  \"records\": ",
        json::quote(period),
        json::quote(&time::now_iso())
    );
    if merged.is_empty() {
        text.push_str("{}");
    } else {
        text.push('{');
        for (i, (id, data)) in merged.iter().enumerate() {
            text.push_str(if i == 0 { "\n    " } else { ",\n    " });
            text.push_str(id);
            text.push_str(": ");
            pretty(data, 2, &mut text);
        }
        text.push_str("\n  }");
    }
    text.push_str("\n}");
    fsutil::write_replace(&path, |w| w.write_all(text.as_bytes()))?;
    Ok(rel)
}

pub fn load(dir: &Path, dir_display: &str, rel: &str) -> Result<Vec<(String, String)>> {
    let shown = display_join(dir_display, rel);
    let text = fsutil::read_text(&dir.join(rel)).map_err(|e| e.shown_as(&shown))?;
    parse(&text).map_err(|e| e.in_file(&shown))
}

/// Segment files present in `archive/`, as relative paths.
pub fn list(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("archive")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("archive-") && n.ends_with(".json"))
        .map(|n| format!("archive/{n}"))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_dir;

    fn pp(text: &str) -> String {
        let mut s = String::new();
        pretty(text, 0, &mut s);
        s
    }

    #[test]
    fn pretty_matches_json_stringify_indent() {
        assert_eq!(pp(r#"{"a":[1,{"b":"x,y:}"}],"c":{},"d":[]}"#), "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x,y:}\"\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}");
        assert_eq!(pp(r#""s\"""#), r#""s\"""#);
        assert_eq!(pp("-1.5e-7"), "-1.5e-7");
    }

    #[test]
    fn parsed_records_come_in_javascript_property_order() {
        // Found by tests/fuzz_parsers.rs: a segment not written by JSON.stringify (ids in text
        // order) loaded in text order; the reference loads `Object.entries` order.
        let text =
            r#"{"version":1,"period":"p","timestamp":"t","records":{"x":{},"10":{},"2":{"a":1}}}"#;
        let ids: Vec<String> = parse(text).unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["\"2\"", "\"10\"", "\"x\""]);
    }

    #[test]
    fn merges_into_existing_period() {
        let tmp = test_dir("archive");
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("archive")).unwrap();
        let rel = write(
            dir,
            "d",
            "2026-Q1",
            &[("\"b\"".into(), r#"{"n":1}"#.into())],
        )
        .unwrap();
        write(
            dir,
            "d",
            "2026-Q1",
            &[
                ("\"a\"".into(), "{}".into()),
                ("\"b\"".into(), r#"{"n":2}"#.into()),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.join(&rel)).unwrap();
        assert!(
            text.ends_with(
                "\"records\": {\n    \"b\": {\n      \"n\": 2\n    },\n    \"a\": {}\n  }\n}"
            ),
            "{text}"
        );
        assert_eq!(
            load(dir, "d", &rel).unwrap(),
            vec![
                ("\"b\"".into(), r#"{"n":2}"#.into()),
                ("\"a\"".into(), "{}".into())
            ]
        );
        assert!(write(dir, "d", "../x", &[]).is_err());
        assert_eq!(list(dir), vec![rel]);
    }
}
