//! Watch channels: made by `events.watch`, stopped by `channels.stop`, and
//! the notifications each change queues on them.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::Calendars;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub calendar_id: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub token: Option<String>,
    pub address: String,
    pub expiration: DateTime<Utc>,
    pub next_message: u64,
    /// The watch's `eventTypes`: only changes to these types notify
    /// (all types when empty).
    pub event_types: Vec<String>,
    /// The principal that made the watch: only it may stop the channel.
    pub principal: String,
}

/// A notification to deliver, in order, for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel_id: String,
    pub token: Option<String>,
    pub address: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub expiration: DateTime<Utc>,
    pub state: &'static str,
    pub message_number: u64,
}

/// Google delivers push notifications only to HTTPS addresses and refuses
/// others at watch time ("an HTTPS server", push guide:
/// https://developers.google.com/workspace/calendar/api/guides/push).
/// Plain HTTP to a loopback host stays allowed: the emulator delivers only
/// over plain HTTP, to local receivers.
fn webhook_address_allowed(address: &str) -> bool {
    if address.starts_with("https://") {
        return true;
    }
    let Some(rest) = address.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Calendars {
    /// Queues an `exists` notification on every live channel of the
    /// calendar that watches events of this type.
    pub(crate) fn announce(
        &mut self,
        calendar_id: &str,
        event_type: &str,
        now: DateTime<Utc>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for channel in self.channels.values_mut() {
            if channel.calendar_id == calendar_id
                && channel.expiration > now
                && (channel.event_types.is_empty()
                    || channel.event_types.iter().any(|t| t == event_type))
            {
                out.push(notification(channel, "exists"));
            }
        }
        out
    }

    /// A channel on `calendar_id`'s events, made by `principal`.
    pub fn watch(
        &mut self,
        calendar_id: &str,
        principal: &str,
        request: &Value,
        now: DateTime<Utc>,
        max_ttl: chrono::Duration,
        event_types: Vec<String>,
    ) -> Result<(Value, Notification), ApiError> {
        let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text("id")
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .ok_or_else(|| {
                ApiError::bad_request("invalid", "Channel id must be 1 to 64 characters.")
            })?;
        if text("type").as_deref() != Some("web_hook") {
            return Err(ApiError::bad_request(
                "invalid",
                "Channel type must be web_hook.",
            ));
        }
        let address = text("address")
            .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
            .ok_or_else(|| {
                ApiError::bad_request("invalid", "Channel address must be an http(s) URL.")
            })?;
        if !webhook_address_allowed(&address) {
            // Google's reason and message for an http address.
            return Err(ApiError::bad_request(
                "push.webhookUrlNotHttps",
                format!("WebHook callback must be HTTPS: {address}"),
            ));
        }
        let token = text("token");
        if token.as_ref().is_some_and(|t| t.len() > 256) {
            return Err(ApiError::bad_request(
                "invalid",
                "Channel token is longer than 256 characters.",
            ));
        }
        if self.channels.contains_key(&id) {
            return Err(ApiError::bad_request(
                "channelIdNotUnique",
                "Channel id not unique.",
            ));
        }
        let requested = request
            .get("params")
            .and_then(|p| p.get("ttl"))
            .and_then(Value::as_str)
            .and_then(|ttl| ttl.parse::<i64>().ok())
            .map_or(chrono::Duration::days(7), chrono::Duration::seconds);
        let expiration = now + requested.min(max_ttl).max(chrono::Duration::seconds(1));
        let resource_id = format!("res{}", uuid::Uuid::new_v4().simple());
        let resource_uri = format!(
            "{}/calendar/v3/calendars/{}/events?alt=json",
            self.base_url,
            crate::encode_path(calendar_id)
        );
        let mut channel = Channel {
            id: id.clone(),
            calendar_id: calendar_id.to_owned(),
            resource_id: resource_id.clone(),
            resource_uri: resource_uri.clone(),
            token: token.clone(),
            address: address.clone(),
            expiration,
            next_message: 1,
            event_types,
            principal: principal.to_owned(),
        };
        let sync = notification(&mut channel, "sync");
        self.channels.insert(id.clone(), channel);
        let mut body = json!({
            "kind": "api#channel",
            "id": id,
            "resourceId": resource_id,
            "resourceUri": resource_uri,
            // Unix milliseconds as a string, as Google sends it.
            "expiration": expiration.timestamp_millis().to_string(),
        });
        if let Some(token) = token {
            body["token"] = json!(token);
        }
        Ok((body, sync))
    }

    /// `channels.stop` by `principal`. The channel must be named by its id
    /// and resource id, and stopped by the principal that watched: Google's
    /// channels.stop reference
    /// (<https://developers.google.com/calendar/api/v3/reference/channels/stop>)
    /// says nothing of who may stop a channel, and the push guide
    /// (<https://developers.google.com/calendar/api/guides/push>) only that a
    /// channel "is associated both with a particular user and a particular
    /// resource" and that its id is unique within the project. Refusing any
    /// other principal is the conservative reading; the refusal is the
    /// answer for an unknown channel (404 `notFound`, "Channel '<id>' not
    /// found for project."), so a caller cannot tell the two apart.
    pub fn stop(&mut self, principal: &str, request: &Value) -> Result<(), ApiError> {
        let id = request
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let resource_id = request
            .get("resourceId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.channels.get(id) {
            Some(channel)
                if channel.resource_id == resource_id && channel.principal == principal =>
            {
                self.channels.remove(id);
                Ok(())
            }
            _ => Err(ApiError::new(
                404,
                "notFound",
                format!("Channel '{id}' not found for project."),
            )),
        }
    }
}

fn notification(channel: &mut Channel, state: &'static str) -> Notification {
    // Google: message numbers "increase but are not sequential" (push guide,
    // https://developers.google.com/workspace/calendar/api/guides/push), so
    // receivers must not expect +1 steps. The first (`sync`) one is 1.
    let message_number = channel.next_message;
    channel.next_message += rand::rng().random_range(1..=3u64);
    Notification {
        channel_id: channel.id.clone(),
        token: channel.token.clone(),
        address: channel.address.clone(),
        resource_id: channel.resource_id.clone(),
        resource_uri: channel.resource_uri.clone(),
        expiration: channel.expiration,
        state,
        message_number,
    }
}
