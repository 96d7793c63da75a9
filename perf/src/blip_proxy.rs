//! The network blip: `storm-proxy TARGET_PORT` forwards connections to `127.0.0.1:TARGET_PORT`
//! and, on a `blip` line on stdin, drops every connection it carries at once while it keeps
//! accepting, as a network outage would that leaves the server up and its sessions resumable.
//! Prints `ready PORT` once listening, and `blipped N` after each blip.
//!
//! The demo accepts only its own `host:port` in `Host`, so the proxy rewrites the request's
//! `Host` to the server's before it forwards the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The longest request head the proxy reads before it forwards: a WebSocket upgrade's is
/// a few hundred bytes.
const HEAD: usize = 16 * 1024;

pub fn main(args: &[String]) {
    let [target] = args else {
        panic!("storm-proxy TARGET_PORT, not {args:?}");
    };
    let target: u16 = target.parse().expect("a port");
    crate::runtime().block_on(run(target));
}

async fn run(target: u16) {
    let listener = omni::server::bind(([127, 0, 0, 1], 0), 8192).expect("bind the proxy");
    let port = listener.local_addr().unwrap().port();
    println!("ready {port}");
    let (blips, _) = watch::channel(0u64);
    let blips = Arc::new(blips);
    let open = Arc::new(AtomicUsize::new(0));
    let mut commands = crate::child::stdin_lines();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let blip = blips.subscribe();
                let open = open.clone();
                tokio::spawn(async move {
                    open.fetch_add(1, Ordering::Relaxed);
                    forward(client, target, port, blip).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            command = commands.recv() => match command.as_deref() {
                Some("blip") => {
                    let dropped = open.load(Ordering::Relaxed);
                    blips.send_modify(|n| *n += 1);
                    println!("blipped {dropped}");
                }
                Some(other) => eprintln!("storm-proxy: unknown command {other:?}"),
                None => return,
            },
        }
    }
}

/// Carries one connection until either side closes or a blip drops it.
async fn forward(mut client: TcpStream, target: u16, port: u16, mut blip: watch::Receiver<u64>) {
    let _ = client.set_nodelay(true);
    let carry = async {
        let (head, rest) = read_head(&mut client).await?;
        let head = head.replace(
            &format!("127.0.0.1:{port}\r\n"),
            &format!("127.0.0.1:{target}\r\n"),
        );
        let mut server = TcpStream::connect(("127.0.0.1", target)).await?;
        server.set_nodelay(true)?;
        server.write_all(head.as_bytes()).await?;
        server.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        std::io::Result::Ok(())
    };
    tokio::select! {
        _ = carry => {}
        _ = blip.changed() => {}
    }
}

/// The request line and headers, and anything that came with them.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut bytes = Vec::with_capacity(1024);
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = bytes.split_off(end + 4);
            let head = String::from_utf8(bytes).map_err(|_| std::io::ErrorKind::InvalidData)?;
            return Ok((head, rest));
        }
        if bytes.len() >= HEAD || client.read_buf(&mut bytes).await? == 0 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}
