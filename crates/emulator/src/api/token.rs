//! The OAuth token endpoint.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{Data, Reply};
use crate::error::ApiError;
use crate::quota::Principal;
use crate::{lock, oauth};

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: String,
    assertion: Option<String>,
}

/// OAuth endpoints answer errors in OAuth's shape (RFC 6749 section 5.2),
/// not the Calendar API's.
pub(super) async fn token(
    data: Data,
    request: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    *lock(&data.calls).entry("token".into()).or_default() += 1;
    match issue_token(&data, &request, &form) {
        Ok(response) => response,
        Err(error) => HttpResponse::build(actix_web::ResponseError::status_code(&error))
            .json(json!({"error": error.reason, "error_description": error.message})),
    }
}

fn issue_token(data: &Data, request: &HttpRequest, form: &TokenForm) -> Reply {
    if form.grant_type != oauth::JWT_BEARER {
        return Err(ApiError::new(
            400,
            "unsupported_grant_type",
            "Invalid grant_type",
        ));
    }
    let assertion = form.assertion.as_deref().unwrap_or_default();
    let token: String = format!("emu-{}", uuid::Uuid::new_v4().simple());
    let principal = if let Some(key) = &data.verifying_key {
        let info = request.connection_info();
        let audience = format!("{}://{}/token", info.scheme(), info.host());
        oauth::verify_assertion(assertion, key, &audience, chrono::Utc::now().timestamp())?
            .principal()
    } else if assertion.is_empty() {
        return Err(ApiError::new(400, "invalid_grant", "missing assertion"));
    } else {
        // Open auth verifies nothing, but a readable assertion still names
        // its principal; an unreadable one makes the token its own.
        oauth::peek_claims(assertion).map_or_else(
            || Principal {
                name: token.clone(),
                service_account: false,
            },
            |claims| claims.principal(),
        )
    };
    lock(&data.tokens).insert(token.clone(), principal);
    Ok(HttpResponse::Ok()
        .json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})))
}
