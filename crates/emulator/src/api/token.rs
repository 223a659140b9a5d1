//! The OAuth token endpoint: service-account JWT assertions here, the
//! per-user grants in `user_oauth`.

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
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

/// OAuth endpoints answer errors in OAuth's shape (RFC 6749 section 5.2),
/// not the Calendar API's.
pub(super) async fn token(
    data: Data,
    request: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    {
        let mut calls = lock(&data.calls);
        *calls.entry("token".into()).or_default() += 1;
        // Each grant type apart too: a bench counts users' refreshes.
        let kind = match form.grant_type.as_str() {
            "refresh_token" => "token.refresh_token",
            "authorization_code" => "token.authorization_code",
            _ => "token.jwt_bearer",
        };
        *calls.entry(kind.into()).or_default() += 1;
    }
    match issue_token(&data, &request, &form) {
        Ok(response) => response,
        Err(error) => HttpResponse::build(actix_web::ResponseError::status_code(&error))
            .json(json!({"error": error.reason, "error_description": error.message})),
    }
}

fn issue_token(data: &Data, request: &HttpRequest, form: &TokenForm) -> Reply {
    if matches!(
        form.grant_type.as_str(),
        "authorization_code" | "refresh_token"
    ) {
        return super::user_oauth::token(
            data,
            request,
            &super::user_oauth::UserGrant {
                grant_type: &form.grant_type,
                client_id: form.client_id.as_deref(),
                client_secret: form.client_secret.as_deref(),
                code: form.code.as_deref(),
                redirect_uri: form.redirect_uri.as_deref(),
                code_verifier: form.code_verifier.as_deref(),
                refresh_token: form.refresh_token.as_deref(),
            },
        );
    }
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
                user: false,
            },
            |claims| claims.principal(),
        )
    };
    lock(&data.tokens).insert(token.clone(), principal);
    Ok(HttpResponse::Ok()
        .json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})))
}
