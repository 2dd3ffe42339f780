//! Key and certificate files that rotate in place (cert-manager renews a certificate, an
//! operator replaces a signing key): read again when they change, so that a running service
//! picks the new ones up without a restart.
//!
//! The token request looks at the files' modification times before it is sent (a `stat` each,
//! no read) and reads them again only when one changed. A file that cannot be read or parsed
//! at that moment (the platform is mid-rotation) leaves the previous key or certificate in use,
//! with a warning; the next token request looks again.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::{default_http_client, Settings};

/// The key and certificate files of a configuration, and when each last changed.
pub(crate) struct CredentialFiles {
    /// The settings that name the files (the rest is not used).
    settings: Settings,
    /// The extra roots of the client this crate builds, to build it again.
    roots: Vec<Vec<u8>>,
    certificate: Vec<Watched>,
    #[cfg(feature = "jwt")]
    key: Vec<Watched>,
}

/// What changed.
#[derive(Default)]
pub(crate) struct Reloaded {
    /// The crate's HTTP client, built again with the new certificate.
    pub(crate) http_client: Option<reqwest::Client>,
    /// The new signing key.
    #[cfg(feature = "jwt")]
    pub(crate) client_key: Option<crate::ClientKey>,
}

struct Watched {
    path: PathBuf,
    modified: Mutex<Option<SystemTime>>,
}

impl Watched {
    fn new(path: &PathBuf) -> Self {
        Self { path: path.clone(), modified: Mutex::new(modified(path)) }
    }

    /// Whether the file changed since the last look; remembers what it saw.
    fn changed(&self) -> bool {
        let now = modified(&self.path);
        let mut seen = self.modified.lock().unwrap_or_else(PoisonError::into_inner);
        now.is_some() && std::mem::replace(&mut *seen, now) != now
    }

    /// Looks again at the next call, after a read that failed.
    fn forget(&self) {
        *self.modified.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok()
}

impl CredentialFiles {
    /// Watches the certificate files (when this crate builds the HTTP client) and the key file
    /// that `settings` names; `None` if there are none to watch.
    pub(crate) fn new(
        settings: &Settings,
        certificate_from_files: bool,
        key_from_file: bool,
        roots: &[Vec<u8>],
    ) -> Option<Self> {
        let watch = |from_files: bool, paths: &[&Option<PathBuf>]| -> Vec<Watched> {
            let paths = paths.iter().filter_map(|path| path.as_ref());
            if from_files {
                paths.map(Watched::new).collect()
            } else {
                Vec::new()
            }
        };
        let certificate = watch(
            certificate_from_files,
            &[&settings.client_certificate_file, &settings.client_certificate_key_file],
        );
        #[cfg(feature = "jwt")]
        let key = watch(key_from_file, &[&settings.client_key_file]);
        #[cfg(feature = "jwt")]
        let none = certificate.is_empty() && key.is_empty();
        #[cfg(not(feature = "jwt"))]
        let none = {
            let _ = key_from_file;
            certificate.is_empty()
        };
        (!none).then(|| Self {
            settings: settings.clone(),
            roots: roots.to_vec(),
            certificate,
            #[cfg(feature = "jwt")]
            key,
        })
    }

    /// What changed since the last call, read again.
    pub(crate) fn reload(&self) -> Reloaded {
        let mut reloaded = Reloaded::default();
        // Every file is looked at, so that each remembers its time.
        if self.certificate.iter().filter(|file| file.changed()).count() > 0 {
            let client = self
                .settings
                .read_client_certificate()
                .and_then(|certificate| default_http_client(certificate.as_ref(), &self.roots));
            match client {
                Ok(client) => {
                    tracing::info!("the client certificate file changed; using the new one");
                    reloaded.http_client = Some(client);
                }
                Err(error) => {
                    tracing::warn!(%error, "keeping the client certificate read before");
                    self.certificate.iter().for_each(Watched::forget);
                }
            }
        }
        #[cfg(feature = "jwt")]
        if self.key.iter().filter(|file| file.changed()).count() > 0 {
            match self.settings.read_client_key() {
                Ok(key) => {
                    tracing::info!("the client key file changed; signing with the new key");
                    reloaded.client_key = key;
                }
                Err(error) => {
                    tracing::warn!(%error, "keeping the client key read before");
                    self.key.iter().for_each(Watched::forget);
                }
            }
        }
        reloaded
    }
}
