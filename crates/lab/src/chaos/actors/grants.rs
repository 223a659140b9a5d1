//! Users' own Google accounts, connected through grants. Each account's
//! calendar is managed through its grant and written by an API writer of
//! its own. The revoker plays the users: one removes calsync's access in
//! their Google account (every token of the grant dies at once), edits
//! their calendar meanwhile, and a while later connects again through the
//! redirect flow. Writes made while the grant needed reconnecting must
//! wait and land, the remote edits must reach the mirror, and the same
//! account must get the same grant back.

use std::sync::Arc;

use serde_json::json;

use super::remote::admin_changes;
use super::shared::*;
use crate::chaos::rng::Rng;

/// Accounts connected through grants, beside the service account's `primary`.
pub const GRANT_ACCOUNTS: usize = 2;
/// The OAuth client registered at the emulator and given to the server.
pub const OAUTH_CLIENT_ID: &str = "chaos-client.apps.googleusercontent.com";
pub const OAUTH_CLIENT_SECRET: &str = "chaos-oauth-client-secret-0123456789";
/// Events each account has before it connects.
const SEEDED_PER_ACCOUNT: usize = 5;
/// Access tokens this short make the server refresh during the run, as
/// it would every hour in production.
const ACCESS_TOKEN_SECS: u64 = 20;
/// Connect flows tried before giving up on one (a server kill can end a
/// flow midway: its state is then spent or lost, and the user starts over).
const CONNECT_ATTEMPTS: usize = 20;

/// The accounts' emails; each account's calendar is its primary, named by it.
pub fn accounts() -> Vec<String> {
    (0..GRANT_ACCOUNTS)
        .map(|i| format!("chaos.user{i}@example.com"))
        .collect()
}

/// Registers the OAuth client, gives each account a few events, connects
/// each through the redirect flow and manages its calendar through the grant.
pub async fn connect_all(shared: &Shared) -> Result<(), String> {
    let redirect = format!("{}/calendar/grants/google/callback", shared.server);
    expect_ok(
        shared
            .admin(
                "POST",
                "/oauth/clients",
                Some(&json!({
                    "clientId": OAUTH_CLIENT_ID,
                    "clientSecret": OAUTH_CLIENT_SECRET,
                    "redirectUris": [redirect],
                })),
            )
            .await,
        "registering the OAuth client",
    )?;
    expect_ok(
        shared
            .admin(
                "PUT",
                "/oauth/access-token-lifetime",
                Some(&json!({ "seconds": ACCESS_TOKEN_SECS })),
            )
            .await,
        "shortening access tokens",
    )?;
    for account in &shared.accounts {
        expect_ok(
            shared
                .admin(
                    "PUT",
                    &format!("/users/{account}/calendars/{account}"),
                    Some(&json!({ "summary": "chaos user" })),
                )
                .await,
            "creating the account's calendar",
        )?;
        expect_ok(
            shared
                .admin(
                    "POST",
                    &format!("/calendars/{account}/seed"),
                    Some(&json!({ "count": SEEDED_PER_ACCOUNT })),
                )
                .await,
            "seeding the account's calendar",
        )?;
        let grant = connect(shared, account).await?;
        lock(&shared.grants).insert(account.clone(), grant.clone());
        match shared
            .call_server(
                "POST",
                "/calendar/calendars",
                &[],
                Some(&json!({ "calendarId": account, "grant": grant })),
            )
            .await
        {
            Answer::Acked(_) => {}
            Answer::Refused { reply, .. } => {
                return Err(format!(
                    "managing {account} through {grant}: {}",
                    reply.brief()
                ));
            }
            Answer::GaveUp(last) => return Err(format!("managing {account}: {last}")),
        }
    }
    Ok(())
}

fn expect_ok(reply: Result<crate::harness::net::Reply, String>, what: &str) -> Result<(), String> {
    match reply {
        Ok(reply) if reply.status < 300 => Ok(()),
        Ok(reply) => Err(format!("{what}: {}", reply.brief())),
        Err(error) => Err(format!("{what}: {error}")),
    }
}

