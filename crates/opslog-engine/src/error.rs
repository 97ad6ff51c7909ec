//! The engine's one error type. Every variant's message is what the JavaScript user sees.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// A failed operating-system call: the call (Node's name for it: `open`, `write`, ...), the
    /// path it concerned (and, for `rename`, the destination) and the OS error itself. The
    /// binding gives it Node's shape (`code`, `errno`, `syscall`, `path`, message).
    Io {
        syscall: &'static str,
        path: String,
        dest: Option<String>,
        source: io::Error,
    },
    /// Another live process holds the store's `.lock`.
    Locked { pid: i64, lock_path: String },
    /// A file's content is not what the format requires.
    Corrupt(String),
    /// The caller asked for something that cannot be done (message as the reference words it).
    Invalid(String),
    /// Bad arguments: surfaces as a JavaScript `TypeError`.
    Type(String),
    /// `delete` of an id that is not in the store.
    NotFound(String),
    /// A storage backend implemented in JavaScript failed; the message is its error's.
    Backend(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A call on a store that is not open, or no longer (the reference's words).
pub const NOT_OPEN: &str = "Store is not open. Call open() first.";

impl Error {
    pub fn not_open() -> Self {
        Error::Invalid(NOT_OPEN.into())
    }

    /// The manifest vanished between an agent's reads of it.
    pub fn manifest_gone_on_refresh() -> Self {
        Error::Invalid("Manifest not found during refresh".into())
    }

    pub fn io(syscall: &'static str, path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            syscall,
            path: path.into(),
            dest: None,
            source,
        }
    }

    /// A failed `rename(from, to)`; Node names both paths.
    pub fn rename(from: impl Into<String>, to: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            syscall: "rename",
            path: from.into(),
            dest: Some(to.into()),
            source,
        }
    }

    /// The same failure, its path shown as `shown` (the caller knows how the user named it).
    pub fn shown_as(self, shown: &str) -> Self {
        match self {
            Error::Io {
                syscall,
                source,
                dest: None,
                ..
            } => Error::io(syscall, shown, source),
            other => other,
        }
    }

    /// A format error of the file shown as `shown`, named in its message (once).
    pub fn in_file(self, shown: &str) -> Self {
        match self {
            Error::Corrupt(m) if !m.contains(shown) => Error::Corrupt(format!("{m} ({shown})")),
            other => other,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The engine's own wording; JavaScript sees Node's (lib/errors.js).
            Error::Io {
                syscall,
                path,
                dest,
                source,
            } => {
                write!(f, "{source}, {syscall} '{path}'")?;
                match dest {
                    Some(dest) => write!(f, " -> '{dest}'"),
                    None => Ok(()),
                }
            }
            Error::Locked { pid, lock_path } => {
                write!(
                    f,
                    "Store is locked by process {pid}. If this is stale, delete {lock_path}"
                )
            }
            Error::Corrupt(m)
            | Error::Invalid(m)
            | Error::Type(m)
            | Error::NotFound(m)
            | Error::Backend(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Joins a directory and a relative path the way Node's `path.join` shows it for a
/// directory string that is already normalised.
pub fn display_join(dir: &str, rel: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}
