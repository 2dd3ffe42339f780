//! Key and certificate files that rotate in place (cert-manager renews a certificate, an
//! operator replaces a signing key): read again when they change, so that a running service
//! picks the new ones up without a restart.
//!
//! Every token endpoint of a configuration (the layer's token, each route's and each
//! `TokenParams`' token, a clone's) shares one [`CredentialFiles`]. It looks at the files'
//! versions (a `stat` each, no read: modification time, size and inode) and reads them again only when one changed:
//! once, however many endpoints use them, and the new client and key get a new version.
//! Each endpoint keeps the version it uses ([`Seen`]) and takes the newer ones, so every
//! endpoint sees every change, whichever looked first. A file that cannot be read or parsed
//! at that moment (the platform is mid-rotation) leaves the previous key or certificate in
//! use, with a warning; the next look reads it again.

use super::certificate::{default_http_client, ClientCertificate};
use super::file::file_version;
use crate::error::ConfigError;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// The key and certificate files of a configuration, and what was last read from them.
pub(crate) struct CredentialFiles {
    /// The client certificate's chain and key files, when this crate builds the HTTP client.
    certificate: Option<(PathBuf, PathBuf)>,
    /// The extra roots of the client this crate builds, to build it again.
    roots: Vec<Vec<u8>>,
    /// The file of the key that signs client assertions.
    #[cfg(feature = "jwt")]
    key: Option<KeyFile>,
    latest: Mutex<Latest>,
}

/// A client key in a file: where, how it signs, and its key id.
#[cfg(feature = "jwt")]
#[derive(Clone, Debug)]
pub(crate) struct KeyFile {
    pub(crate) path: PathBuf,
    pub(crate) algorithm: super::SigningAlgorithm,
    pub(crate) key_id: Option<String>,
}

#[cfg(feature = "jwt")]
impl KeyFile {
    /// Reads the key; an error names `client_key_file`.
    pub(crate) fn read(&self) -> Result<super::ClientKey, ConfigError> {
        let pem = super::read_pem("client_key_file", &self.path)?;
        let key = super::ClientKey::from_pem(pem, self.algorithm)
            .map_err(|error| ConfigError::new("client_key_file", error.reason()))?;
        Ok(match &self.key_id {
            Some(id) => key.with_key_id(id),
            None => key,
        })
    }
}

/// What the files held when last read, shared by every endpoint.
struct Latest {
    certificate: Watched<reqwest::Client>,
    #[cfg(feature = "jwt")]
    key: Watched<super::ClientKey>,
}

/// Files read together, when each last changed, and what they gave.
struct Watched<T> {
    paths: Vec<PathBuf>,
    /// Each file's version (`file_version`) when last read.
    seen: Vec<Option<u64>>,
    /// How many times they were read again since `build()` read them (version 0).
    version: u64,
    /// What the latest version gave; `None` for version 0, which each endpoint has already.
    value: Option<T>,
}

/// The versions of the files one endpoint uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    certificate: u64,
    key: u64,
}

/// What changed for one endpoint since it last looked.
#[derive(Default)]
pub(crate) struct Reloaded {
    /// The crate's HTTP client, built again with the new certificate.
    pub(crate) http_client: Option<reqwest::Client>,
    /// The new signing key.
    #[cfg(feature = "jwt")]
    pub(crate) client_key: Option<super::ClientKey>,
}

impl<T: Clone> Watched<T> {
    fn new(paths: Vec<PathBuf>) -> Self {
        let seen = paths.iter().map(|path| file_version(path)).collect();
        Self { paths, seen, version: 0, value: None }
    }

    /// Reads the files with `read` if one changed since the last look, and returns the
    /// version they are at now.
    fn look(&mut self, what: &str, read: impl FnOnce() -> Result<T, ConfigError>) -> u64 {
        let now: Vec<_> = self.paths.iter().map(|path| file_version(path)).collect();
        // A file that cannot be looked at now (mid-rotation) is looked at again next time.
        if now.contains(&None) || now == self.seen {
            return self.version;
        }
        match read() {
            Ok(value) => {
                tracing::info!("the {what} file changed; using the new one");
                self.seen = now;
                self.version += 1;
                self.value = Some(value);
            }
            Err(error) => tracing::warn!(%error, "keeping the {what} read before"),
        }
        self.version
    }

    /// The latest value, if it is newer than the version `seen`, which then becomes current.
    fn newer_than(&self, seen: &mut u64) -> Option<T> {
        if *seen == self.version {
            return None;
        }
        *seen = self.version;
        self.value.clone()
    }
}

impl CredentialFiles {
    /// Watches the client certificate's files (`chain`, `key`: when this crate builds the
    /// HTTP client, with `roots`) and the client key's file; `None` if there are none.
    pub(crate) fn new(
        certificate: Option<(PathBuf, PathBuf)>,
        roots: &[Vec<u8>],
        #[cfg(feature = "jwt")] key: Option<KeyFile>,
    ) -> Option<Self> {
        let certificate_files =
            certificate.iter().flat_map(|(chain, key)| [chain.clone(), key.clone()]).collect();
        #[cfg(feature = "jwt")]
        let key_files: Vec<PathBuf> = key.iter().map(|key| key.path.clone()).collect();
        #[cfg(feature = "jwt")]
        let none = certificate.is_none() && key.is_none();
        #[cfg(not(feature = "jwt"))]
        let none = certificate.is_none();
        (!none).then(|| Self {
            certificate,
            roots: roots.to_vec(),
            #[cfg(feature = "jwt")]
            key,
            latest: Mutex::new(Latest {
                certificate: Watched::new(certificate_files),
                #[cfg(feature = "jwt")]
                key: Watched::new(key_files),
            }),
        })
    }

    /// The versions the files are at now, reading them again if one changed.
    pub(crate) fn look(&self) -> Seen {
        self.look_in(&mut self.lock())
    }

    /// What changed for the endpoint that has seen `seen`, which is brought up to date.
    pub(crate) fn reload(&self, seen: &mut Seen) -> Reloaded {
        let mut latest = self.lock();
        self.look_in(&mut latest);
        Reloaded {
            http_client: latest.certificate.newer_than(&mut seen.certificate),
            #[cfg(feature = "jwt")]
            client_key: latest.key.newer_than(&mut seen.key),
        }
    }

    fn look_in(&self, latest: &mut Latest) -> Seen {
        let certificate = latest.certificate.look("client certificate", || {
            // Watched only when given.
            let not_given = || ConfigError::new("client_certificate_file", "is not given");
            let (chain, key) = self.certificate.as_ref().ok_or_else(not_given)?;
            let certificate = ClientCertificate::read_files(chain, key)?;
            default_http_client(Some(&certificate), &self.roots)
        });
        #[cfg(feature = "jwt")]
        let key = latest.key.look("client key", || {
            let not_given = || ConfigError::new("client_key_file", "is not given");
            self.key.as_ref().ok_or_else(not_given)?.read()
        });
        #[cfg(not(feature = "jwt"))]
        let key = 0;
        Seen { certificate, key }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        // Nothing under the lock panics; a poisoned one holds whole values.
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
