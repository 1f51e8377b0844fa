//! Sends a provider's request description over HTTP (reqwest, rustls) and hands back the raw
//! answer. No redirects are followed: a provider that redirects is answering something else.

use std::time::Duration;

use crate::providers::{HttpRequest, HttpResponse, Method};

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// The HTTP client shared by all orders.
#[derive(Clone, Debug)]
pub struct Transport {
    client: reqwest::Client,
}

/// The largest answer read from a provider; anything longer is cut and treated as broken.
const MAX_BODY: usize = 2 * 1024 * 1024;

impl Transport {
    /// A client with connect and total timeouts.
    ///
    /// # Errors
    /// When the TLS backend cannot start.
    pub fn new(timeout: Duration) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qrtill/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| TransportError(format!("cannot start the HTTP client: {err}")))?;
        Ok(Transport { client })
    }

    /// Sends one request.
    ///
    /// # Errors
    /// A [`TransportError`] saying what went wrong (timeout, refused, reset …).
    pub async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = match request.method {
            Method::Get => self.client.get(&request.url),
            Method::Post => self.client.post(&request.url),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(TransportError(format!(
                    "answer longer than {MAX_BODY} bytes: refused"
                )));
            }
        }
        Ok(HttpResponse { status, body })
    }
}

/// Plain words for staff; the URL is left out because some protocols carry secrets in it.
fn describe(err: reqwest::Error) -> TransportError {
    let what = if err.is_timeout() {
        "no answer in time (timeout)"
    } else if err.is_connect() {
        "cannot connect (network down or provider unreachable)"
    } else if err.is_body() || err.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(&err);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        TransportError(what.to_string())
    } else {
        TransportError(format!("{what}: {detail}"))
    }
}
