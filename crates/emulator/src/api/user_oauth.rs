//! The user side of Google's OAuth 2.0 server: the authorization endpoint
//! (approving at once for `login_hint`, no UI), the `authorization_code`
//! and `refresh_token` grants, revocation and userinfo.
//!
//! Sources: "Using OAuth 2.0 for Web Server Applications"
//! (<https://developers.google.com/identity/protocols/oauth2/web-server>:
//! parameters of `/o/oauth2/v2/auth`, the code exchange and refresh at
//! `https://oauth2.googleapis.com/token`, `access_type=offline`,
//! `prompt=consent`, "Revoking a token" at
//! `https://oauth2.googleapis.com/revoke` answering 200 or 400),
//! "OAuth 2.0 for Mobile & Desktop Apps"
//! (<https://developers.google.com/identity/protocols/oauth2/native-app>:
//! loopback redirect URIs, `code_challenge`/`code_challenge_method`
//! `S256` or `plain`), "Using OAuth 2.0 to Access Google APIs"
//! (<https://developers.google.com/identity/protocols/oauth2>: refresh
//! token expiration and `invalid_grant`), RFC 6749 (sections 4.1.2, 4.1.3,
//! 5.2), RFC 7636 (PKCE) and RFC 7009 (revocation).

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::gate::{auth_error, bearer};
use super::{Data, Reply};
use crate::error::ApiError;
use crate::users::{
    self, CODE_LIFETIME, Code, Grant, OAuthClient, oauth_error, subject, verifier_matches,
    verifier_well_formed,
};
use crate::{encode_path, lock};

/// Google's own words for a dead refresh token.
const EXPIRED_OR_REVOKED: &str = "Token has been expired or revoked.";

/// An error page, never a redirect: what Google shows when it cannot
/// trust the redirect URI or the client ("Error 400:
/// redirect_uri_mismatch", "Error 401: invalid_client").
fn error_page(status: u16, error: &str, detail: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>Authorization Error</title><h1>Authorization Error</h1>\
             <p>Error {}: {error}</p><p>{}</p>",
            status.as_u16(),
            detail.replace('<', "&lt;")
        ))
}

/// `redirect_uri` with `params` appended to its query.
fn redirect(uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let mut location = uri.to_owned();
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        location.push(separator);
        location.push_str(name);
        location.push('=');
        location.push_str(&encode_path(value));
        separator = '&';
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// `GET /o/oauth2/v2/auth`.
pub(super) async fn authorize(
    data: Data,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    *lock(&data.calls).entry("authorize".into()).or_default() += 1;
    let get = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let mut users = lock(&data.users);
    let Some(client_id) = get("client_id").filter(|id| users.clients.contains_key(*id)) else {
        return error_page(401, "invalid_client", "The OAuth client was not found.");
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    if !users.redirect_allowed(client_id, redirect_uri) {
        return error_page(
            400,
            "redirect_uri_mismatch",
            &format!("redirect_uri: {redirect_uri}"),
        );
    }
    // From here on the redirect URI is trusted: errors go back to it.
    let state = get("state").unwrap_or_default();
    let fail = |error: &str| {
        let mut params = vec![("error", error)];
        if !state.is_empty() {
            params.push(("state", state));
        }
        redirect(redirect_uri, &params)
    };
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type");
    }
    let Some(scope) = get("scope") else {
        return fail("invalid_scope");
    };
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) if !users.require_s256 => None,
        (Some(challenge), Some("S256")) => Some((challenge.to_owned(), "S256".to_owned())),
        // RFC 7636 section 4.3: the method defaults to `plain`.
        (Some(challenge), None | Some("plain")) if !users.require_s256 => {
            Some((challenge.to_owned(), "plain".to_owned()))
        }
        _ => return fail("invalid_request"),
    };
    if challenge
        .as_ref()
        .is_some_and(|(c, _)| !verifier_well_formed(c))
    {
        return fail("invalid_request");
    }
    let Some(account) = get("login_hint")
        .map(str::to_owned)
        .or_else(|| users.default_account.clone())
    else {
        return error_page(
            400,
            "invalid_request",
            "The emulator has no account chooser: send login_hint (or configure default_account).",
        );
    };
    if users.take_denial(&account) {
        return fail("access_denied");
    }
    users.ensure_account(&account);
    let first_consent = !users
        .consented
        .contains(&(account.clone(), client_id.to_owned()));
    let offline = get("access_type") == Some("offline");
    let prompt_consent = get("prompt").is_some_and(|p| p.split(' ').any(|p| p == "consent"));
    let code = format!("4/0emu-{}", uuid::Uuid::new_v4().simple());
    users.codes.insert(
        code.clone(),
        Code {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            account: account.clone(),
            scope: scope.to_owned(),
            challenge,
            refresh: offline && (first_consent || prompt_consent),
            issued: Instant::now(),
            grant: None,
        },
    );
    users.consented.insert((account, client_id.to_owned()));
    let mut params = vec![("code", code.as_str()), ("scope", scope)];
    if !state.is_empty() {
        params.push(("state", state));
    }
    redirect(redirect_uri, &params)
}

