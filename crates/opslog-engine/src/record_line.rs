//! The record line of a JSONL snapshot, `{"id":<string>,"data":<record>}`: how it is written,
//! split when it has that usual form, and parsed in any form JSON allows (keys in another order,
//! white space, escapes). The export's lines start the same way (see `export`).

use super::json::{self, Kind};

/// What every record line starts with, before the id token.
pub const ID_MEMBER: &str = "{\"id\":";
/// What follows the id token, before the record.
pub const DATA_MEMBER: &str = ",\"data\":";

/// Appends the line of a record (canonical id token and record text), newline included.
pub fn encode(id: &str, data: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(ID_MEMBER.as_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(DATA_MEMBER.as_bytes());
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// A line of the usual form split into its two values, unchecked (`data` may not be one value);
/// `None` for a line of another form.
pub fn split(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(ID_MEMBER)?;
    let id_len = json::string_token_len(rest)?;
    let data = rest[id_len..]
        .strip_prefix(DATA_MEMBER)?
        .strip_suffix('}')?;
    Some((&rest[..id_len], data))
}

/// Parses a record line of any form into (id token, record text), both canonical.
pub fn parse(line: &str) -> Result<(String, String), String> {
    let members = json::object_members_dedup(line).map_err(|e| e.to_string())?;
    let mut id = None;
    let mut data = None;
    for m in &members {
        match &*json::canonicalize(m.key).map_err(|e| e.to_string())? {
            "\"id\"" => id = Some(m.value),
            "\"data\"" => data = Some(m.value),
            _ => {}
        }
    }
    let id = id
        .filter(|v| json::kind_of(v) == Kind::String)
        .ok_or("record line has no string id")?;
    let data = data.ok_or("record line has no data")?;
    let id = json::canonicalize(id)
        .map_err(|e| e.to_string())?
        .into_owned();
    let data = json::canonicalize(data)
        .map_err(|e| e.to_string())?
        .into_owned();
    Ok((id, data))
}

/// `parse`, with the usual form's fast path.
pub fn parse_canonical(line: &str) -> Result<(String, String), String> {
    if let Some((id, data)) = split(line) {
        if let (Ok(id), Ok(data)) = (json::canonicalize(id), json::canonicalize(data)) {
            return Ok((id.into_owned(), data.into_owned()));
        }
    }
    parse(line)
}
