//! [`check_local`]: what only the machine that runs a config can judge.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use crate::{Config, Diagnostic, Diagnostics, HeartbeatKind, Origin};

/// tandem-heartbeat's `MAX_KEY_FILE_LEN`: a longer key file is refused.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Check what a parsed config names on *this* machine, which [`parse`](crate::parse) never
/// looks at: the `[cluster] key_file` exists, is a regular file, is neither empty nor over
/// 64 KiB, and has no group or other permission bits (`mode & 0o077 == 0`, the rule the daemon
/// enforces when it loads the key); every serial `[[heartbeat]]` device exists and is a
/// character device.
///
/// Only file metadata is looked at (symbolic links followed); no file is opened or read, so
/// this runs as any user. Each problem is a [`Diagnostic`] at the value in the config file.
/// Meant for `tandem check` to call after a successful [`load`](crate::load) when the config
/// is for the machine it runs on; a config written for another machine (or a test fixture) is
/// judged by `load` alone. Problems are in file order; `Ok(())` when there are none (always,
/// without a `[cluster]`).
pub fn check_local(config: &Config) -> Result<(), Diagnostics> {
    let mut diags = Vec::new();
    if let Some(cluster) = &config.cluster {
        if let Some((message, hint)) = key_file_problem(&cluster.key_file) {
            diags.push(at(&cluster.key_file_origin, message, hint));
        }
    }
    for hb in &config.heartbeats {
        if let HeartbeatKind::Serial { device, .. } = &hb.kind {
            if let Some((message, hint)) = device_problem(device) {
                let origin = hb.device_origin.as_ref().unwrap_or(&hb.origin);
                diags.push(at(origin, message, hint));
            }
        }
    }
    if diags.is_empty() {
        return Ok(());
    }
    diags.sort_by_key(|d| (d.line, d.col));
    Err(Diagnostics(diags))
}

fn at(origin: &Origin, message: String, hint: String) -> Diagnostic {
    Diagnostic {
        file: origin.file.clone(),
        line: origin.line,
        col: origin.col,
        message,
        hint: Some(hint),
    }
}

fn key_file_problem(path: &Path) -> Option<(String, String)> {
    let shown = path.display();
    let create = format!(
        "create it on one node with `umask 077; head -c 32 /dev/urandom | base64 > {shown}` and \
         copy it to every node"
    );
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(not_there("key_file", path, &e, create)),
    };
    if !meta.is_file() {
        return Some((format!("key_file: {shown} is not a regular file"), create));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Some((
            format!("key_file: {shown} has mode {mode:04o}: group or others can read or write it"),
            format!("chmod 600 {shown}: the daemon refuses a key others can see"),
        ));
    }
    if meta.len() == 0 {
        return Some((format!("key_file: {shown} is empty"), create));
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Some((
            format!(
                "key_file: {shown} is {} bytes, more than a key file can be ({MAX_KEY_FILE_LEN})",
                meta.len()
            ),
            format!("is this the right file? {create}"),
        ));
    }
    None
}

fn device_problem(path: &Path) -> Option<(String, String)> {
    let hint = "use the serial port's device, like \"/dev/ttyS1\" (names under \
                /dev/serial/by-id/ stay the same across reboots)"
        .to_string();
    match std::fs::metadata(path) {
        Err(e) => Some(not_there("device", path, &e, hint)),
        Ok(m) if !m.file_type().is_char_device() => Some((
            format!("device: {} is not a character device", path.display()),
            hint,
        )),
        Ok(_) => None,
    }
}

