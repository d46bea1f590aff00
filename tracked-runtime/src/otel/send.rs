//! Posts request bodies to the receiver: OTLP/HTTP with protobuf, on a
//! single-threaded tokio runtime owned by the exporter's thread.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;

use super::OtelError;

const PROTOBUF: &str = "application/x-protobuf";

/// Responses are small (an optional partial-success note); a larger body is
/// not a receiver's.
const MAX_RESPONSE: usize = 64 * 1024;

pub(super) struct Sender {
    uri: Uri,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Runtime,
}

impl Sender {
    pub(super) fn new(uri: Uri, timeout: Duration) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        // No idle connections: the runtime only runs during an export, so a
        // pooled connection would go unwatched between two of them.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(Sender {
            uri,
            timeout,
            client,
            runtime,
        })
    }

    /// Posts one body and waits for the answer, at most the timeout.
    pub(super) fn send(&self, body: Vec<u8>) -> Result<(), OtelError> {
        let request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, PROTOBUF)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| OtelError::Export(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{} unreachable: {}", self.uri, chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| format!("reading the answer of {}: {e}", self.uri))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, exchange).await })
            .map_err(|_| {
                OtelError::Export(format!("{} timed out after {:?}", self.uri, self.timeout))
            })?
            .map_err(OtelError::Export)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(OtelError::Export(format!(
                "{} answered {status}: {text}",
                self.uri
            )));
        }
        if let Ok(answer) = ExportMetricsServiceResponse::decode(body) {
            if let Some(partial) = answer.partial_success {
                if partial.rejected_data_points > 0 {
                    return Err(OtelError::Export(format!(
                        "{} rejected {} data points: {}",
                        self.uri, partial.rejected_data_points, partial.error_message
                    )));
                }
            }
        }
        Ok(())
    }
}

/// An error with its causes, which hyper keeps apart ("client error
/// (Connect)" says little without "Connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
