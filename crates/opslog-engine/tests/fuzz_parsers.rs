//! Property-based fuzzing of every parser of the on-disk formats: op lines and op files (torn
//! tails included), snapshots (JSONL and both legacy forms), manifests, archive segments and the
//! JSON canonicaliser they all rest on.
//!
//! Two kinds of input per target: arbitrary ones (random bytes, and a "soup" of JSON tokens and
//! format keywords that gets past the tokenizer), and structure-aware ones (valid inputs built by
//! the engine's own encoders, which must round-trip, then mutated byte-wise: bit flips, inserted,
//! deleted and duplicated bytes and tokens, truncation, splices with other valid inputs).
//! Properties: nothing panics; errors are `Err` values with a message; what parses is canonical
//! and re-encodes to something that parses the same; the streaming and whole-file readers agree;
//! valid inputs load as the reference implementation loads them.
//!
//! Cases per test: `OPSLOG_FUZZ_CASES` (default 1000, for CI). The full run (each target has
//! two tests, so 1,000,000 inputs a target):
//! `OPSLOG_FUZZ_CASES=500000 cargo test --release --test fuzz_parsers fuzz_ -- --nocapture`
//!

use opslog_engine as engine;

use std::borrow::Cow;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use engine::archive;
use engine::batch::{OpsBuilder, PairsBuilder};
use engine::checks;
use engine::json;
use engine::manifest::{Manifest, Stats};
use engine::op::{Op, OpKind};
use engine::record_line;
use engine::snapshot;
use engine::wal;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn cases() -> u32 {
    std::env::var("OPSLOG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(1000)
}

thread_local! {
    /// Set while a fuzz run is under way on this thread: the panics it catches (one per shrink
    /// step of a failure) are not printed; the shrunk failure is reported at the end.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `test` on `cases()` inputs from `strategy`; a failure panics with the shrunk input.
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
    let cases = cases();
    let config = Config {
        cases,
        failure_persistence: None,
        max_local_rejects: u32::MAX,
        max_global_rejects: u32::MAX,
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    QUIET.with(|q| q.set(true));
    let result = runner.run(&strategy, test);
    QUIET.with(|q| q.set(false));
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!(
        "fuzz {name}: {cases} inputs, no failure, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A scratch directory for the file-based readers, one per test and process; in memory where
/// there is a tmpfs (rewriting a file on ext4 costs a flush each time).
fn scratch(name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = root.join(format!("opslog-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("snapshots")).unwrap();
    dir
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Generators: arbitrary inputs
// ---------------------------------------------------------------------------------------------

/// JSON punctuation, escapes, awkward numbers and characters, and every key and keyword of the
/// formats: concatenated at random they reach deep into the parsers.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "{", "}", "[", "]", ":", ",", "\"", "\\", "\\\"", "\\\\", "\\/", "\\b", "\\n", "\\u",
    "\\u00", "\\ud800", "\\uDBFF", "\\udc00", "\\uDFFF", "\\ud83d\\ude00", "\\uD83D\\uDE00",
    "\\u0000", "\\u001f", "\\u001F", "\\u0041", "\\u2028", "\\x", " ", "  ", "\n", "\r", "\r\n",
    "\t", "null", "true", "false", "nul", "tru", "0", "-0", "00", "01", "1", "-1", "1.", ".5",
    "1.5", "-2.50", "1e21", "1e+21", "1E-7", "1e400", "-1e400", "5e-324", "2e-324", "1e", "1e+",
    "-", "+1", "12345678901234567890", "9007199254740993", "18446744073709551615",
    "18446744073709551616", "4294967294", "4294967295", "0.1", "100", "\"ts\"", "\"op\"",
    "\"id\"", "\"prev\"", "\"data\"", "\"set\"", "\"delete\"", "\"put\"", "\"encoding\"",
    "\"delta\"", "\"full\"", "\"agent\"", "\"clock\"", "\"version\"", "\"timestamp\"",
    "\"records\"", "\"period\"", "\"currentSnapshot\"", "\"activeOps\"", "\"archiveSegments\"",
    "\"stats\"", "\"activeRecords\"", "\"archivedRecords\"", "\"opsCount\"", "\"created\"",
    "\"lastCheckpoint\"", "\"activeAgentOps\"", "\"agentClocks\"", "\"\\u0074s\"", "\"a\"",
    "\"b\"", "\"0\"", "\"1\"", "\"10\"", "\"2\"", "\"\"", "\"x\":", "\"ts\":\"t\",",
    "\"op\":\"set\",", "\"id\":\"a\",", "\"prev\":null,", "\"data\":{}", "{\"version\":1,",
    "é", "😀", "\u{2028}", "\u{feff}", "\u{a0}", "\u{85}", "\u{0}", "\u{1f}", "\u{7f}", "\u{fffd}",
    "[[[[[[[[", "]]]]]]]]", "{\"a\":{\"a\":{\"a\":",
];

fn soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => select(TOKENS).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
        1 => (b' '..=b'~').prop_map(|b| char::from(b).to_string()),
    ];
    prop::collection::vec(piece, 0..48).prop_map(|p| p.concat())
}

/// Random bytes, random characters, or a token soup, as bytes.
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..192),
        1 => prop::collection::vec(any::<char>(), 0..48)
            .prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
        5 => soup().prop_map(String::into_bytes),
    ]
}

// ---------------------------------------------------------------------------------------------
// Generators: valid JSON text (not necessarily canonical)
// ---------------------------------------------------------------------------------------------

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![12 => Just(""), 1 => select(&[" ", "\n", "\t", "\r\n  ", "  "][..])]
}

/// A character for a string's contents, biased to the ones that need care.
fn text_char() -> impl Strategy<Value = char> {
    #[rustfmt::skip]
    const SPECIAL: &[char] = &[
        '"', '\\', '/', '\u{0}', '\u{8}', '\u{9}', '\u{a}', '\u{c}', '\u{d}', '\u{1f}', '\u{7f}',
        '\u{a0}', '\u{2028}', '\u{2029}', '\u{feff}', 'é', '😀', '\u{fffd}', '0', '1', '9',
    ];
    prop_oneof![
        8 => (b'a'..=b'z').prop_map(char::from),
        2 => any::<char>(),
        2 => select(SPECIAL),
    ]
}

/// How one character of a string token is written.
#[derive(Debug, Clone)]
enum StrPiece {
    /// The character, in one of its spellings (literal, short escape, `\u` lower or upper).
    Char(char, u8),
    /// A lone surrogate escape (`upper`: uppercase hex).
    Lone(u16, bool),
}

