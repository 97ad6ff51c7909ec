//! Record payloads as they cross the boundary: `[id, record, id, record, ...]` JSON text.

use opslog_engine::error::{Error, Result};
use opslog_engine::json;
use opslog_engine::records::Records;

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
    for (id, text) in pairs {
        push_item(&mut out, id, text);
    }
    out.push(']');
    out
}

/// Appends `id,text` to an items array text opened with `[`.
pub fn push_item(out: &mut String, id: &str, text: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str(id);
    out.push(',');
    out.push_str(text);
}

/// `items_json` of every record, in order.
pub fn records_json(records: &Records) -> Result<String> {
    let mut out = String::from("[");
    records.visit(|id, text| {
        push_item(&mut out, id, text);
        Ok(())
    })?;
    out.push(']');
    Ok(out)
}
