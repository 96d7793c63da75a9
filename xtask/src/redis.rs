//! A real redis-server for the Redis tests: the one on the PATH (installed with apt when
//! missing and this runs as root), started on a free loopback port with a temporary
//! directory, stopped when the tests are done.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable the Redis tests read the server's URL from.
pub const URL_VAR: &str = "OMNI_REDIS_URL";

/// Set for the Redis Cluster tests: they may start redis-server and redis-cli themselves.
pub const CLUSTER_VAR: &str = "OMNI_REDIS_CLUSTER";

/// A running redis-server, stopped on drop.
pub struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    pub fn start() -> Result<Self, String> {
        ensure_installed()?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("omni-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        eprintln!("xtask: starting redis-server on 127.0.0.1:{port}");
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
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let server = Self { child, port, dir };
        server.wait_ready()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("redis-server did not start listening within 10 s".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Installs Debian's redis-server when it is not on the PATH (as root; otherwise says how).
fn ensure_installed() -> Result<(), String> {
    if which("redis-server") {
        return Ok(());
    }
    crate::browser::install_missing(&["redis-server"], "the Redis tests", None)?;
    if which("redis-server") {
        Ok(())
    } else {
        Err("redis-server is still not on the PATH after apt-get installed it".into())
    }
}

/// Whether `program` is on the PATH.
pub fn which(program: &str) -> bool {
    locate(program).is_some()
}

/// Where `program` is on the PATH.
pub fn locate(program: &str) -> Option<PathBuf> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let path = String::from_utf8(found.stdout).ok()?;
    Some(PathBuf::from(path.trim_end()))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