fn str_piece() -> impl Strategy<Value = StrPiece> {
    prop_oneof![
        12 => (text_char(), any::<u8>()).prop_map(|(c, s)| StrPiece::Char(c, s)),
        1 => (0xD800u16..0xE000, any::<bool>()).prop_map(|(u, up)| StrPiece::Lone(u, up)),
    ]
}

fn push_unit(out: &mut String, u: u16, upper: bool) {
    if upper {
        out.push_str(&format!("\\u{u:04X}"));
    } else {
        out.push_str(&format!("\\u{u:04x}"));
    }
}

fn render_string(pieces: &[StrPiece]) -> String {
    let mut out = String::from("\"");
    for p in pieces {
        match *p {
            StrPiece::Lone(u, upper) => push_unit(&mut out, u, upper),
            StrPiece::Char(c, style) => {
                let must_escape = c == '"' || c == '\\' || (c as u32) < 0x20;
                let short = match c {
                    '"' => Some("\\\""),
                    '\\' => Some("\\\\"),
                    '/' => Some("\\/"),
                    '\u{8}' => Some("\\b"),
                    '\u{c}' => Some("\\f"),
                    '\n' => Some("\\n"),
                    '\r' => Some("\\r"),
                    '\t' => Some("\\t"),
                    _ => None,
                };
                match (style % 8, short) {
                    (0..=4, _) if !must_escape => out.push(c),
                    (0..=5, Some(short)) => out.push_str(short),
                    (s, _) => {
                        let mut units = [0u16; 2];
                        for &u in c.encode_utf16(&mut units).iter() {
                            push_unit(&mut out, u, s == 7);
                        }
                    }
                }
            }
        }
    }
    out.push('"');
    out
}

fn string_token() -> impl Strategy<Value = String> {
    prop::collection::vec(str_piece(), 0..10).prop_map(|p| render_string(&p))
}

fn number_text() -> impl Strategy<Value = String> {
    #[rustfmt::skip]
    const SPELLINGS: &[&str] = &[
        "0", "-0", "0.0", "-0.0", "1.0", "1e21", "1e+21", "1E400", "-1E400", "5e-324", "2e-324",
        "1e-7", "0.000001", "0.0000001", "123456789012345680000", "1.7976931348623157e308",
        "1.7976931348623159e308", "4.9e-324", "0e0", "-0.0e-0", "9007199254740993", "100e-2",
        "1574.8977661132812",
    ];
    prop_oneof![
        3 => any::<i32>().prop_map(|i| i.to_string()),
        1 => any::<u64>().prop_map(|i| i.to_string()),
        2 => any::<f64>()
            .prop_map(|x| if x.is_finite() { x } else { 0.5 })
            .prop_flat_map(|x| select(vec![
                format!("{x}"),
                format!("{x:e}"),
                format!("{x:E}"),
                json::format_number(x),
            ])),
        1 => (
            any::<bool>(),
            "[1-9][0-9]{0,25}|0",
            prop::option::of("[0-9]{1,25}"),
            prop::option::of(("[eE]", "[+-]?", "[0-9]{1,4}")),
        )
            .prop_map(|(neg, int, frac, exp)| {
                let mut s = String::new();
                if neg {
                    s.push('-');
                }
                s.push_str(&int);
                if let Some(f) = frac {
                    s.push('.');
                    s.push_str(&f);
                }
                if let Some((e, sign, digits)) = exp {
                    s.push_str(&e);
                    s.push_str(&sign);
                    s.push_str(&digits);
                }
                s
            }),
        1 => select(SPELLINGS).prop_map(str::to_string),
    ]
}

fn object_key() -> impl Strategy<Value = String> {
    #[rustfmt::skip]
    const KEYS: &[&str] = &[
        "\"a\"", "\"\\u0061\"", "\"b\"", "\"0\"", "\"1\"", "\"2\"", "\"10\"", "\"01\"", "\"-1\"",
        "\"1.5\"", "\"4294967294\"", "\"4294967295\"", "\"\"", "\"__proto__\"", "\"\\u0031\"",
    ];
    prop_oneof![
        3 => string_token(),
        2 => select(KEYS).prop_map(str::to_string),
    ]
}

fn render_container(open: char, close: char, items: Vec<String>, ws: &str) -> String {
    if items.is_empty() {
        return format!("{open}{ws}{close}");
    }
    format!("{open}{ws}{}{ws}{close}", items.join(&format!("{ws},{ws}")))
}

fn render_object(members: Vec<(String, String)>, ws: &str) -> String {
    let items = members
        .into_iter()
        .map(|(k, v)| format!("{k}{ws}:{ws}{v}"))
        .collect();
    render_container('{', '}', items, ws)
}

/// Valid JSON text of any kind, with the spellings JSON allows (escapes, exponents, whitespace,
/// duplicate keys, index-like keys in any order).
fn json_text() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        1 => select(&["null", "true", "false"][..]).prop_map(str::to_string),
        3 => number_text(),
        3 => string_token(),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), ws())
                .prop_map(|(items, ws)| render_container('[', ']', items, ws)),
            (prop::collection::vec((object_key(), inner), 0..5), ws())
                .prop_map(|(members, ws)| render_object(members, ws)),
        ]
    })
    .boxed()
}

fn json_object_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((object_key(), json_text()), 0..4),
        ws(),
    )
        .prop_map(|(members, ws)| render_object(members, ws))
}

/// The canonical form, or `None` past the rewrite's depth limit (canonical text that deep is
/// accepted as it is; only a rewrite recurses).
fn canon_unless_deep(text: &str) -> Option<String> {
    match json::canonicalize(text) {
        Ok(c) => Some(c.into_owned()),
        Err(e) if e.0.contains("nesting too deep") => None,
        Err(e) => panic!("valid JSON {text:?} rejected: {e}"),
    }
}

use checks::canon;