/// The client a token request authenticates as: `client_id` and
/// `client_secret` in the form or in HTTP Basic (RFC 6749 section 2.3.1).
fn client(
    users: &users::Users,
    request: &HttpRequest,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<OAuthClient, ApiError> {
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v.trim()).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| {
            v.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    let (id, secret) = match (basic, form_id) {
        (Some((id, secret)), _) => (id, secret),
        (None, Some(id)) => (id.to_owned(), form_secret.unwrap_or_default().to_owned()),
        (None, None) => {
            return Err(oauth_error(
                401,
                "invalid_client",
                "The OAuth client was not found.",
            ));
        }
    };
    match users.clients.get(&id) {
        None => Err(oauth_error(
            401,
            "invalid_client",
            "The OAuth client was not found.",
        )),
        Some(client) if client.client_secret != secret => {
            Err(oauth_error(401, "invalid_client", "Unauthorized"))
        }
        Some(client) => Ok(client.clone()),
    }
}

/// The fields of a token request the user grants read.
pub(super) struct UserGrant<'a> {
    pub grant_type: &'a str,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub refresh_token: Option<&'a str>,
}

/// `grant_type=authorization_code` and `grant_type=refresh_token`.
pub(super) fn token(data: &Data, request: &HttpRequest, form: &UserGrant<'_>) -> Reply {
    let mut users = lock(&data.users);
    let client = client(&users, request, form.client_id, form.client_secret)?;
    let now = Instant::now();
    let (grant, refresh_token) = if form.grant_type == "authorization_code" {
        let code = form.code.unwrap_or_default();
        let Some(issued) = users.codes.get(code).cloned() else {
            return Err(oauth_error(400, "invalid_grant", "Malformed auth code."));
        };
        if issued.client_id != client.client_id {
            return Err(oauth_error(400, "invalid_grant", "Bad Request"));
        }
        if let Some(grant) = issued.grant {
            // A code used twice: whoever holds the first answer's tokens
            // may be an attacker, so they die (RFC 6749 section 4.1.2).
            users.revoke_grant(grant);
            return Err(oauth_error(400, "invalid_grant", "Bad Request"));
        }
        if now.saturating_duration_since(issued.issued) > CODE_LIFETIME {
            return Err(oauth_error(400, "invalid_grant", "Bad Request"));
        }
        // RFC 6749 section 4.1.3: the same redirect_uri as the authorization's.
        if form.redirect_uri != Some(issued.redirect_uri.as_str()) {
            return Err(oauth_error(400, "redirect_uri_mismatch", "Bad Request"));
        }
        if let Some((challenge, method)) = &issued.challenge {
            match form.code_verifier {
                None => {
                    return Err(oauth_error(400, "invalid_grant", "Missing code verifier."));
                }
                Some(verifier)
                    if !verifier_well_formed(verifier)
                        || !verifier_matches(verifier, challenge, method) =>
                {
                    return Err(oauth_error(400, "invalid_grant", "Invalid code verifier."));
                }
                Some(_) => {}
            }
        }
        let refresh_token = issued
            .refresh
            .then(|| format!("1//0emu-{}", uuid::Uuid::new_v4().simple()));
        let grant = users.grants.len();
        users.grants.push(Grant {
            account: issued.account.clone(),
            client_id: client.client_id.clone(),
            scope: issued.scope.clone(),
            refresh_token: refresh_token.clone(),
            revoked: false,
        });
        if let Some(token) = &refresh_token {
            users.refresh.insert(token.clone(), grant);
        }
        if let Some(code) = users.codes.get_mut(code) {
            code.grant = Some(grant);
        }
        (grant, refresh_token)
    } else {
        let token = form.refresh_token.unwrap_or_default();
        let Some(grant) = users.refresh.get(token).copied() else {
            return Err(oauth_error(400, "invalid_grant", EXPIRED_OR_REVOKED));
        };
        match users.grants.get(grant) {
            Some(g) if g.client_id != client.client_id => {
                return Err(oauth_error(401, "unauthorized_client", "Unauthorized"));
            }
            Some(g) if !g.revoked => {}
            _ => return Err(oauth_error(400, "invalid_grant", EXPIRED_OR_REVOKED)),
        }
        (grant, None)
    };
    let access_token = users.new_access_token(grant, now);
    let lifetime = i64::try_from(users.access_lifetime.as_secs()).unwrap_or(i64::MAX);
    let Some(granted) = users.grants.get(grant).cloned() else {
        return Err(oauth_error(500, "server_error", "grant lost"));
    };
    drop(users);
    let mut body = json!({
        "access_token": access_token,
        "expires_in": lifetime,
        "scope": granted.scope,
        "token_type": "Bearer",
    });
    if let Some(token) = refresh_token {
        body["refresh_token"] = json!(token);
    }
    // Google returns an ID token only for identity scopes (web-server
    // guide: "id_token ... returned if the request included an identity
    // scope, such as openid, profile, or email").
    if granted
        .scope
        .split(' ')
        .any(|s| matches!(s, "openid" | "email" | "profile") || s.ends_with("/userinfo.email"))
    {
        body["id_token"] = json!(users::id_token(
            &granted.account,
            &client,
            chrono::Utc::now().timestamp(),
            lifetime
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// `POST /revoke?token=...` (or `token` in a form body).
pub(super) async fn revoke(
    data: Data,
    query: web::Query<HashMap<String, String>>,
    body: web::Bytes,
) -> HttpResponse {
    *lock(&data.calls).entry("revoke".into()).or_default() += 1;
    let form = web::Query::<HashMap<String, String>>::from_query(
        std::str::from_utf8(&body).unwrap_or_default(),
    )
    .map(web::Query::into_inner)
    .unwrap_or_default();
    let token = query.get("token").or_else(|| form.get("token"));
    let revoked = token.is_some_and(|token| {
        let user_token = lock(&data.users).revoke_token(token);
        // A service-account token has no grant behind it: it alone dies.
        user_token || lock(&data.tokens).remove(token).is_some()
    });
    if revoked {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::BadRequest().json(json!({
            "error": "invalid_token",
            "error_description": "Token expired or revoked",
        }))
    }
}

/// `GET /oauth2/v3/userinfo` with a user access token: who the account is,
/// for clients that must not verify the emulator's `id_token` against
/// Google's keys.
pub(super) async fn userinfo(data: Data, request: HttpRequest) -> Reply {
    let account =
        match bearer(&request).map(|token| lock(&data.users).bearer(token, Instant::now())) {
            Some(users::Bearer::Account(account)) => account,
            _ => return Err(auth_error()),
        };
    Ok(HttpResponse::Ok().json(json!({
        "sub": subject(&account),
        "email": account,
        "email_verified": true,
    })))
}
