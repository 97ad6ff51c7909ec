//! The engine's one error type. Every variant's message is what the JavaScript user sees.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// An I/O failure, with the path it concerned.
    Io { path: String, source: io::Error },
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

impl Error {
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
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
            Error::Io { path, source } => {
                let code = match source.kind() {
                    io::ErrorKind::NotFound => "ENOENT: no such file or directory",
                    io::ErrorKind::PermissionDenied => "EACCES: permission denied",
                    io::ErrorKind::AlreadyExists => "EEXIST: file already exists",
                    _ => return write!(f, "{source}, '{path}'"),
                };
                write!(f, "{code}, '{path}'")
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
