//! OCTO's conventions on every `/octo` route: the bearer token refused in OCTO's words, the
//! `Octo-Capabilities` request header read and answered, and bodies refused as `BAD_REQUEST`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::OctoError;
use crate::api::AppState;
use crate::api::control;

pub const OCTO_CAPABILITIES: HeaderName = HeaderName::from_static("octo-capabilities");

/// The one capability this supplier implements.
const PRICING: &str = "octo/pricing";

/// The sales token (or the admin token), as the booking routes take it; a refusal is OCTO's
/// `UNAUTHORIZED`.
pub async fn require_sales(state: State<AppState>, request: Request, next: Next) -> Response {
    control::require_sales(state, request, next)
        .await
        .unwrap_or_else(|refusal| OctoError::from(refusal).into_response())
}

/// The capabilities a request asked for that this supplier applies.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    pub pricing: bool,
}

impl Capabilities {
    /// From `Octo-Capabilities: octo/pricing, octo/content`; unknown ones are not applied.
    fn requested(headers: &HeaderMap) -> Self {
        let pricing = headers
            .get_all(&OCTO_CAPABILITIES)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|capability| capability.trim() == PRICING);
        Self { pricing }
    }

    fn applied(self) -> HeaderValue {
        HeaderValue::from_static(if self.pricing { PRICING } else { "" })
    }
}

/// Reads the requested capabilities for the handler and names those applied in the answer.
pub async fn capabilities(mut request: Request, next: Next) -> Response {
    let capabilities = Capabilities::requested(request.headers());
    request.extensions_mut().insert(capabilities);
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(OCTO_CAPABILITIES, capabilities.applied());
    response
}

/// A JSON object body; anything else is OCTO's `BAD_REQUEST`.
pub struct OctoJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OctoJson<T> {
    type Rejection = OctoError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OctoError> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| OctoError::BadRequest(rejection.body_text()))?;
        // serde would also fill a struct from an array, so look at the first byte.
        let first_byte = body.iter().find(|byte| !byte.is_ascii_whitespace());
        if first_byte != Some(&b'{') {
            return Err(OctoError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        }
        serde_json::from_slice(&body)
            .map(Self)
            .map_err(|error| OctoError::BadRequest(format!("invalid JSON body: {error}")))
    }
}