/// Hostile nesting, on both sides of the canonicaliser's depth limit, sometimes with whitespace
/// (which forces the recursive rewrite), sometimes unclosed.
fn deep_json() -> impl Strategy<Value = String> {
    (1usize..400, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(depth, objects, spaced, unclosed)| {
            let (open, close) = if objects {
                ("{\"k\":", "}")
            } else {
                ("[", "]")
            };
            let sep = if spaced { " " } else { "" };
            let mut s = String::new();
            for _ in 0..depth {
                s.push_str(open);
                s.push_str(sep);
            }
            s.push('1');
            for _ in 0..depth - usize::from(unclosed) {
                s.push_str(close);
            }
            s
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Generators: byte-level mutations of valid inputs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    InsertToken(Index, &'static str),
    Delete(Index, usize),
    Truncate(Index),
    Duplicate(Index, usize),
    /// Replaces everything from a point on with the tail of a valid input of any format (from
    /// `SPLICE_SOURCES`) or of the input itself.
    Splice(Index, Index, Index),
}

/// Valid inputs of every format, for splices: cheaper than generating a second input per case,
/// and a splice across formats is a plausible corruption too.
const SPLICE_SOURCES: &[&str] = &[
    r#"{"ts":"2026-11-24T10:42:12.136Z","op":"set","id":"a","prev":null,"data":{"n":1,"s":"x"}}"#,
    r#"{"ts":"2026-11-24T10:42:12.137Z","op":"set","id":"10","prev":{"$set":{"s":"y"}},"data":{"s":"z","a":[1,2]},"agent":"w1","clock":7,"encoding":"delta"}"#,
    r#"{"ts":"2026-11-24T10:42:12.138Z","op":"delete","id":"a\ud800","prev":{"n":1}}"#,
    "{\"version\":1,\"timestamp\":\"2026-11-24T10:42:12.136Z\"}\n{\"id\":\"a\",\"data\":{\"n\":1}}\n{\"id\":\"2\",\"data\":[]}\n",
    r#"{"version":3,"timestamp":"t","records":{"x":{"a":{"b":[null,true,-1.5e-7]}},"1":{}}}"#,
    "{\n  \"version\": 2,\n  \"timestamp\": \"t\",\n  \"records\": {\n    \"a\": {\n      \"n\": 1\n    }\n  }\n}",
    "{\n  \"version\": 1,\n  \"currentSnapshot\": \"snapshots/snap-1.jsonl\",\n  \"activeOps\": \"ops/ops-1.jsonl\",\n  \"archiveSegments\": [\n    \"archive/archive-2026-Q4.json\"\n  ],\n  \"stats\": {\n    \"activeRecords\": 0,\n    \"archivedRecords\": 0,\n    \"opsCount\": 0,\n    \"created\": \"T\",\n    \"lastCheckpoint\": \"T\"\n  },\n  \"activeAgentOps\": {\n    \"a\": \"ops/agent-a-1.jsonl\"\n  },\n  \"agentClocks\": {\n    \"a\": 3\n  }\n}",
    "{\n  \"version\": 1,\n  \"period\": \"2026-Q1\",\n  \"timestamp\": \"t\",\n  \"records\": {\n    \"b\": {\n      \"n\": 2\n    },\n    \"a\": {}\n  }\n}",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        4 => (any::<Index>(), select(TOKENS)).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
        3 => (any::<Index>(), 1usize..24).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1usize..32).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..6)
}

/// A position in `0..=len`.
fn at(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = bytes.len();
        match m {
            Mutation::FlipBit(i, b) if len > 0 => bytes[i.index(len)] ^= 1 << b,
            Mutation::SetByte(i, v) if len > 0 => bytes[i.index(len)] = *v,
            Mutation::FlipBit(..) | Mutation::SetByte(..) => {}
            Mutation::Insert(i, b) => {
                let p = at(i, len);
                bytes.splice(p..p, b.iter().copied());
            }
            Mutation::InsertToken(i, t) => {
                let p = at(i, len);
                bytes.splice(p..p, t.bytes());
            }
            Mutation::Delete(i, n) => {
                let p = at(i, len);
                bytes.drain(p..(p + n).min(len));
            }
            Mutation::Truncate(i) => bytes.truncate(at(i, len)),
            Mutation::Duplicate(i, n) => {
                let p = at(i, len);
                let chunk = bytes[p..(p + n).min(len)].to_vec();
                bytes.splice(p..p, chunk);
            }
            Mutation::Splice(a, b, source) => {
                let other = match source.index(SPLICE_SOURCES.len() + 1) {
                    i if i < SPLICE_SOURCES.len() => SPLICE_SOURCES[i].as_bytes().to_vec(),
                    _ => bytes.clone(),
                };
                bytes.truncate(at(a, len));
                bytes.extend_from_slice(&other[at(b, other.len())..]);
            }
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Target: the JSON canonicaliser
// ---------------------------------------------------------------------------------------------

/// Numbers equal up to the last bits (serde_json's float parser is not exact by default).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => close(x.as_f64().unwrap(), y.as_f64().unwrap()),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

fn check_json(input: &[u8]) {
    let text = lossy(input);
    let text = text.as_str();
    let valid = json::validate(text);
    let canonical = json::canonicalize(text);
    if let Err(e) = &valid {
        checks::message("validate", input, &e.0);
        assert!(canonical.is_err(), "canonicalize accepts invalid {text:?}");
    }
    // Whatever serde_json accepts is valid (the other way round it refuses lone surrogates and
    // numbers beyond f64, which JavaScript takes), short of the nesting limits.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        && canon_unless_deep(text).is_some()
    {
        assert!(valid.is_ok(), "valid JSON {text:?} refused");
    }
    // And what it refuses, this accepts only for what JavaScript takes and serde_json does not.
    if valid.is_ok() {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            let e = e.to_string();
            assert!(
                [
                    "surrogate",
                    "unicode code point",
                    "number out of range",
                    "recursion limit"
                ]
                .iter()
                .any(|why| e.contains(why)),
                "invalid JSON {text:?} accepted (serde_json: {e})"
            );
        }
    }
    check_push_checked(text, valid.is_ok());
    let _ = json::kind_of(text);
    let _ = json::utf16_len(text);
    let _ = json::object_members(text);
    let _ = json::array_elements(text);
    let _ = json::object_members_dedup(text);
    let _ = json::decode_string(text);
    // The scanners for text known to be valid: whatever the text, no panic; on valid text, the
    // same lengths as the checking scanners (followed by more text, as in an op line).
    let _ = (json::valid_value_len(text), json::valid_string_len(text));
    if valid.is_ok() {
        let line = format!("{text},\"x\":1}}");
        assert_eq!(
            json::valid_value_len(&line),
            json::value_token_len(&line),
            "{text:?}"
        );
        let trimmed = text.trim_start();
        if trimmed.starts_with('"') {
            let (len, escapes) = json::valid_string_len(trimmed).expect("a string");
            assert_eq!(Some(len), json::string_token_len(trimmed), "{text:?}");
            assert_eq!(escapes, trimmed[..len].contains('\\'), "{text:?}");
        }
    }
    match canonical {
        Err(e) => {
            checks::message("canonicalize", input, &e.0);
            if valid.is_ok() {
                assert!(
                    e.0.contains("nesting too deep"),
                    "valid JSON {text:?} not canonicalised: {e}"
                );
            }
        }
        Ok(c) => {
            let c: &str = &c;
            // The canonical form is a fixed point, recognised as such, and the fast path (input
            // already canonical) agrees with the rewrite (a leading space forces it).
            let again = json::canonicalize(c).expect("canonical text re-parses");
            assert_eq!(again, c, "canonicalize is not idempotent on {text:?}");
            assert!(
                matches!(again, Cow::Borrowed(_)),
                "canonical {c:?} not recognised as canonical"
            );
            if let Some(rewritten) = canon_unless_deep(&format!(" {text}")) {
                assert_eq!(rewritten, c, "fast and rewrite paths differ on {text:?}");
            }
            // The helpers used on values taken from a parsed line.
            let _ = json::js_string(c);
            match json::kind_of(c) {
                json::Kind::Object => {
                    let m = json::object_members_dedup(c).expect("members of an object");
                    let mut keys: Vec<&str> = m.iter().map(|m| m.key).collect();
                    let n = keys.len();
                    keys.sort_unstable();
                    keys.dedup();
                    assert_eq!(keys.len(), n, "duplicate keys survive in {c:?}");
                }
                json::Kind::Array => {
                    json::array_elements(c).expect("elements of an array");
                }
                json::Kind::String => {
                    json::decode_string(c).expect("decodes a string");
                }
                _ => {}
            }
            // Differential check against serde_json where it accepts the text (it refuses lone
            // surrogates and numbers beyond f64, which JavaScript takes).
            if let Ok(expected) = serde_json::from_str::<Value>(text) {
                let got: Value = serde_json::from_str(c)
                    .unwrap_or_else(|e| panic!("canonical {c:?} of {text:?} unparsable: {e}"));
                assert!(
                    same_value(&expected, &got),
                    "canonical {c:?} of {text:?} holds another value"
                );
            }
        }
    }
}

/// A record pushed unchecked into a batch is checked as it is shaped: the same verdict as
/// `json::validate`'s, and the same batch as checking it first.
fn check_push_checked(text: &str, valid: bool) {
    let id = "\"id\"";
    let mut checked = PairsBuilder::new(0);
    assert_eq!(
        checked.push_checked(id, text),
        valid,
        "push_checked on {text:?}"
    );
    if valid {
        let mut expected = PairsBuilder::new(0);
        expected.push(id, text);
        let got = checked.finish().expect("one record");
        let want = expected.finish().expect("one record");
        assert_eq!(
            (got.items, got.strings),
            (want.items, want.strings),
            "{text:?}"
        );
    }
}

/// Records as the engine writes them (no whitespace between top-level tokens: the ones shaped),
/// mutated or not.
#[test]
fn fuzz_record_shaping() {
    let compact = || {
        prop::collection::vec((object_key(), json_text()), 1..6)
            .prop_map(|members| render_object(members, ""))
    };
    let input = prop_oneof![
        1 => compact().prop_map(String::into_bytes),
        4 => (compact(), mutations()).prop_map(|(a, m)| mutate(a.into_bytes(), &m)),
        // A raw control character is the one flaw a string without escapes can have.
        2 => (compact(), any::<Index>(), 0u8..0x20).prop_map(|(a, i, c)| {
            let mut bytes = a.into_bytes();
            bytes.insert(at(&i, bytes.len()), c);
            bytes
        }),
    ];
    fuzz("json/record-shaping", input, |input: Vec<u8>| {
        let text = lossy(&input);
        check_push_checked(&text, json::validate(&text).is_ok());
        Ok(())
    });
}

#[test]
fn fuzz_json_arbitrary() {
    fuzz("json/arbitrary", arbitrary_bytes(), |input| {
        check_json(&input);
        Ok(())
    });
}

#[test]
fn fuzz_json_structured() {
    let input = prop_oneof![
        4 => json_text().prop_map(String::into_bytes),
        1 => deep_json().prop_map(String::into_bytes),
        4 => (json_text(), mutations()).prop_map(|(a, m)| mutate(a.into_bytes(), &m)),
        1 => any::<u64>().prop_map(|bits| {
            let x = f64::from_bits(bits);
            // Number formatting reads back exactly, as JavaScript's does.
            let s = json::format_number(x);
            if x.is_finite() {
                assert_eq!(s.parse::<f64>().unwrap(), x, "{x:e} formats as {s}");
            } else {
                assert_eq!(s, "null");
            }
            s.into_bytes()
        }),
    ];
    fuzz("json/structured", input, |input| {
        check_json(&input);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Target: op lines and op files
// ---------------------------------------------------------------------------------------------

fn iso_ts() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0i64..253_402_300_800_000).prop_map(engine::time::iso_from_ms),
        1 => prop::collection::vec(
            // Plain: nothing `json::quote` would escape.
            text_char().prop_map(|c| match c {
                '"' | '\\' | '\0'..='\u{1f}' => 'x',
                c => c,
            }),
            1..12
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn id_token() -> impl Strategy<Value = String> {
    string_token().prop_map(|t| {
        let c = canon(&t);
        if c == "\"\"" {
            "\"x\"".into()
        } else {
            c
        }
    })
}

fn agent_name() -> impl Strategy<Value = String> {
    prop::collection::vec(text_char(), 1..10).prop_map(|cs| cs.into_iter().collect())
}

/// Counters stay within JavaScript's safe integers: beyond 2^53 neither implementation keeps
/// them exactly.
fn safe_u64() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..1000, 1 => 0u64..=(1 << 53)]
}

/// A valid op, as the store would build it.
fn valid_op() -> impl Strategy<Value = Op> {
    (
        iso_ts(),
        any::<bool>(),
        id_token(),
        prop::option::of(json_object_text()),
        prop_oneof![4 => json_object_text(), 1 => json_text()],
        any::<bool>(),
        prop::option::of(agent_name()),
        prop::option::of(safe_u64()),
    )
        .prop_map(|(ts, set, id, prev, data, delta, agent, clock)| {
            let prev = prev.map(|p| canon(&p));
            let (kind, prev, data) = if set {
                let mut data = canon(&data);
                if data == "null" {
                    data = "{}".into();
                }
                (OpKind::Set, prev, Some(data))
            } else {
                let prev = prev.unwrap_or_else(|| "{}".into());
                (OpKind::Delete, Some(prev), None)
            };
            Op {
                ts: ts.into(),
                kind,
                id,
                prev,
                data,
                delta,
                agent,
                clock,
            }
        })
}

/// An op-shaped object whose members come from pools of right and wrong values, in any order,
/// with duplicates and escaped key spellings: reaches every validation branch.
fn op_like_object() -> impl Strategy<Value = String> {
    #[rustfmt::skip]
    const KEYS: &[&str] = &[
        "\"ts\"", "\"op\"", "\"id\"", "\"prev\"", "\"data\"", "\"encoding\"", "\"agent\"",
        "\"clock\"", "\"\\u0074s\"", "\"o\\u0070\"", "\"x\"",
    ];
    #[rustfmt::skip]
    const VALUES: &[&str] = &[
        "\"t\"", "\"\"", "\"set\"", "\"delete\"", "\"s\\u0065t\"", "\"delta\"", "\"full\"",
        "\"a\"", "null", "{}", "{\"a\":1}", "[]", "[1,\"a\",null]", "0", "1", "-1", "1.5", "1e3",
        "1E400", "18446744073709551615", "18446744073709551616", "9007199254740993", "true",
        "\"\\ud800\"",
    ];
    let value = prop_oneof![
        6 => select(VALUES).prop_map(str::to_string),
        1 => json_text(),
    ];
    prop::collection::vec((select(KEYS), value), 0..10).prop_map(|members| {
        let items: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", items.join(","))
    })
}

/// The members of a valid op with members of an op-like object mixed in.
fn op_with_members() -> impl Strategy<Value = String> {
    (valid_op(), op_like_object(), any::<Index>()).prop_map(|(op, noise, at)| {
        let line = op.encode();
        let members = json::object_members(&line).unwrap();
        let extra = json::object_members(&noise).unwrap();
        let mut items: Vec<String> = members
            .iter()
            .map(|m| format!("{}:{}", m.key, m.value))
            .collect();
        let p = at.index(items.len() + 1);
        items.splice(p..p, extra.iter().map(|m| format!("{}:{}", m.key, m.value)));
        format!("{{{}}}", items.join(","))
    })
}

/// Plain means `encode` can write it back: it writes `ts` between quotes unescaped, which holds
/// for every timestamp the store makes.
fn plain_ts(ts: &str) -> bool {
    json::quote(ts) == format!("\"{ts}\"")
}

fn check_op_line(input: &[u8]) {
    let text = lossy(input);
    match Op::parse(&text) {
        Err(e) => checks::message("Op::parse", input, &e),
        Ok(op) => {
            assert!(!op.ts.is_empty());
            assert_eq!(json::kind_of(&op.id), json::Kind::String);
            assert_ne!(op.id, "\"\"");
            assert_eq!(canon(&op.id), op.id, "id not canonical");
            if let Some(p) = &op.prev {
                assert_eq!(json::kind_of(p), json::Kind::Object);
                assert_eq!(&canon(p), p, "prev not canonical");
            }
            if let Some(d) = &op.data {
                assert_eq!(&canon(d), d, "data not canonical");
            }
            match op.kind {
                // Non-null as written: a number beyond f64 (`1e400`) passes, as in the reference
                // (Infinity), and its canonical form is `null`, as JSON.stringify writes it.
                OpKind::Set => assert!(op.data.is_some()),
                OpKind::Delete => assert!(op.prev.is_some() && op.data.is_none()),
            }
            assert!(op.agent.as_deref() != Some(""));
            // In a `getWalOps` batch (twice, the second time with the same ts), the line comes
            // back as the same value, whichever way the batch carries it.
            let mut batch = OpsBuilder::new(2);
            batch.push(&text);
            batch.push(&text);
            let back = batch.finish().expect("two ops").ops_text();
            if let Some(expected) = canon_unless_deep(&format!("[{text},{text}]")) {
                assert_eq!(canon(&back), expected, "op {text:?} in a batch");
            }
            // Re-encoding is meaningful for what the store writes: ts as it makes them, data
            // that is not `null` (see above).
            if plain_ts(&op.ts) && op.data.as_deref() != Some("null") {
                let line = op.encode();
                let again = Op::parse(&line).unwrap_or_else(|e| {
                    panic!("re-encoded op {line:?} of {text:?} does not parse: {e}")
                });
                assert_eq!(again, op, "op {text:?} does not survive encode/parse");
            }
        }
    }
    // The same line in an op file, when it is one line.
    if !input.contains(&b'\n') {
        let mut file = input.to_vec();
        file.push(b'\n');
        let r = wal::parse_lines(&file, 0);
        let trimmed = text.trim();
        let parsed = Op::parse(trimmed);
        assert_eq!(r.ops.len(), usize::from(parsed.is_ok()));
        assert_eq!(
            r.skipped,
            usize::from(parsed.is_err() && !trimmed.is_empty())
        );
        assert!(!r.torn && !r.missing_newline);
        assert_eq!(r.complete_len, file.len() as u64);
    }
}

#[test]
fn fuzz_op_line_arbitrary() {
    let input = prop_oneof![
        3 => arbitrary_bytes(),
        2 => op_like_object().prop_map(String::into_bytes),
    ];
    fuzz("op-line/arbitrary", input, |input| {
        check_op_line(&input);
        Ok(())
    });
}

#[test]
fn fuzz_op_line_structured() {
    #[derive(Debug, Clone)]
    enum Case {
        /// A valid op: must round-trip exactly.
        Valid(Op),
        Bytes(Vec<u8>),
    }
    let input = prop_oneof![
        1 => valid_op().prop_map(Case::Valid),
        2 => op_with_members().prop_map(|s| Case::Bytes(s.into_bytes())),
        5 => (valid_op(), mutations())
            .prop_map(|(op, m)| Case::Bytes(mutate(op.encode().into_bytes(), &m))),
    ];
    fuzz("op-line/structured", input, |case| {
        match case {
            Case::Valid(op) => {
                let line = op.encode();
                let parsed = Op::parse(&line)
                    .unwrap_or_else(|e| panic!("encoded op {line:?} rejected: {e}"));
                assert_eq!(parsed, op, "op does not round-trip through {line:?}");
                assert_eq!(parsed.encode(), line);
                check_op_line(line.as_bytes());
            }
            Case::Bytes(b) => check_op_line(&b),
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum Line {
    /// A valid op, with whitespace before and after its JSON.
    Op(Op, &'static str, &'static str),
    /// Never valid JSON: starts with `x`.
    Garbage(String),
    Blank(&'static str),
}

fn op_file_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        6 => (
            valid_op(),
            select(&["", "", "", " ", "\t"][..]),
            select(&["", "", "", "\r", " "][..]),
        )
            .prop_map(|(op, pre, post)| Line::Op(op, pre, post)),
        2 => soup().prop_map(|s| Line::Garbage(format!("x{}", s.replace('\n', "")))),
        1 => select(&["", " ", "\t", "\r", " \r"][..]).prop_map(Line::Blank),
    ]
}

/// Op files laid out from known lines, cut anywhere (a torn write), against a model of what
/// reading them must give.
#[test]
fn fuzz_op_file_structured() {
    let dir = scratch("opfile");
    let path = dir.join("ops.jsonl");
    let input = (
        prop::collection::vec(op_file_line(), 0..8),
        any::<bool>(),
        prop::option::of(any::<Index>()),
        0u64..1 << 40,
    );
    fuzz(
        "op-file/structured",
        input,
        |(lines, trailing, cut, base)| {
            let mut bytes = Vec::new();
            let mut spans = Vec::new(); // (line start, JSON start, JSON end, line end)
            for (i, line) in lines.iter().enumerate() {
                let start = bytes.len();
                let (json_start, json_end);
                match line {
                    Line::Op(op, pre, post) => {
                        bytes.extend_from_slice(pre.as_bytes());
                        json_start = bytes.len();
                        bytes.extend_from_slice(op.encode().as_bytes());
                        json_end = bytes.len();
                        bytes.extend_from_slice(post.as_bytes());
                    }
                    Line::Garbage(g) => {
                        json_start = bytes.len();
                        bytes.extend_from_slice(g.as_bytes());
                        json_end = bytes.len();
                    }
                    Line::Blank(b) => {
                        bytes.extend_from_slice(b.as_bytes());
                        json_start = bytes.len();
                        json_end = json_start;
                    }
                }
                spans.push((start, json_start, json_end, bytes.len()));
                if trailing || i + 1 < lines.len() {
                    bytes.push(b'\n');
                }
            }
            let cut_at = cut.map_or(bytes.len(), |c| at(&c, bytes.len()));
            let bytes = &bytes[..cut_at];

            // The model: complete lines are ops or skipped; a last line without its newline is an
            // op if its JSON is whole, torn if it holds anything else.
            let mut ops = Vec::new();
            let (mut skipped, mut torn, mut missing_newline) = (0, false, false);
            let mut complete_len = 0;
            for (line, &(start, js, je, end)) in lines.iter().zip(&spans) {
                if start > cut_at || (start == cut_at && start > 0) {
                    break;
                }
                let complete = end < cut_at;
                if complete {
                    complete_len = end + 1;
                }
                let whole_json = cut_at >= je;
                let partial_nonblank = cut_at > js && je > js;
                match line {
                    Line::Op(op, ..) if complete || whole_json => {
                        ops.push((base + start as u64, op.clone()));
                        if !complete {
                            missing_newline = true;
                            complete_len = cut_at;
                        }
                    }
                    Line::Op(..) | Line::Garbage(_) if complete => skipped += 1,
                    Line::Op(..) | Line::Garbage(_) => torn = partial_nonblank,
                    Line::Blank(_) => {}
                }
            }
            let r = checks::op_file(bytes, base, None);
            let got: Vec<(u64, Op)> = r.ops.iter().map(|l| (l.pos, l.op.clone())).collect();
            assert_eq!(got, ops, "ops of {:?}", lossy(bytes));
            assert_eq!(r.skipped, skipped, "skipped in {:?}", lossy(bytes));
            assert_eq!(r.torn, torn, "torn in {:?}", lossy(bytes));
            assert_eq!(r.missing_newline, missing_newline);
            assert_eq!(r.complete_len, base + complete_len as u64);
            // The same file read back from disk, line by line.
            checks::op_file(bytes, 0, Some(&path));
            Ok(())
        },
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fuzz_op_file_arbitrary() {
    let dir = scratch("opfile-arb");
    let path = dir.join("ops.jsonl");
    let mutated_file = (
        prop::collection::vec(valid_op().prop_map(|o| o.encode()), 1..5),
        mutations(),
    )
        .prop_map(|(lines, m)| mutate((lines.join("\n") + "\n").into_bytes(), &m));
    let input = (
        prop_oneof![
            2 => arbitrary_bytes(),
            1 => prop::collection::vec(arbitrary_bytes(), 0..5).prop_map(|ls| ls.join(&b'\n')),
            3 => mutated_file,
        ],
        0u64..1 << 40,
    );
    fuzz("op-file/arbitrary", input, |(bytes, base)| {
        let at_base = checks::op_file(&bytes, base, None);
        let at_zero = checks::op_file(&bytes, 0, Some(&path));
        assert_eq!(at_base.ops.len(), at_zero.ops.len());
        assert_eq!(at_base.skipped, at_zero.skipped);
        assert_eq!(at_base.torn, at_zero.torn);
        assert_eq!(at_base.complete_len, at_zero.complete_len + base);
        Ok(())
    });
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Target: snapshots
// ---------------------------------------------------------------------------------------------

/// `Object.entries` order: array-index keys first, ascending, then the rest as inserted.
fn js_order(mut entries: Vec<(String, String)>) -> Vec<(String, String)> {
    let index = |k: &str| -> Option<u64> {
        let inner = k.strip_prefix('"')?.strip_suffix('"')?;
        let ok = !inner.is_empty()
            && inner.len() <= 10
            && inner.bytes().all(|b| b.is_ascii_digit())
            && (inner == "0" || !inner.starts_with('0'));
        let v: u64 = inner.parse().ok().filter(|_| ok)?;
        (v < u64::from(u32::MAX)).then_some(v)
    };
    entries.sort_by_key(|(k, _)| index(k).map_or((1, 0), |i| (0, i)));
    entries
}

/// Last value wins, at the first occurrence's place (`Map.set`, `JSON.parse`).
fn dedup(entries: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in entries {
        match out.iter_mut().find(|(x, _)| x == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum SnapForm {
    Jsonl,
    LegacyLine,
    LegacyPretty,
}

#[derive(Debug, Clone)]
struct ValidSnapshot {
    form: SnapForm,
    version: f64,
    timestamp: String,
    records: Vec<(String, String)>,
}

impl ValidSnapshot {
    fn encode(&self) -> Vec<u8> {
        match self.form {
            SnapForm::Jsonl => {
                let mut out = snapshot::header(self.version, &self.timestamp).into_bytes();
                out.push(b'\n');
                for (id, data) in &self.records {
                    record_line::encode(id, data, &mut out);
                }
                out
            }
            SnapForm::LegacyLine | SnapForm::LegacyPretty => {
                let records: Vec<String> = self
                    .records
                    .iter()
                    .map(|(id, data)| format!("{id}:{data}"))
                    .collect();
                let compact = format!(
                    "{{\"version\":{},\"timestamp\":{},\"records\":{{{}}}}}",
                    json::format_number(self.version),
                    json::quote(&self.timestamp),
                    records.join(",")
                );
                if matches!(self.form, SnapForm::LegacyLine) {
                    compact.into_bytes()
                } else {
                    let mut pretty = String::new();
                    archive::pretty(&compact, 0, &mut pretty);
                    pretty.into_bytes()
                }
            }
        }
    }

    /// What the reference's `loadSnapshot` gives: `Map` semantics for JSONL lines,
    /// `new Map(Object.entries(records))` for the legacy forms.
    fn expected(&self) -> Vec<(String, String)> {
        match self.form {
            SnapForm::Jsonl => dedup(&self.records),
            _ => js_order(dedup(&self.records)),
        }
    }
}

fn valid_snapshot() -> impl Strategy<Value = ValidSnapshot> {
    (
        select(
            &[
                SnapForm::Jsonl,
                SnapForm::LegacyLine,
                SnapForm::LegacyPretty,
            ][..],
        ),
        prop_oneof![4 => 1u32..10, 1 => any::<u32>().prop_map(|v| v.max(1))],
        iso_ts(),
        prop::collection::vec(
            (
                prop_oneof![
                    3 => id_token(),
                    1 => select(&["\"1\"", "\"2\"", "\"10\"", "\"01\"", "\"a\""][..])
                        .prop_map(str::to_string),
                ],
                prop_oneof![4 => json_object_text(), 1 => json_text()].prop_map(|t| canon(&t)),
            ),
            0..8,
        ),
    )
        .prop_map(|(form, version, timestamp, records)| ValidSnapshot {
            form,
            version: f64::from(version),
            timestamp,
            records,
        })
}

struct SnapshotFiles {
    dir: PathBuf,
}

impl SnapshotFiles {
    /// See `checks::snapshot`.
    fn check(&self, bytes: &[u8], batch: usize) -> checks::Loaded {
        checks::snapshot(&self.dir, bytes, batch)
    }
}

#[test]
fn fuzz_snapshot_arbitrary() {
    let files = SnapshotFiles {
        dir: scratch("snap-arb"),
    };
    let input = prop_oneof![
        3 => arbitrary_bytes(),
        // A valid header over arbitrary lines: reaches the record-line parser.
        2 => (iso_ts(), 1u32..10, prop::collection::vec(soup(), 0..4)).prop_map(
            |(ts, version, lines)| {
                let mut b = snapshot::header(f64::from(version), &ts).into_bytes();
                for l in lines {
                    b.push(b'\n');
                    b.extend_from_slice(l.as_bytes());
                }
                b
            }
        ),
    ];
    fuzz(
        "snapshot/arbitrary",
        (input, 1usize..5),
        |(bytes, batch)| {
            let _ = files.check(&bytes, batch);
            Ok(())
        },
    );
    let _ = std::fs::remove_dir_all(&files.dir);
}

#[test]
fn fuzz_snapshot_structured() {
    let files = SnapshotFiles {
        dir: scratch("snap-struct"),
    };
    let input = (
        valid_snapshot(),
        prop::option::weighted(0.8, mutations()),
        1usize..5,
    );
    fuzz("snapshot/structured", input, |(snap, muts, batch)| {
        let bytes = snap.encode();
        match muts {
            None => {
                let (records, version) = files
                    .check(&bytes, batch)
                    .unwrap_or_else(|e| panic!("valid snapshot rejected: {e}"));
                assert_eq!(version, snap.version);
                assert_eq!(records, snap.expected(), "{:?}", lossy(&bytes));
            }
            Some(m) => {
                let _ = files.check(&mutate(bytes, &m), batch);
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&files.dir);
}

// ---------------------------------------------------------------------------------------------
// Target: manifests
// ---------------------------------------------------------------------------------------------

fn check_manifest(input: &[u8]) {
    let text = lossy(input);
    match Manifest::parse(&text) {
        Err(e) => checks::message("Manifest::parse", input, &e),
        Ok(m) => {
            let encoded = m.encode();
            let again = Manifest::parse(&encoded)
                .unwrap_or_else(|e| panic!("re-encoded manifest {encoded:?} rejected: {e}"));
            assert_eq!(again, m, "manifest {text:?} does not survive encode/parse");
            assert_eq!(again.encode(), encoded);
            // `JSON.stringify(value, null, 2)` is what serde_json's pretty printer writes too.
            let value: Value = serde_json::from_str(&encoded).unwrap();
            assert_eq!(serde_json::to_string_pretty(&value).unwrap(), encoded);
            let info: Value = serde_json::from_str(&m.info_json())
                .unwrap_or_else(|e| panic!("info_json of {text:?} is not JSON: {e}"));
            assert!(info.is_object());
        }
    }
}

fn unique_by_key<T: Clone>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut out: Vec<(String, T)> = Vec::new();
    for (k, v) in items {
        if !out.iter().any(|(x, _)| *x == k) {
            out.push((k, v));
        }
    }
    out
}

fn non_empty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(text_char(), 1..16).prop_map(|cs| cs.into_iter().collect()),
        1 => iso_ts(),
        1 => Just("snapshots/snap-1700000000000.jsonl".to_string()),
    ]
}

fn valid_manifest() -> impl Strategy<Value = Manifest> {
    (
        (
            1u64..=(1 << 53),
            non_empty_text(),
            non_empty_text(),
            prop::collection::vec(non_empty_text(), 0..4),
        ),
        (
            safe_u64(),
            safe_u64(),
            safe_u64(),
            non_empty_text(),
            non_empty_text(),
        ),
        prop::option::of(prop::collection::vec(
            (agent_name(), non_empty_text()),
            0..4,
        )),
        prop::option::of(prop::collection::vec((agent_name(), safe_u64()), 0..4)),
        prop::option::of(safe_u64()),
    )
        .prop_map(
            |((version, snap, ops, segs), stats, agents, clocks, snapshot_clock)| Manifest {
                version,
                current_snapshot: snap,
                active_ops: ops,
                archive_segments: segs,
                stats: Stats {
                    active_records: stats.0,
                    archived_records: stats.1,
                    ops_count: stats.2,
                    created: stats.3,
                    last_checkpoint: stats.4,
                },
                active_agent_ops: agents.map(unique_by_key),
                agent_clocks: clocks.map(unique_by_key),
                snapshot_clock,
            },
        )
}

/// A valid manifest's members followed by members from pools of right and wrong values (the
/// later ones win, as in JSON.parse).
fn manifest_like_object() -> impl Strategy<Value = String> {
    #[rustfmt::skip]
    const VALUES: &[&str] = &[
        "1", "0", "-1", "1.5", "1e3", "1e400", "18446744073709551616", "null", "\"\"", "\"s\"",
        "[]", "[\"a\"]", "[\"\"]", "[1]", "{}", "{\"a\":\"p\"}", "{\"a\":\"\"}", "{\"a\":1}",
        "{\"a\":-1}", "{\"a\":1.5}", "true",
        "{\"activeRecords\":0,\"archivedRecords\":0,\"opsCount\":0,\"created\":\"c\",\"lastCheckpoint\":\"l\"}",
        "{\"activeRecords\":1.5,\"archivedRecords\":0,\"opsCount\":0,\"created\":\"c\",\"lastCheckpoint\":\"\"}",
    ];
    #[rustfmt::skip]
    const KEYS: &[&str] = &[
        "\"version\"", "\"currentSnapshot\"", "\"activeOps\"", "\"archiveSegments\"", "\"stats\"",
        "\"activeAgentOps\"", "\"agentClocks\"", "\"x\"", "\"\\u0076ersion\"",
    ];
    let value = prop_oneof![
        4 => select(VALUES).prop_map(str::to_string),
        1 => json_text(),
    ];
    (
        valid_manifest(),
        prop::collection::vec((select(KEYS), value), 0..4),
    )
        .prop_map(|(m, extra)| {
            let members: Vec<String> = json::object_members(&m.encode())
                .unwrap()
                .iter()
                .map(|m| format!("{}:{}", m.key, m.value))
                .chain(extra.into_iter().map(|(k, v)| format!("{k}:{v}")))
                .collect();
            format!("{{{}}}", members.join(","))
        })
}

#[test]
fn fuzz_manifest_arbitrary() {
    let input = prop_oneof![
        3 => arbitrary_bytes(),
        2 => manifest_like_object().prop_map(String::into_bytes),
    ];
    fuzz("manifest/arbitrary", input, |input| {
        check_manifest(&input);
        Ok(())
    });
}

#[test]
fn fuzz_manifest_structured() {
    let input = (valid_manifest(), prop::option::weighted(0.8, mutations()));
    fuzz("manifest/structured", input, |(m, muts)| {
        let text = m.encode();
        let parsed =
            Manifest::parse(&text).unwrap_or_else(|e| panic!("valid manifest {text:?}: {e}"));
        assert_eq!(parsed, m, "manifest does not round-trip through {text:?}");
        match muts {
            None => check_manifest(text.as_bytes()),
            Some(muts) => check_manifest(&mutate(text.into_bytes(), &muts)),
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Target: archive segments (the format written with `pretty`)
// ---------------------------------------------------------------------------------------------

fn check_archive(input: &[u8]) -> Option<Vec<(String, String)>> {
    let text = lossy(input);
    let valid = archive::validate(&text);
    if let Err(e) = &valid {
        checks::message("archive::validate", input, e);
    }
    match archive::parse(&text) {
        Err(e) => {
            let e = e.to_string();
            checks::message("archive::parse", input, &e);
            if valid.is_ok() {
                assert!(e.contains("nesting too deep"), "{e}");
            }
            None
        }
        Ok(records) => {
            assert!(valid.is_ok());
            for (id, data) in &records {
                assert_eq!(json::kind_of(id), json::Kind::String);
                assert_eq!(&canon(id), id);
                assert_eq!(&canon(data), data);
                // The writer's indentation reads back as the same record.
                let mut pretty = String::new();
                archive::pretty(data, 2, &mut pretty);
                if let Some(back) = canon_unless_deep(&pretty) {
                    assert_eq!(&back, data, "pretty({data:?}) = {pretty:?}");
                }
            }
            Some(records)
        }
    }
}

/// A segment as `archive::write` lays it out (ids in any order, duplicates allowed), with the
/// records the reference's `loadArchiveSegment` gives for it.
fn valid_segment() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    (
        non_empty_text(),
        iso_ts(),
        prop::collection::vec(
            (
                id_token(),
                prop_oneof![4 => json_object_text(), 1 => json_text()].prop_map(|t| canon(&t)),
            ),
            0..6,
        ),
    )
        .prop_map(|(period, ts, records)| {
            let members: Vec<String> = records.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            let compact = format!(
                "{{\"version\":1,\"period\":{},\"timestamp\":{},\"records\":{{{}}}}}",
                json::quote(&period),
                json::quote(&ts),
                members.join(",")
            );
            let mut text = String::new();
            archive::pretty(&compact, 0, &mut text);
            (text, js_order(dedup(&records)))
        })
}

#[test]
fn fuzz_archive_arbitrary() {
    fuzz("archive/arbitrary", arbitrary_bytes(), |input| {
        check_archive(&input);
        Ok(())
    });
}

#[test]
fn fuzz_archive_structured() {
    let input = (valid_segment(), prop::option::weighted(0.8, mutations()));
    fuzz("archive/structured", input, |((text, expected), muts)| {
        match muts {
            None => {
                let records = check_archive(text.as_bytes())
                    .unwrap_or_else(|| panic!("valid segment rejected: {text:?}"));
                assert_eq!(records, expected, "{text:?}");
            }
            Some(m) => {
                check_archive(&mutate(text.into_bytes(), &m));
            }
        }
        Ok(())
    });
}
