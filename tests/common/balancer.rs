//! A round-robin TCP load balancer: each new connection goes to the next server that accepts
//! it, as a balancer in front of several servers does; a dead server is skipped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

pub struct Balancer {
    pub addr: SocketAddr,
}

impl Balancer {
    /// Listens on a free loopback port and spreads connections over `servers`.
    pub async fn start(servers: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                let (servers, next) = (servers.clone(), next.clone());
                tokio::spawn(async move {
                    for _ in 0..servers.len() {
                        let server = servers[next.fetch_add(1, Ordering::Relaxed) % servers.len()];
                        if let Ok(mut upstream) = TcpStream::connect(server).await {
                            let _ = upstream.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                });
            }
        });
        Self { addr }
    }
}
