//! Which Redis the backend talks to: one server, or a Redis Cluster reached through one or
//! more of its nodes. The mode decides the client (a plain connection, or the cluster client
//! that follows the slot map) and the pub/sub commands (`PUBLISH`/`SUBSCRIBE`, or the sharded
//! `SPUBLISH`/`SSUBSCRIBE` that keep a channel's traffic on its slot's shard).

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, PushInfo, RedisFuture, Value};
use tokio::sync::mpsc::UnboundedSender;

/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one command may wait for its answer on a cluster node.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Retries the cluster client makes itself (following redirects, refreshing the slot map
/// after a node was lost), each after a short wait: a command to a dead master's slot fails
/// within about a second, and this backend's own retries take over from there.
const CLUSTER_RETRIES: u32 = 4;
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (50, 400);

/// One server or a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Single,
    Cluster,
}

impl Mode {
    /// The command that publishes on a channel.
    pub(super) fn publish(self) -> &'static str {
        match self {
            Self::Single => "PUBLISH",
            Self::Cluster => "SPUBLISH",
        }
    }
}

/// The servers named in the URL given: one, or several separated by commas.
#[derive(Debug, Clone)]
pub(super) struct Servers {
    nodes: Vec<ConnectionInfo>,
}

impl Servers {
    /// Reads `urls` (`redis://host:port/`, or several separated by commas).
    pub(super) fn parse(urls: &str) -> redis::RedisResult<Self> {
        let nodes = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<redis::RedisResult<Vec<_>>>()?;
        if nodes.is_empty() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis URL given",
            )));
        }
        Ok(Self { nodes })
    }

    /// Several URLs are a cluster's seed nodes; one URL is a cluster if the server says it is
    /// (`cluster_enabled:1` in `INFO cluster`).
    pub(super) async fn mode(&self) -> redis::RedisResult<Mode> {
        if self.nodes.len() > 1 {
            return Ok(Mode::Cluster);
        }
        let mut conn = self.single().await?;
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut conn)
            .await?;
        let enabled = info.lines().any(|line| line.trim() == "cluster_enabled:1");
        Ok(if enabled { Mode::Cluster } else { Mode::Single })
    }

    /// A connection for commands (publishing, replays).
    pub(super) async fn connect(&self, mode: Mode) -> redis::RedisResult<Connection> {
        match mode {
            Mode::Single => self.single().await.map(Connection::Single),
            Mode::Cluster => {
                let client = self.cluster(None)?;
                let conn = client.get_async_connection().await?;
                Ok(Connection::Cluster(conn))
            }
        }
    }

    /// The one server's client, for the subscriber connection on a single Redis.
    pub(super) fn client(&self) -> redis::RedisResult<redis::Client> {
        redis::Client::open(self.nodes[0].clone())
    }

    async fn single(&self) -> redis::RedisResult<MultiplexedConnection> {
        let client = self.client()?;
        let connect = client.get_multiplexed_async_connection();
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(conn) => conn,
            Err(_) => Err(timed_out("connecting to redis timed out")),
        }
    }

    /// A cluster client seeded with every URL given; with `push`, it speaks RESP3 and hands
    /// every push (messages, subscription changes, lost nodes) to it.
    pub(super) fn cluster(
        &self,
        push: Option<UnboundedSender<PushInfo>>,
    ) -> redis::RedisResult<ClusterClient> {
        let (min_wait, max_wait) = CLUSTER_RETRY_WAIT_MS;
        let mut builder = ClusterClientBuilder::new(self.nodes.clone())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(min_wait)
            .max_retry_wait(max_wait);
        if let Some(push) = push {
            builder = builder
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push);
        }
        builder.build()
    }
}

/// A command connection to a single Redis or to a cluster. A clone shares it (commands from
/// several tasks are pipelined on it).
#[derive(Clone)]
pub(super) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
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

pub(super) fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_or_several_separated_by_commas() {
        assert_eq!(
            Servers::parse("redis://127.0.0.1:7000/")
                .unwrap()
                .nodes
                .len(),
            1
        );
        let seeds = Servers::parse("redis://127.0.0.1:7000, redis://127.0.0.1:7001,").unwrap();
        assert_eq!(seeds.nodes.len(), 2);
        assert!(Servers::parse(" , ").is_err());
        assert!(Servers::parse("redis://127.0.0.1:7000,not a url").is_err());
    }
}
