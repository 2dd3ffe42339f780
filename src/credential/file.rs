//! Credentials kept in files that the platform replaces.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{CredentialError, CredentialErrorKind, CredentialFuture, CredentialSource};

/// A secret file is read again after this long, whatever else happens.
const REREAD_SECRET_AFTER: Duration = Duration::from_secs(60);

/// A client secret in a file, such as a Kubernetes secret mounted as a volume: read at `build()`,
/// read again when the file changes (a `stat` per token request tells), at least once a minute,
/// and at once when the token endpoint rejects the client.
///
/// Its content, trimmed, is the secret. If the file cannot be read later on (mid-rotation, say),
/// the last secret read keeps being used. Usually made by
/// [`ConfigBuilder::client_secret_file`](crate::ConfigBuilder::client_secret_file).
///
/// ```
/// use tower_client_credentials::credential::SecretFile;
///
/// let source = SecretFile::new("/var/run/secrets/orders/client-secret");
/// assert!(format!("{source:?}").contains("client-secret"));
/// ```
#[derive(Debug)]
pub struct SecretFile {
    path: PathBuf,
    /// The last secret read, when, and the file's version then.
    last: Mutex<Option<(SecretString, Instant, u64)>>,
}

impl SecretFile {
    /// A source reading `path`; nothing is read until the first request for the secret.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), last: Mutex::new(None) }
    }

    /// Reads the file now, keeping what it read.
    pub(crate) fn read(&self) -> Result<SecretString, CredentialError> {
        let version = file_version(&self.path).unwrap_or(0);
        let secret = read_trimmed(&self.path)?;
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = Some((secret.clone(), Instant::now(), version));
        Ok(secret)
    }

    fn current(&self, fresh: bool) -> Result<SecretString, CredentialError> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match last {
            Some((secret, read_at, version))
                if !fresh
                    && read_at.elapsed() < REREAD_SECRET_AFTER
                    && Some(version) == file_version(&self.path) =>
            {
                Ok(secret)
            }
            Some((secret, ..)) => self.read().or_else(|error| {
                tracing::warn!(%error, "keeping the client secret read before");
                Ok(secret)
            }),
            None => self.read(),
        }
    }
}

impl CredentialSource for SecretFile {
    fn credential(&self, fresh: bool) -> CredentialFuture<'_> {
        let secret = self.current(fresh).map_err(Into::into);
        Box::pin(std::future::ready(secret))
    }

    fn version(&self) -> Option<u64> {
        file_version(&self.path).or(Some(0))
    }
}

/// A client assertion in a file that the platform rotates: the service-account token of
/// Microsoft Entra workload identity (`AZURE_FEDERATED_TOKEN_FILE`), a SPIFFE JWT-SVID.
///
/// Read for every token request, so a rotated file is used at the next one. Before the
/// assertion is sent, its `exp` is read (the server checks the signature): if it has expired,
/// the file is read once more, and if it is still expired the token request fails with a
/// [`CredentialError`] of kind [`Expired`](CredentialErrorKind::Expired) naming the path and the
/// expiry, rather than with the server's `invalid_client`. Usually made by
/// [`ConfigBuilder::client_assertion_file`](crate::ConfigBuilder::client_assertion_file).
///
/// ```
/// use tower_client_credentials::credential::AssertionFile;
///
/// let source = AssertionFile::new("/var/run/secrets/azure/tokens/azure-identity-token");
/// assert!(format!("{source:?}").contains("azure-identity-token"));
/// ```
#[derive(Debug)]
pub struct AssertionFile {
    path: PathBuf,
}

impl AssertionFile {
    /// A source reading `path` for each token request.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn current(&self) -> Result<SecretString, CredentialError> {
        read_unexpired(&self.path, true)
    }
}

/// A token in a file the platform rotates, for a grant to present: trimmed, and if it is a JWT,
/// not expired (read once more if it is, as [`AssertionFile`] does). A token that is not a JWT
/// is taken as it is.
pub(crate) fn read_token_file(path: &Path) -> Result<SecretString, CredentialError> {
    read_unexpired(path, false)
}

