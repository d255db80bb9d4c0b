//! A timing HTTP proxy in front of the emulator.
//!
//! Clients given the proxy's URL as their endpoint reach the emulator
//! unchanged; for every call the proxy records the interval from the
//! arrival of the request's headers to the arrival of the emulator's whole
//! response. That is the time a call spends "inside the emulator" as the
//! client sees it, less the two loopback hops between client and proxy
//! (those count as the client's time, so orchestration overhead derived from
//! these intervals is, if anything, overstated).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// When one proxied call started and ended.
#[derive(Debug, Clone, Copy)]
pub struct CallTiming {
    pub start: Instant,
    pub end: Instant,
}

type Calls = Arc<Mutex<Vec<CallTiming>>>;

/// A running proxy; stopped on drop.
#[derive(Debug)]
pub struct TimingProxy {
    url: String,
    calls: Calls,
    task: tokio::task::JoinHandle<()>,
}

impl TimingProxy {
    /// Proxies a free loopback port to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let authority = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let calls: Calls = Arc::default();
        let recorded = Arc::clone(&calls);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let authority = authority.clone();
                let calls = Arc::clone(&recorded);
                tokio::spawn(async move {
                    // One upstream connection per client connection, reused
                    // while the emulator keeps it open.
                    let upstream: Arc<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>> = Arc::default();
                    let service = service_fn(move |request| {
                        let (authority, calls, upstream) =
                            (authority.clone(), Arc::clone(&calls), Arc::clone(&upstream));
                        async move { Ok::<_, Infallible>(forward(request, &authority, &upstream, &calls).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, calls, task })
    }

    /// The endpoint URL to give clients.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The calls recorded since the last `take`, oldest first.
    pub fn take(&self) -> Vec<CallTiming> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for TimingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    request: Request<Incoming>,
    authority: &str,
    upstream: &tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
    calls: &Mutex<Vec<CallTiming>>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    match relay(request, authority, upstream).await {
        Ok(response) => {
            let end = Instant::now();
            calls.lock().unwrap_or_else(|p| p.into_inner()).push(CallTiming { start, end });
            response
        }
        Err(message) => {
            let mut response = Response::new(Full::new(Bytes::from(format!("bench proxy: {message}"))));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn relay(
    request: Request<Incoming>,
    authority: &str,
    upstream: &tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
) -> Result<Response<Full<Bytes>>, String> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    // The bodies are re-framed with their known length.
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.remove(CONTENT_LENGTH);
    let mut guard = upstream.lock().await;
    // A kept connection the emulator has closed meanwhile fails the first
    // try; the second goes over a new connection.
    let mut last_error = String::new();
    for _ in 0..2 {
        if guard.as_ref().is_none_or(SendRequest::is_closed) || !last_error.is_empty() {
            let stream = TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            *guard = Some(sender);
        }
        let sender = guard.as_mut().ok_or("no upstream connection")?;
        let mut copy = Request::new(Full::new(body.clone()));
        *copy.method_mut() = parts.method.clone();
        *copy.uri_mut() = parts.uri.clone();
        *copy.headers_mut() = parts.headers.clone();
        let sent = match sender.ready().await {
            Ok(()) => sender.send_request(copy).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(response) => return finish(response).await,
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(last_error)
}

async fn finish(response: Response<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.remove(CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Full::new(body)))
}
