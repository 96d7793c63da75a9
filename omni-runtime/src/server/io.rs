//! A served connection's socket, with the two timers hyper does not keep: one for a client
//! that connects and never sends a byte, and one for a write that makes no progress.
//!
//! hyper's header read timeout starts at the first byte of a request, so a socket that stays
//! silent is held for ever: a few thousand of them exhaust the file descriptors and lock
//! everyone out. And a connection whose peer stopped reading is only noticed by what writes
//! to it (the WebSocket writer's timeout); an event stream or a response body is not written
//! by omni's code at all.
//!
//! "No progress" is measured by the kernel (`TCP_USER_TIMEOUT`, on Linux): how long sent bytes
//! stay unacknowledged, or the peer's window stays shut. A process cannot see that from its
//! writes: the kernel wakes a blocked writer only once a third of its send buffer is free,
//! which at a slow but steady reader's pace can take longer than any sensible timeout. The
//! kernel resets such a connection itself, which also frees what it could not send.
//!
//! A connection dropped while a write was stuck (the WebSocket writer gave up first) is reset
//! (`SO_LINGER` 0) rather than closed: a close would leave the kernel holding its unsent bytes
//! in FIN-WAIT-1 for minutes, and a client that never reads could multiply that at will.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A TCP stream with a first-byte deadline and a write-progress timeout.
pub(crate) struct Watched {
    inner: TcpStream,
    /// Armed until the connection's first byte arrives.
    first_byte: Option<Pin<Box<Sleep>>>,
    #[cfg(feature = "tls")]
    first_byte_timeout: Duration,
    /// The last write could not complete: the peer's window is full.
    stuck: bool,
}

impl Watched {
    pub(crate) fn new(inner: TcpStream, first_byte: Duration, write_timeout: Duration) -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(err) = socket2::SockRef::from(&inner).set_tcp_user_timeout(Some(write_timeout)) {
            tracing::debug!(%err, "cannot set the write timeout on a connection");
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = write_timeout;
        Self {
            inner,
            first_byte: Some(Box::pin(tokio::time::sleep(first_byte))),
            #[cfg(feature = "tls")]
            first_byte_timeout: first_byte,
            stuck: false,
        }
    }

    /// Waits again for a first byte: after a TLS handshake, the request is what must come.
    #[cfg(feature = "tls")]
    pub(crate) fn expect_request(&mut self) {
        let deadline = tokio::time::Instant::now() + self.first_byte_timeout;
        match &mut self.first_byte {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.first_byte = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    fn wrote(&mut self, outcome: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        self.stuck = outcome.is_pending();
        outcome
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.first_byte = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let Some(deadline) = &mut this.first_byte else {
                    return Poll::Pending;
                };
                ready!(deadline.as_mut().poll(cx));
                tracing::debug!("a connection sent nothing in time: dropping it");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing was sent within the header read timeout",
                )))
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.stuck {
            // Unsent bytes would otherwise be retransmitted to a peer that does not read.
            let _ = self.inner.set_zero_linger();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    async fn pair(first_byte: Duration, write: Duration) -> (Watched, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Watched::new(server, first_byte, write), client)
    }

    #[tokio::test]
    async fn a_silent_connection_is_dropped_and_a_talking_one_is_not() {
        let (mut silent, _client) = pair(Duration::from_millis(100), Duration::from_secs(5)).await;
        let mut buf = [0; 8];
        let err = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (mut talking, mut client) =
            pair(Duration::from_millis(100), Duration::from_secs(5)).await;
        client.write_all(b"G").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 1);
        let idle = tokio::time::timeout(Duration::from_millis(300), talking.read(&mut buf)).await;
        assert!(
            idle.is_err(),
            "after a first byte, waiting is hyper's business"
        );
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_times_out_and_the_socket_is_reset() {
        let (mut server, mut client) =
            pair(Duration::from_secs(5), Duration::from_millis(300)).await;
        let chunk = vec![7u8; 64 * 1024];
        let started = std::time::Instant::now();
        let err = loop {
            match server.write(&chunk).await {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(server);
        // A reset, not an orderly end after the buffered bytes.
        let mut buf = vec![0; 64 * 1024];
        let outcome = loop {
            match client.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(err) => break Err(err.kind()),
            }
        };
        assert_eq!(outcome, Err(io::ErrorKind::ConnectionReset));
    }

    #[tokio::test]
    async fn a_slow_steady_reader_is_never_cut() {
        let (mut server, mut client) =
            pair(Duration::from_secs(5), Duration::from_millis(200)).await;
        let reading = tokio::spawn(async move {
            let mut buf = vec![0; 16 * 1024];
            let mut total = 0;
            // Well under the socket's buffers per pause, far over them in all.
            while total < 8 * 1024 * 1024 {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0);
                total += n;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            total
        });
        let chunk = vec![1u8; 256 * 1024];
        for _ in 0..32 {
            server.write_all(&chunk).await.unwrap();
        }
        assert_eq!(reading.await.unwrap(), 8 * 1024 * 1024);
    }
}
