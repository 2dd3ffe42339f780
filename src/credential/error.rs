//! [`CredentialError`]: a credential file that could not be used, named by its path.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What was wrong with a credential file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialErrorKind {
    /// The file could not be read: missing, not allowed, a directory. Platforms replace these
    /// files, so it may be there at the next try.
    Unreadable,
    /// The file holds nothing but whitespace.
    Empty,
    /// The file is larger than 64 KiB, far more than any secret or token.
    TooLarge,
    /// The client assertion is not a JWT whose claims can be read.
    NotAJwt,
    /// The client assertion has expired, and reading the file again did not bring a newer one.
    Expired,
}

/// A credential file could not be used: the [kind](Self::kind) of problem and the
/// [path](Self::path). Its `Display` never shows the file's content.
///
/// Reaches you as the source of a [`TokenError`](crate::TokenError) of kind
/// [`Credential`](crate::TokenErrorKind::Credential):
///
/// ```
/// use std::error::Error;
/// use tower_client_credentials::credential::CredentialError;
/// use tower_client_credentials::TokenError;
///
/// fn the_file(error: &TokenError) -> Option<&std::path::Path> {
///     let credential = error.source()?.downcast_ref::<CredentialError>()?;
///     Some(credential.path())
/// }
/// ```
#[derive(Debug)]
pub struct CredentialError {
    kind: CredentialErrorKind,
    path: PathBuf,
    expired_at: Option<SystemTime>,
    source: Option<io::Error>,
}

impl CredentialError {
    pub(crate) fn new(kind: CredentialErrorKind, path: &Path) -> Self {
        Self { kind, path: path.to_owned(), expired_at: None, source: None }
    }

    pub(crate) fn unreadable(path: &Path, source: io::Error) -> Self {
        Self { source: Some(source), ..Self::new(CredentialErrorKind::Unreadable, path) }
    }

    pub(crate) fn expired(path: &Path, at: SystemTime) -> Self {
        Self { expired_at: Some(at), ..Self::new(CredentialErrorKind::Expired, path) }
    }

    /// What was wrong.
    pub fn kind(&self) -> CredentialErrorKind {
        self.kind
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the client assertion expired, for [`CredentialErrorKind::Expired`].
    pub fn expired_at(&self) -> Option<SystemTime> {
        self.expired_at
    }
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.kind {
            CredentialErrorKind::Unreadable => write!(f, "cannot read {path}")?,
            CredentialErrorKind::Empty => write!(f, "{path} is empty")?,
            CredentialErrorKind::TooLarge => write!(f, "{path} is larger than 64 KiB")?,
            CredentialErrorKind::NotAJwt => {
                write!(f, "{path} does not hold a JWT whose claims can be read")?
            }
            CredentialErrorKind::Expired => {
                write!(f, "the client assertion in {path} has expired")?;
                if let Some(at) = self.expired_at {
                    write!(f, " (at {})", httpdate::fmt_http_date(at))?;
                }
            }
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl Error for CredentialError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}