/// The user connects their account as a browser would: calsync starts
/// the authorization, Google approves it for the hinted account and
/// redirects back with a code, calsync's callback exchanges it. Starts
/// over when a kill ends a flow midway. Answers the grant's id.
pub async fn connect(shared: &Shared, account: &str) -> Result<String, String> {
    let mut last = String::from("never tried");
    for _ in 0..CONNECT_ATTEMPTS {
        if shared.giving_up() {
            break;
        }
        let started = match shared
            .call_server(
                "POST",
                "/calendar/grants/google",
                &[],
                Some(&json!({ "loginHint": account })),
            )
            .await
        {
            Answer::Acked(reply) => reply,
            Answer::Refused { reply, .. } => {
                return Err(format!("starting to connect {account}: {}", reply.brief()));
            }
            Answer::GaveUp(error) => return Err(format!("starting to connect {account}: {error}")),
        };
        let Some(url) = started.body["authorizationUrl"].as_str() else {
            return Err(format!("no authorizationUrl: {}", started.brief()));
        };
        let location = match shared.http.send("GET", url, &[], None).await {
            Ok(reply) if reply.status == 302 => reply.location.unwrap_or_default(),
            Ok(reply) => {
                last = format!("the consent answered {}", reply.brief());
                continue;
            }
            Err(error) => {
                last = format!("the consent: {error}");
                continue;
            }
        };
        let Some((_, query)) = location.split_once("/calendar/grants/google/callback") else {
            return Err(format!("Google redirected elsewhere: {location}"));
        };
        let path = format!("/calendar/grants/google/callback{query}");
        match shared.call_server("GET", &path, &[], None).await {
            Answer::Acked(reply) => {
                let status = reply.body["status"].as_str().unwrap_or_default();
                if status != "active" {
                    return Err(format!("{account} connected as {}", reply.brief()));
                }
                return reply.body["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("a grant without an id: {}", reply.brief()));
            }
            // An earlier attempt may have spent the state before the kill
            // took its answer: the user clicks "connect" again.
            Answer::Refused { reply, retried } if retried => {
                shared.count("grant_connect_restarted");
                last = reply.brief();
            }
            Answer::Refused { reply, .. } => {
                return Err(format!("the callback for {account}: {}", reply.brief()));
            }
            Answer::GaveUp(error) => last = error,
        }
    }
    Err(format!("{account} could not connect: {last}"))
}

/// The users: one at a time revokes calsync's access in their Google
/// account, edits their calendar while calsync cannot read it, and
/// connects again, which must restore the same grant. Every revoked
/// account is connected again before this ends.
pub async fn revoker(shared: Arc<Shared>, mut rng: Rng) {
    while !shared.stopping() {
        pause(&shared, rng.range(2000, 7000)).await;
        if shared.stopping() {
            break;
        }
        let Some(account) = rng.pick(&shared.accounts).cloned() else {
            return;
        };
        match shared
            .admin("POST", &format!("/oauth/accounts/{account}/revoke"), None)
            .await
        {
            Ok(reply) if reply.status < 300 => {
                shared.count("grant_revoked");
                shared.mark(format!("{account} revoked calsync's access"));
            }
            Ok(reply) => {
                shared.fail(format!("revoking {account}: {}", reply.brief()));
                continue;
            }
            Err(error) => {
                shared.fail(format!("revoking {account}: {error}"));
                continue;
            }
        }
        pause(&shared, rng.range(500, 3000)).await;
        if rng.chance(0.6) {
            // Edits calsync cannot see until the account is connected again
            // (the remote actor's list of live events is not kept here).
            admin_changes(&shared, &account, &mut Vec::new(), &mut rng).await;
        }
        pause(&shared, rng.range(500, 4000)).await;
        let known = lock(&shared.grants).get(&account).cloned();
        match connect(&shared, &account).await {
            Ok(grant) if Some(&grant) == known.as_ref() => {
                shared.count("grant_reconnected");
                shared.mark(format!("{account} connected again ({grant})"));
            }
            Ok(grant) => shared.fail(format!(
                "{account} connected again as grant {grant}, not its grant {known:?}"
            )),
            Err(error) => shared.fail(format!("reconnecting {account}: {error}")),
        }
    }
}

/// Every grant is active once the run converged.
pub async fn verify(shared: &Shared) -> Result<(), String> {
    let listed = shared.get("/calendar/grants").await?;
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let known = lock(&shared.grants).clone();
    for (account, id) in &known {
        match items.iter().find(|g| g["id"].as_str() == Some(id.as_str())) {
            Some(grant) if grant["status"] == "active" => {}
            Some(grant) => {
                return Err(format!("{account}'s grant {id} ended the run as {grant}"));
            }
            None => return Err(format!("{account}'s grant {id} is not listed")),
        }
    }
    Ok(())
}
