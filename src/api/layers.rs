//! The middleware every request passes through, outermost first: a request id, a trace span,
//! HTTP metrics, a panic guard, a timeout and a body size limit. Admission comes before all of
//! them, in the server loop (`super::server`), so a request waiting for a slot holds as little
//! memory as it can, and a shed one costs no log line (`invsync_http_shed_total` counts it).
//! Each rejection made here is an [`AppError`], so a client gets JSON whatever goes wrong.

use std::any::Any;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, Response};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::Span;

use super::error::AppError;
use crate::telemetry::names;

/// The largest request body read; the API's bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `route` label and log field of a request no route matched (its raw path would let
/// anyone mint new metric series).
const UNMATCHED_ROUTE: &str = "unmatched";

pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Wraps every route and the fallbacks of `router` in the stack. `Router::layer` runs after
/// routing, so the span and the metrics see the matched route template.
pub fn apply<S>(router: Router<S>, request_timeout: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        ServiceBuilder::new()
            // Keeps an `x-request-id` a gateway already set; otherwise makes a UUID.
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(LogResponse)
                    .on_failure(()),
            )
            .layer(middleware::from_fn(record_metrics))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(middleware::from_fn_with_state(
                request_timeout,
                enforce_timeout,
            ))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

fn matched_route(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http_request",
        method = %request.method(),
        route = matched_route(request),
        request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

/// Records the status and latency on the request's span and logs one line per request.
#[derive(Clone, Copy)]
struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        span.record("status", status.as_u16());
        span.record(
            "latency_ms",
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        );
        if status.is_server_error() {
            tracing::error!("request failed");
        } else {
            tracing::info!("request finished");
        }
    }
}

async fn record_metrics(request: Request, next: Next) -> axum::response::Response {
    let method = method_label(request.method());
    let route = matched_route(&request).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_str().to_owned()),
    ];
    metrics::counter!(names::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(names::HTTP_REQUEST_DURATION, &labels).record(started.elapsed());
    response
}

/// Standard methods by name; any other token a client invents is `other`, so it cannot mint
/// metric series.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    STANDARD
        .iter()
        .find(|standard| *standard == method)
        .map_or("other", |standard| standard.as_str())
}

async fn enforce_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Result<axum::response::Response, AppError> {
    tokio::time::timeout(limit, next.run(request))
        .await
        .map_err(|_| AppError::Timeout(limit))
}

/// A handler that panicked is a bug: log it, answer `500 internal`, keep serving.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!(panic = message, "request handler panicked");
    AppError::Internal.into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn panics() -> &'static str {
        panic!("a bug in a handler")
    }

    async fn sleeps() -> &'static str {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "late"
    }

    async fn call(router: Router, path: &str) -> (StatusCode, serde_json::Value, bool) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let has_request_id = response.headers().contains_key(REQUEST_ID_HEADER);
        let body = axum::body::to_bytes(response.into_body(), MAX_BODY_BYTES)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&body).expect("JSON body"),
            has_request_id,
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_json_500_and_the_service_keeps_serving() {
        let router = apply(
            Router::new()
                .route("/panic", get(panics))
                .route("/ok", get(|| async { axum::Json("fine") })),
            Duration::from_secs(5),
        );
        let (status, body, has_request_id) = call(router.clone(), "/panic").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], "internal");
        assert!(has_request_id);
        let (status, body, _) = call(router, "/ok").await;
        assert_eq!((status, body), (StatusCode::OK, serde_json::json!("fine")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_handler_gets_a_json_503_timeout() {
        let router = apply(
            Router::new().route("/slow", get(sleeps)),
            Duration::from_secs(2),
        );
        let (status, body, _) = call(router, "/slow").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "timeout");
    }

    #[test]
    fn invented_methods_share_one_metric_label() {
        let invented = Method::from_bytes(b"BREW").expect("a token");
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