/// A path whose metadata cannot be had: missing, or not reachable.
fn not_there(key: &str, path: &Path, e: &io::Error, hint: String) -> (String, String) {
    let shown = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => (
            format!("{key}: {shown} does not exist on this machine"),
            hint,
        ),
        io::ErrorKind::PermissionDenied => (
            format!("{key}: cannot look at {shown}: permission denied"),
            "run tandem check as root, the user the daemon runs as".to_string(),
        ),
        _ => (format!("{key}: cannot look at {shown}: {e}"), hint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A scratch directory of this test process, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("tandem-config-local-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// A file with `bytes` and `mode`.
        fn file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, bytes).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A config naming `key` and the serial `devices` (a TCP channel when there are none). The
    /// key_file value is at 6:12, the devices' at 11:10, 16:10, 21:10...
    fn config(key: &Path, devices: &[&Path]) -> Config {
        let mut text = format!(
            "[node]\nname = \"lb1\"\n\n[cluster]\nname = \"edge\"\nkey_file = {:?}\n\
             nodes = [{{ name = \"lb1\", address = \"10.0.0.1\" }}, \
             {{ name = \"lb2\", address = \"10.0.0.2\" }}]\n",
            key.display().to_string()
        );
        if devices.is_empty() {
            text.push_str("\n[[heartbeat]]\nkind = \"tcp\"\nport = 5406\n\n");
        }
        for d in devices {
            text.push_str(&format!(
                "\n[[heartbeat]]\nkind = \"serial\"\ndevice = {:?}\n\n",
                d.display().to_string()
            ));
        }
        text.push_str(
            "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n\
             virtual_ipaddress = [\"192.0.2.1\"]\n",
        );
        match crate::parse(&text, Path::new("t.toml")) {
            Ok(c) => c,
            Err(d) => panic!("{d}\n{text}"),
        }
    }

    fn errors(c: &Config) -> String {
        match check_local(c) {
            Ok(()) => String::new(),
            Err(d) => d.to_string(),
        }
    }

    #[test]
    fn a_private_key_and_a_char_device_pass() {
        let s = Scratch::new("ok");
        let key = s.file("cluster.key", b"secret\n", 0o600);
        assert_eq!(errors(&config(&key, &[Path::new("/dev/null")])), "");
        // Read-only for the owner is fine too.
        let key = s.file("ro.key", b"secret", 0o400);
        assert_eq!(errors(&config(&key, &[])), "");
    }

    #[test]
    fn a_key_others_can_read_is_refused_at_its_value() {
        let s = Scratch::new("mode");
        let key = s.file("cluster.key", b"secret\n", 0o644);
        let shown = key.display();
        assert_eq!(
            errors(&config(&key, &[])),
            format!(
                "t.toml:6:12: key_file: {shown} has mode 0644: group or others can read or \
                 write it\n  hint: chmod 600 {shown}: the daemon refuses a key others can see\n"
            )
        );
        // Any group or other bit counts.
        for mode in [0o640, 0o620, 0o604, 0o602, 0o610, 0o601] {
            let key = s.file("k", b"secret", mode);
            let got = errors(&config(&key, &[]));
            assert!(
                got.contains(&format!("has mode {mode:04o}")),
                "{mode:o}: {got}"
            );
        }
    }

    #[test]
    fn a_missing_empty_or_odd_key_file_is_refused() {
        let s = Scratch::new("key");
        let missing = s.0.join("nope.key");
        let got = errors(&config(&missing, &[]));
        assert!(
            got.starts_with(&format!(
                "t.toml:6:12: key_file: {} does not exist on this machine\n  hint: create it",
                missing.display()
            )),
            "{got}"
        );
        let empty = s.file("empty.key", b"", 0o600);
        assert!(errors(&config(&empty, &[])).contains("is empty"));
        let big = s.file("big.key", &vec![b'k'; 64 * 1024 + 1], 0o600);
        assert!(errors(&config(&big, &[]))
            .contains("is 65537 bytes, more than a key file can be (65536)"));
        assert!(errors(&config(&s.0, &[])).contains("is not a regular file"));
    }

    #[test]
    fn serial_devices_must_exist_and_be_character_devices() {
        let s = Scratch::new("dev");
        let key = s.file("cluster.key", b"secret", 0o600);
        let missing = Path::new("/dev/tandem-test-no-such-tty");
        let plain = s.file("not-a-tty", b"", 0o600);
        let got = errors(&config(&key, &[Path::new("/dev/null"), missing, &plain]));
        assert_eq!(
            got,
            format!(
                "t.toml:16:10: device: /dev/tandem-test-no-such-tty does not exist on this \
                 machine\n  hint: use the serial port's device, like \"/dev/ttyS1\" (names \
                 under /dev/serial/by-id/ stay the same across reboots)\n\
                 t.toml:21:10: device: {} is not a character device\n  hint: use the serial \
                 port's device, like \"/dev/ttyS1\" (names under /dev/serial/by-id/ stay the \
                 same across reboots)\n",
                plain.display()
            )
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let s = Scratch::new("all");
        let key = s.file("cluster.key", b"secret", 0o666);
        let d = check_local(&config(&key, &[Path::new("/dev/tandem-test-none")])).unwrap_err();
        let at: Vec<(usize, usize)> = d.iter().map(|d| (d.line, d.col)).collect();
        assert_eq!(at, [(6, 12), (11, 10)]);
    }

    #[test]
    fn a_config_without_a_cluster_has_nothing_to_check() {
        let c = crate::parse(
            "[node]\nname = \"lb1\"\n[[vrrp_instance]]\nname = \"VI_1\"\n\
             interface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(check_local(&c), Ok(()));
    }
}
