//! Reverse patches between two versions of a record (SPEC section 3, delta rule).
//!
//! A patch applied to the new record gives back the old one: `$set` holds the old values of
//! top-level keys that changed or disappeared, `$unset` the keys the new record added.

use super::json::{self, Kind, Member};

fn members(text: &str) -> Option<Vec<Member<'_>>> {
    if json::kind_of(text) != Kind::Object {
        return None;
    }
    json::object_members_dedup(text).ok()
}

/// Property names every plain JavaScript object inherits, as JSON tokens.
const INHERITED: [&str; 12] = [
    "\"constructor\"",
    "\"__defineGetter__\"",
    "\"__defineSetter__\"",
    "\"hasOwnProperty\"",
    "\"__lookupGetter__\"",
    "\"__lookupSetter__\"",
    "\"isPrototypeOf\"",
    "\"propertyIsEnumerable\"",
    "\"toString\"",
    "\"valueOf\"",
    "\"__proto__\"",
    "\"toLocaleString\"",
];

fn find<'a>(ms: &[Member<'a>], key: &str) -> Option<&'a str> {
    ms.iter().find(|m| m.key == key).map(|m| m.value)
}

/// The reverse patch from `old` to `new` (both canonical record texts), or `None` when they
/// have the same top-level content or either is not an object.
pub fn create_delta(old: &str, new: &str) -> Option<String> {
    let old_m = members(old)?;
    let new_m = members(new)?;
    let set: Vec<&Member<'_>> = old_m
        .iter()
        .filter(|m| find(&new_m, m.key) != Some(m.value))
        .collect();
    // The reference tests keys with `in`, which also sees Object.prototype's properties: a
    // new key with such a name is never listed for removal.
    let unset: Vec<&str> = new_m
        .iter()
        .filter(|m| find(&old_m, m.key).is_none() && !INHERITED.contains(&m.key))
        .map(|m| m.key)
        .collect();
    if set.is_empty() && unset.is_empty() {
        return None;
    }
    let mut out = String::from("{");
    if !set.is_empty() {
        out.push_str("\"$set\":{");
        for (i, m) in set.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(m.key);
            out.push(':');
            out.push_str(m.value);
        }
        out.push('}');
    }
    if !unset.is_empty() {
        if !set.is_empty() {
            out.push(',');
        }
        out.push_str("\"$unset\":[");
        out.push_str(&unset.join(","));
        out.push(']');
    }
    out.push('}');
    Some(out)
}

/// Whether the patch text is shorter than the full record text, in UTF-16 code units.
pub fn is_delta_smaller(patch: &str, full: &str) -> bool {
    json::utf16_len(patch) < json::utf16_len(full)
}

/// Applies a patch to a record as `{...record}`, then `$set`, then `$unset` would in
/// JavaScript, property order included. `None` when the record or patch is not an object.
pub fn apply_delta(record: &str, patch: &str) -> Option<String> {
    let mut props: Vec<(String, String)> = members(record)?
        .iter()
        .map(|m| (m.key.to_string(), m.value.to_string()))
        .collect();
    for m in members(patch)? {
        match m.key {
            "\"$set\"" => {
                for s in members(m.value).unwrap_or_default() {
                    match props.iter_mut().find(|(k, _)| k == s.key) {
                        Some(slot) => slot.1 = s.value.to_string(),
                        None => props.push((s.key.to_string(), s.value.to_string())),
                    }
                }
            }
            "\"$unset\"" => {
                for key in array_strings(m.value) {
                    props.retain(|(k, _)| *k != key);
                }
            }
            _ => {}
        }
    }
    json::js_property_order(&mut props);
    let mut out = String::new();
    json::push_object(&props, &mut out);
    Some(out)
}

/// The string elements of an array text, as raw tokens.
fn array_strings(text: &str) -> Vec<String> {
    json::array_elements(text)
        .map(|es| {
            es.into_iter()
                .filter(|e| json::kind_of(e) == Kind::String)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        let old = r#"{"name":"A","status":"x"}"#;
        let new = r#"{"name":"A","status":"z","extra":1}"#;
        let d = create_delta(old, new).unwrap();
        assert_eq!(d, r#"{"$set":{"status":"x"},"$unset":["extra"]}"#);
        assert_eq!(apply_delta(new, &d).unwrap(), old);
    }

    #[test]
    fn no_change_no_delta() {
        assert_eq!(create_delta(r#"{"a":[1,2]}"#, r#"{"a":[1,2]}"#), None);
        assert_eq!(create_delta("5", r#"{"a":1}"#), None);
    }

    #[test]
    fn removed_key_is_restored_at_the_end_like_spread() {
        let old = r#"{"a":1,"b":2,"c":3}"#;
        let new = r#"{"a":1,"c":3}"#;
        let d = create_delta(old, new).unwrap();
        assert_eq!(d, r#"{"$set":{"b":2}}"#);
        // {...{a,c}, b} keeps a,c first then appends b, as JavaScript does.
        assert_eq!(apply_delta(new, &d).unwrap(), r#"{"a":1,"c":3,"b":2}"#);
        let idx = apply_delta(r#"{"a":1}"#, r#"{"$set":{"7":0,"2":1}}"#).unwrap();
        assert_eq!(idx, r#"{"2":1,"7":0,"a":1}"#);
    }

    #[test]
    fn unset_handles_strings_with_commas_and_brackets() {
        let rec = r#"{"a,b":1,"[x]":2,"k":3}"#;
        assert_eq!(
            apply_delta(rec, r#"{"$unset":["a,b","[x]"]}"#).unwrap(),
            r#"{"k":3}"#
        );
    }

    #[test]
    fn inherited_names_are_never_unset() {
        let d = create_delta(
            r#"{"a":"old value"}"#,
            r#"{"a":"new","constructor":1,"b":2}"#,
        )
        .unwrap();
        assert_eq!(d, r#"{"$set":{"a":"old value"},"$unset":["b"]}"#);
    }

    #[test]
    fn size_is_measured_in_utf16_units() {
        assert!(is_delta_smaller("{\"$set\":{}}", "{\"a\":\"😀😀😀\"}"));
        assert!(!is_delta_smaller("{\"$set\":{\"a\":1}}", "{\"a\":1}"));
    }
}
