//! Record payloads as they cross the boundary: `[id, record, id, record, ...]` JSON text.

use crate::engine::error::{Error, Result};
use crate::engine::json;

/// `[id, record, ...]` text to pairs of canonical texts.
pub fn pairs(items: &str) -> Result<Vec<(String, String)>> {
    let elements = json::array_elements(items)
        .map_err(|e| Error::Type(format!("opslog: bad records payload: {e}")))?;
    let canon = |t: &str| {
        json::canonicalize(t)
            .map(|c| c.into_owned())
            .map_err(|e| Error::Type(e.to_string()))
    };
    elements
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| Ok((canon(p[0])?, canon(p[1])?)))
        .collect()
}

pub fn items_json<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("[");
    for (i, (id, text)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(id);
        out.push(',');
        out.push_str(text);
    }
    out.push(']');
    out
}

pub fn strings_json(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|s| json::quote(s))
            .collect::<Vec<_>>()
            .join(",")
    )
}
