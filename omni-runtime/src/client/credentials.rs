//! The application's credentials provider, asked for headers before every connection attempt
//! (see [`ClientBuilder::credentials`](crate::client::ClientBuilder::credentials)).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;

use super::dialer::Ended;

/// The application's credentials provider, called before every connection attempt.
type Provider = dyn Fn() -> BoxFuture<'static, Result<HeaderMap, String>> + Send + Sync;

/// Where a client's connection attempts get their headers: nowhere, or the provider the
/// application registered.
#[derive(Clone, Default)]
pub(crate) struct Credentials(Option<Arc<Provider>>);

impl Credentials {
    pub(crate) fn new<F, Fut, E>(provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HeaderMap, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        Self(Some(Arc::new(move || {
            let headers = provider();
            Box::pin(async move { headers.await.map_err(|err| err.to_string()) })
        })))
    }

    /// The headers for the next attempt. A provider that fails ends the attempt as refused
    /// credentials; one that takes longer than `timeout` as a failed attempt, retried.
    pub(crate) async fn headers(&self, timeout: Duration) -> Result<HeaderMap, Ended> {
        let Some(provider) = &self.0 else {
            return Ok(HeaderMap::new());
        };
        match tokio::time::timeout(timeout, provider()).await {
            Ok(Ok(headers)) => Ok(headers),
            Ok(Err(reason)) => Err(Ended::unauthorized(format!(
                "the credentials provider failed: {reason}"
            ))),
            Err(_) => Err(Ended::dropped(
                format!("the credentials provider gave nothing within {timeout:?}"),
                false,
            )),
        }
    }
}
