//! A redis-server of a test's own, on a free port: to stop, pause or restart without
//! disturbing the tests that share the one `cargo xtask test` starts.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::PATIENCE;

/// A redis-server of this test's own, to stop and start again.
pub struct OwnRedis {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    /// A redis-server on a free port with an empty directory, and its URL.
    pub fn fresh() -> (Self, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("omni-redis-test-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        (Self::start(port, dir), format!("redis://127.0.0.1:{port}/"))
    }

    /// Starts it again, with its data lost (no persistence).
    pub fn restart(&mut self) {
        self.stop();
        *self = Self::start(self.port, std::mem::take(&mut self.dir));
    }

    fn start(port: u16, dir: std::path::PathBuf) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (cargo xtask test installs it)");
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {port}: not listening within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        Self {
            child: Some(child),
            port,
            dir,
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
