//! The OpenAPI 3 document. Its paths come from the handlers' `#[utoipa::path]` declarations,
//! the same declarations the router is built from, so the two cannot disagree.

use axum::Extension;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::layers::MAX_BODY_BYTES;
use crate::domain::ExperienceId;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "invsync",
        description = "A partner's experience inventory, kept in sync under the partner's rate \
                       limit and audited by a double-entry ledger. Every error is JSON \
                       `{code, message}` with a stable machine `code`; an unknown route answers \
                       404 `not_found` and a wrong method 405 `method_not_allowed`."
    ),
    tags(
        (name = "inventory", description = "Slots, sellable dates and slot history"),
        (name = "sync", description = "Sync status and operator controls"),
        (name = "ledger", description = "Ledger verification"),
        (name = "bookings", description = "Customers' holds, confirmations and cancellations"),
        (name = "octo", description = "An OCTO supplier API (octo.travel): products and \
                                      availability in OCTO's shapes, errors and headers"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerTokens)
)]
pub struct ApiDoc;

/// A Leap id is a positive integer; an OCTO product id a short URL-safe string.
impl utoipa::PartialSchema for ExperienceId {
    fn schema() -> RefOr<Schema> {
        let number = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1));
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!(
                "^[A-Za-z0-9._~-]{{1,{}}}$",
                ExperienceId::MAX_LEN
            )));
        OneOfBuilder::new()
            .item(number)
            .item(text)
            .description(Some(
                "An experience id: a number for a Leap product, a string for an OCTO one",
            ))
            .examples([serde_json::json!(14), serde_json::json!("6b90-tour")])
            .into()
    }
}

impl utoipa::ToSchema for ExperienceId {}

/// The schemes the protected endpoints declare: `Authorization: Bearer
/// $INVSYNC_SERVER__ADMIN_TOKEN` for the admin ones, `$INVSYNC_SERVER__SALES_TOKEN` (or the
/// admin token) for bookings.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        for (name, description) in [
            ("admin_token", "INVSYNC_SERVER__ADMIN_TOKEN"),
            (
                "sales_token",
                "INVSYNC_SERVER__SALES_TOKEN (the admin token is accepted too)",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(description))
                        .build(),
                ),
            );
        }
    }
}

/// The error answers that follow from what an operation is, so no handler has to list them
/// (an operation's own entry for a status wins): any operation can fail inside (500) or
/// outrun `server.request_timeout_seconds` (503); one that needs the admin token refuses a
/// missing or wrong one (401); one that takes a body refuses a malformed (400), oversized
/// (413) or non-JSON (415) one.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, document: &mut Document) {
        let too_large = format!(
            "`payload_too_large`: a body over {} KiB",
            MAX_BODY_BYTES / 1024
        );
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
                .into()
        };
        for (path, item) in document.paths.paths.iter_mut() {
            // OCTO routes refuse in OCTO's shape, each declaring its own answers.
            let octo = path.starts_with("/octo/");
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let mut standard = vec![
                    ("500", "`internal`: a database failure or a bug"),
                    (
                        "503",
                        "`timeout`: no answer within server.request_timeout_seconds",
                    ),
                ];
                if !octo && operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    standard.push(("401", "`unauthorized`: missing or wrong token"));
                }
                if !octo && operation.request_body.is_some() {
                    standard.extend([
                        (
                            "400",
                            "`invalid_body`: not a JSON object of the documented shape",
                        ),
                        ("413", too_large.as_str()),
                        (
                            "415",
                            "`unsupported_media_type`: a body that is not application/json",
                        ),
                    ]);
                }
                let responses = &mut operation.responses.responses;
                for (status, description) in standard {
                    responses
                        .entry(status.into())
                        .or_insert_with(|| error(description));
                }
            }
        }
    }
}

/// The document, serialised once; each answer shares the bytes.
#[derive(Clone)]
pub struct OpenApiJson(Bytes);

impl OpenApiJson {
    /// Completes the router's document and serialises it.
    pub fn new(mut document: Document) -> Self {
        // Here, not among `ApiDoc`'s modifiers: those run before any route is merged in.
        StandardErrors.modify(&mut document);
        // utoipa copies Cargo.toml's `license`, which this crate does not declare.
        document
            .info
            .license
            .take_if(|license| license.name.is_empty());
        let json = document
            .to_json()
            .expect("an OpenAPI document serialises to JSON");
        Self(Bytes::from(json))
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object))
)]
pub async fn openapi(Extension(document): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document.0)
}
