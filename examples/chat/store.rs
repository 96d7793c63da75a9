//! Where the demo keeps what its servers share: one Redis, or a Redis Cluster.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to the Redis given to `--redis`: a single server, or a cluster, found from
/// one of its nodes (as cluster clients do) or named by several URLs separated by commas.
#[derive(Clone)]
pub enum Store {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Store {
    /// Connects to `url`: a cluster when it lists several nodes, or when the one it names
    /// says it is part of one.
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let urls: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        if let [one] = urls[..] {
            let mut single = ConnectionManager::new(redis::Client::open(one)?).await?;
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut single)
                .await?;
            if !info.contains("cluster_enabled:1") {
                return Ok(Self::Single(single));
            }
        }
        let cluster = redis::cluster::ClusterClient::new(urls)?;
        Ok(Self::Cluster(cluster.get_async_connection().await?))
    }
}

impl ConnectionLike for Store {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
