//! An authorization server written by others, run as a child process (a Node.js or Python
//! script in `tests/interop`): started, waited for until it prints `ready <issuer>` (bounded),
//! its further lines kept for the test to read (`token <status>` for each answer of its token
//! endpoint, and whatever else the script prints), and killed when dropped. The scripts also
//! exit by themselves when their stdin closes, so none outlives its test. With the two things
//! its tests need beside it: a public key to register, and a look inside the tokens it issues.
//!
//! The one way the tests start such a server: `interop`, `rejected_credential`,
//! `token_exchange_interop` and `jwt_bearer_interop` all come through here.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::setup;

/// Bounds the wait for the server to start listening, and for a line it is expected to print.
const WAIT: Duration = Duration::from_secs(30);

/// Every line the server printed after `ready`, in order, and a signal for each new one.
type Lines = Arc<(Mutex<Vec<String>>, Condvar)>;

/// The running server.
pub struct InteropServer {
    child: Child,
    /// Held open: closing it tells the server to stop.
    _stdin: ChildStdin,
    /// What it printed after `ready `: `http://127.0.0.1:<port>`.
    pub issuer: String,
    lines: Lines,
}

impl InteropServer {
    /// Runs `command` (its program named `program` in messages) and waits until it is ready.
    ///
    /// # Panics
    ///
    /// If it cannot be run, or does not print `ready <issuer>` within 30 s: with what it
    /// printed on stderr.
    pub fn start(mut command: Command, program: &str) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (ready, issuer) = mpsc::channel();
        let lines = Lines::default();
        let kept = Arc::clone(&lines);
        let stdout = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                match line.strip_prefix("ready ") {
                    Some(issuer) => {
                        let _ = ready.send(issuer.to_owned());
                    }
                    None => {
                        let (lines, added) = &*kept;
                        lines.lock().unwrap().push(line);
                        added.notify_all();
                    }
                }
            }
        });
        let mut server = Self { child, _stdin: stdin, issuer: String::new(), lines };
        match issuer.recv_timeout(WAIT) {
            Ok(issuer) => server.issuer = issuer,
            Err(_) => {
                drop(server); // kills it, which ends its stderr
                let output = stderr.join().unwrap_or_default();
                panic!("{program} did not start within {WAIT:?}:\n{output}");
            }
        }
        server
    }

    /// `node tests/interop/<script>` with `env` set, once `npm ci` has installed what the
    /// script imports ([`setup::node_modules`]).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and if node-oidc-provider cannot be installed.
    pub fn node(script: &str, env: &[(&str, &str)]) -> Self {
        setup::node_modules();
        let dir = setup::interop_dir();
        let mut node = Command::new("node");
        node.arg(dir.join(script)).current_dir(&dir).envs(env.iter().copied());
        Self::start(node, &format!("node tests/interop/{script}"))
    }

    /// `<issuer>/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The lines printed so far that begin with `<prefix> `, without it.
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        let lines = self.lines.0.lock().unwrap();
        let prefix = format!("{prefix} ");
        lines.iter().filter_map(|line| line.strip_prefix(&prefix)).map(str::to_owned).collect()
    }

    /// [`lines`](Self::lines), once there are at least `n` of them (bounded: the server prints
    /// each as it finishes with it, on a pipe of its own).
    ///
    /// # Panics
    ///
    /// If there are fewer than `n` after 30 s.
    pub fn wait_for_lines(&self, prefix: &str, n: usize) -> Vec<String> {
        let (lines, added) = &*self.lines;
        let prefix = format!("{prefix} ");
        let count = |lines: &Vec<String>| lines.iter().filter(|l| l.starts_with(&prefix)).count();
        let guard = lines.lock().unwrap();
        let (guard, _) = added.wait_timeout_while(guard, WAIT, |lines| count(lines) < n).unwrap();
        assert!(count(&guard) >= n, "fewer than {n} `{prefix}` lines within {WAIT:?}: {guard:?}");
        drop(guard);
        self.lines(prefix.trim_end())
    }

    /// The statuses of the token endpoint's answers (its `token <status>` lines), once there
    /// are at least `n`; `0` for those so far.
    ///
    /// # Panics
    ///
    /// As [`wait_for_lines`](Self::wait_for_lines).
    pub fn token_answers(&self, n: usize) -> Vec<u16> {
        let lines = self.wait_for_lines("token", n);
        lines.iter().map(|status| status.parse().unwrap()).collect()
    }
}

impl Drop for InteropServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The public JWK of a P-256 key (RFC 7518 §6.2.1): its point's coordinates, base64url.
pub fn p256_public_jwk(key: &rcgen::KeyPair) -> String {
    // An uncompressed point: 0x04, then x and y, 32 bytes each.
    let point = key.public_key_raw();
    let (x, y) = point[1..].split_at(32);
    let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
    format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","use":"sig"}}"#)
}

/// The claims of a JWT, read without checking its signature (the test's own eyes on a token
/// the server issued).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
