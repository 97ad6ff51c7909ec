//! Text results handed to JavaScript.

use napi::bindgen_prelude::{ToNapiValue, TypeName, ValueType};
use napi::{check_status, sys};

use crate::engine::batch::Batch;

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

/// A stream batch as JavaScript gets it: `[items, strings]` (see `engine::batch`).
pub struct BatchText {
    items: Text,
    strings: Text,
}

impl From<Batch> for BatchText {
    fn from(batch: Batch) -> Self {
        BatchText {
            items: batch.items.into(),
            strings: batch.strings.into(),
        }
    }
}

impl TypeName for BatchText {
    fn type_name() -> &'static str {
        "Array"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for BatchText {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut array = std::ptr::null_mut();
        check_status!(
            sys::napi_create_array_with_length(env, 2, &mut array),
            "cannot create an array"
        )?;
        for (i, text) in [val.items, val.strings].into_iter().enumerate() {
            let value = Text::to_napi_value(env, text)?;
            check_status!(
                sys::napi_set_element(env, array, i as u32, value),
                "cannot fill an array"
            )?;
        }
        Ok(array)
    }
}
