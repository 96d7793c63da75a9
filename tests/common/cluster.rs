//! A Redis Cluster of a test's own: six redis-server processes (three masters, a replica
//! each) on free loopback ports, made one cluster by `redis-cli --cluster create`. Needs
//! redis-server and redis-cli; `cargo xtask test` says they are there with
//! `OMNI_REDIS_CLUSTER=1`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::PATIENCE;

const NODES: usize = 6;

/// Six redis-server processes in cluster mode on free loopback ports, made one cluster; every
/// process is killed on drop, a failing test's too.
pub struct Cluster {
    dir: PathBuf,
    nodes: Vec<(u16, Option<Child>)>,
}

impl Cluster {
    pub fn start() -> Self {
        assert!(
            std::env::var_os("OMNI_REDIS_CLUSTER").is_some(),
            "these tests need redis-server and redis-cli: run them with `cargo xtask test`"
        );
        let dir = std::env::temp_dir().join(format!(
            "omni-cluster-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
        };
        while cluster.nodes.len() < NODES {
            if let Some(node) = cluster.spawn() {
                cluster.nodes.push(node);
            }
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in cluster.ports() {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let created = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.until_ok(&cluster.ports());
        cluster
    }

    /// One redis-server on a free port whose bus port (+10000) is free too, listening; `None`
    /// when another process took either port first.
    fn spawn(&self) -> Option<(u16, Option<Child>)> {
        let port = free_port();
        if port >= 55535 || TcpListener::bind(("127.0.0.1", port + 10000)).is_err() {
            return None;
        }
        let conf = self.dir.join(format!("nodes-{port}.conf"));
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(&conf)
            .args([
                "--cluster-node-timeout",
                "1000",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH");
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((port, Some(child)));
            }
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on {port} did not listen within {PATIENCE:?}");
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(port, _)| *port).collect()
    }

    pub fn url(port: u16) -> String {
        format!("redis://127.0.0.1:{port}/")
    }

    /// Waits until every node in `ports` says `cluster_state:ok`.
    pub fn until_ok(&self, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ports
            .iter()
            .all(|port| cli(*port, &["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the cluster is not ok within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the master serving `key`'s slot, as `port` sees the cluster.
    pub fn master_of(port: u16, key: &str) -> u16 {
        let slot: u16 = cli(port, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        Self::masters(port)
            .into_iter()
            .find(|(_, _, slots)| slots.iter().any(|range| range.contains(&slot)))
            .map(|(_, port, _)| port)
            .expect("a master serves every slot")
    }

    /// Each master (id, port, slot ranges) in `CLUSTER NODES` as `port` sees it.
    pub fn masters(port: u16) -> Vec<(String, u16, Vec<std::ops::RangeInclusive<u16>>)> {
        cli(port, &["cluster", "nodes"])
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                if !fields[2].contains("master") || fields[2].contains("fail") {
                    return None;
                }
                let port = node_port(fields[1]);
                let slots = fields[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .map(|s| match s.split_once('-') {
                        Some((a, b)) => a.parse().unwrap()..=b.parse().unwrap(),
                        None => {
                            let n: u16 = s.parse().unwrap();
                            n..=n
                        }
                    })
                    .collect();
                Some((fields[0].to_owned(), port, slots))
            })
            .collect()
    }

    /// The port of the replica of the master on `master`.
    pub fn replica_of(&self, master: u16) -> u16 {
        let id = cli(master, &["cluster", "myid"]).trim().to_owned();
        cli(master, &["cluster", "nodes"])
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (fields[2].contains("slave") && fields[3] == id).then(|| node_port(fields[1]))
            })
            .expect("every master has a replica")
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let (_, child) = self.nodes.iter_mut().find(|(p, _)| *p == port).unwrap();
        let mut child = child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `127.0.0.1:7000@17000` → 7000.
pub fn node_port(address: &str) -> u16 {
    let address = address.split('@').next().unwrap();
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// What `redis-cli -p port args…` prints.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli on the PATH");
    String::from_utf8(out.stdout).unwrap()
}