/// The trimmed content of `path`, unless it is a JWT that has expired even when read again;
/// with `require_jwt`, anything but a JWT is an error.
fn read_unexpired(path: &Path, require_jwt: bool) -> Result<SecretString, CredentialError> {
    let expiry = |token: &SecretString| match expiry(path, token) {
        Err(_) if !require_jwt => Ok(None),
        other => other,
    };
    let token = read_trimmed(path)?;
    match expiry(&token)? {
        Some(exp) if exp <= SystemTime::now() => {
            // The platform may have just replaced it.
            let again = read_trimmed(path)?;
            match expiry(&again)? {
                Some(exp) if exp <= SystemTime::now() => Err(CredentialError::expired(path, exp)),
                _ => Ok(again),
            }
        }
        _ => Ok(token),
    }
}

/// When `token` expires, if it is a JWT with an `exp` (read without checking the signature).
pub(crate) fn jwt_expiry(token: &str) -> Option<SystemTime> {
    expiry(Path::new(""), &SecretString::from(token)).ok().flatten()
}

impl CredentialSource for AssertionFile {
    fn credential(&self, _fresh: bool) -> CredentialFuture<'_> {
        Box::pin(std::future::ready(self.current().map_err(Into::into)))
    }

    fn version(&self) -> Option<u64> {
        file_version(&self.path).or(Some(0))
    }
}

/// Which file is at `path` now, and as of when: its modification time, size and (on Unix)
/// inode, hashed. A file replaced by a rename or a `..data` swap, or rewritten in place, gets
/// another, even with the same modification time (`cp -p`); `None` if it cannot be looked at.
pub(crate) fn file_version(path: &Path) -> Option<u64> {
    let metadata = fs::metadata(path).ok()?;
    // `DefaultHasher::new` has fixed keys: the same file gives the same number.
    let mut hasher = std::hash::DefaultHasher::new();
    metadata.modified().ok().hash(&mut hasher);
    metadata.len().hash(&mut hasher);
    #[cfg(unix)]
    std::os::unix::fs::MetadataExt::ino(&metadata).hash(&mut hasher);
    Some(hasher.finish())
}

/// The largest credential file read: a secret or a token is a few KiB at most.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The file's content without surrounding whitespace; an error if that leaves nothing.
fn read_trimmed(path: &Path) -> Result<SecretString, CredentialError> {
    let unreadable = |error| CredentialError::unreadable(path, error);
    let metadata = fs::metadata(path).map_err(unreadable)?;
    // Not a pipe or a device, whose read could block the runtime's thread.
    if !metadata.is_file() {
        return Err(unreadable(io::Error::other("not a regular file")));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(CredentialError::new(CredentialErrorKind::TooLarge, path));
    }
    let content = SecretString::from(fs::read_to_string(path).map_err(unreadable)?);
    let trimmed = content.expose_secret().trim();
    if trimmed.is_empty() {
        return Err(CredentialError::new(CredentialErrorKind::Empty, path));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

/// The `exp` of a JWT, unverified; `None` if it has none.
fn expiry(path: &Path, jwt: &SecretString) -> Result<Option<SystemTime>, CredentialError> {
    let not_a_jwt = || CredentialError::new(CredentialErrorKind::NotAJwt, path);
    let mut parts = jwt.expose_secret().split('.');
    let (Some(_), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_a_jwt());
    };
    let base64url = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let claims = base64url.decode(claims).map_err(|_| not_a_jwt())?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).map_err(|_| not_a_jwt())?;
    let exp = match claims.get("exp") {
        None => return Ok(None),
        Some(exp) => exp.as_f64().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(not_a_jwt)?,
    };
    Ok(UNIX_EPOCH.checked_add(Duration::from_secs_f64(exp.min(1e12))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> SecretString {
        let encode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part);
        SecretString::from(format!("{}.{}.sig", encode(r#"{"alg":"none"}"#), encode(claims)))
    }

    #[test]
    fn the_expiry_of_a_jwt_is_read_without_checking_its_signature() {
        let path = Path::new("token");
        let at = |s| Some(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(expiry(path, &jwt(r#"{"exp":1700000000}"#)).unwrap(), at(1_700_000_000));
        assert_eq!(expiry(path, &jwt(r#"{"sub":"x"}"#)).unwrap(), None);
        for bad in ["not a jwt", "a.b", "a.!!!.c", "a.b.c.d"] {
            let error = expiry(path, &SecretString::from(bad)).unwrap_err();
            assert_eq!(error.kind(), CredentialErrorKind::NotAJwt, "{bad}");
        }
        let error = expiry(path, &jwt(r#"{"exp":"soon"}"#)).unwrap_err();
        assert_eq!(error.kind(), CredentialErrorKind::NotAJwt);
    }
}
