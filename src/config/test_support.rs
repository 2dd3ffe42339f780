//! What the tests of `config/` share.

use std::time::Duration;

use std::env::VarError;

use super::{Config, ConfigBuilder};
use crate::error::ConfigError;

pub(super) const MINUTE: Duration = Duration::from_secs(60);

pub(super) fn builder(url: &str) -> ConfigBuilder {
    Config::builder(url, "client", "secret")
}

pub(super) fn field_of(result: Result<Config, ConfigError>) -> &'static str {
    result.expect_err("build should fail").field()
}

/// A file in a directory of this test's own, removed with it.
pub(super) struct TempFiles(pub(super) std::path::PathBuf);

impl TempFiles {
    pub(super) fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tcc-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed client certificate and its key, as PEM files.
pub(super) fn certificate_files(files: &TempFiles) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
    let chain = certified.cert.pem();
    let key = certified.signing_key.serialize_pem();
    (files.write("client.crt", &chain), files.write("client.key", &key))
}

pub(super) fn from_map(prefix: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    super::env::from_variables(prefix, |name| vars.get(name).cloned().ok_or(VarError::NotPresent))
}
