//! Text results handed to JavaScript.

use napi::bindgen_prelude::{ToNapiValue, TypeName, ValueType};
use napi::{check_status, sys};

use opslog_engine::batch::Batch;

/// A string for JavaScript, checked for ASCII where it was made (a worker thread).
///
/// `napi_create_string_utf8` decodes the UTF-8 on the JavaScript thread: for the megabytes a
/// stream hands over (150 MB for a million records) that is a large share of the main thread's
/// time. ASCII text, which nearly all the engine's JSON is, is also valid Latin-1, and a Latin-1
/// string is created with a plain copy.
pub struct Text {
    text: String,
    ascii: bool,
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        let ascii = text.is_ascii();
        Text { text, ascii }
    }
}

impl TypeName for Text {
    fn type_name() -> &'static str {
        "String"
    }

    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ToNapiValue for Text {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        if !val.ascii {
            return String::to_napi_value(env, val.text);
        }
        let mut out = std::ptr::null_mut();
        check_status!(
            sys::napi_create_string_latin1(
                env,
                val.text.as_ptr().cast(),
                val.text.len() as isize,
                &mut out,
            ),
            "cannot create a string"
        )?;
        Ok(out)
    }
}

/// A stream batch as JavaScript gets it: `[items, strings]` (see `engine::batch`), and for a
/// batch read by position, `[items, strings, next]`.
pub struct BatchText {
    items: Text,
    strings: Text,
    next: Option<u32>,
}

impl From<Batch> for BatchText {
    fn from(batch: Batch) -> Self {
        BatchText {
            items: batch.items.into(),
            strings: batch.strings.into(),
            next: None,
        }
    }
}

impl BatchText {
    /// With the position the next batch starts at.
    pub fn resuming_at(self, next: u32) -> Self {
        BatchText {
            next: Some(next),
            ..self
        }
    }
}

/// A JavaScript array of `values` (made on the JavaScript thread).
///
/// # Safety
/// `env` is the current call's environment.
unsafe fn js_array(
    env: sys::napi_env,
    values: impl ExactSizeIterator<Item = napi::Result<sys::napi_value>>,
) -> napi::Result<sys::napi_value> {
    let mut array = std::ptr::null_mut();
    check_status!(
        sys::napi_create_array_with_length(env, values.len(), &mut array),
        "cannot create an array"
    )?;
    for (i, value) in values.enumerate() {
        check_status!(
            sys::napi_set_element(env, array, i as u32, value?),
            "cannot fill an array"
        )?;
    }
    Ok(array)
}

/// The TypeName of a type that goes to JavaScript as an array.
macro_rules! array_type_name {
    ($($t:ty),*) => {
        $(impl TypeName for $t {
            fn type_name() -> &'static str {
                "Array"
            }

            fn value_type() -> ValueType {
                ValueType::Object
            }
        })*
    };
}

array_type_name!(BatchText, Ids);

impl ToNapiValue for BatchText {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut values = vec![
            Text::to_napi_value(env, val.items),
            Text::to_napi_value(env, val.strings),
        ];
        if let Some(next) = val.next {
            values.push(u32::to_napi_value(env, next));
        }
        js_array(env, values.into_iter())
    }
}

/// Record ids for JavaScript as an array of strings. Made from UTF-16 units, not Rust text: an
/// id may hold a lone surrogate (see `engine::batch`).
pub struct Ids(pub Vec<Vec<u16>>);

impl ToNapiValue for Ids {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let ids = val.0.iter().map(|units| {
            let mut id = std::ptr::null_mut();
            check_status!(
                sys::napi_create_string_utf16(env, units.as_ptr(), units.len() as isize, &mut id),
                "cannot create a string"
            )?;
            Ok(id)
        });
        js_array(env, ids)
    }
}
