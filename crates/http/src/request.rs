//! Request parsing the routes share: JSON bodies with the offending field
//! named, the calendar a request means, `If-Match`.

use actix_web::HttpRequest;
use calsync_domain::Error as DomainError;
use calsync_domain::ids::{CalendarId, Etag};
use serde::Deserialize;

use crate::{AppState, HttpError};

pub(crate) mod rules;
mod strict;

/// Parses a JSON body, naming the offending field (`start.dateTime`) in the error.
pub(crate) fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::InvalidBody {
            field: "body".into(),
            message: "a JSON object is required".into(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value =
        serde_path_to_error::deserialize(strict::Strict(&mut deserializer)).map_err(|error| {
            let path = error.path().to_string();
            HttpError::InvalidBody {
                field: if path == "." || path == "?" {
                    "body".into()
                } else {
                    path
                },
                message: error.into_inner().to_string(),
            }
        })?;
    // One JSON value and nothing after it (`{..}{}` is not a body).
    deserializer.end().map_err(|error| HttpError::InvalidBody {
        field: "body".into(),
        message: error.to_string(),
    })?;
    Ok(value)
}

/// [`parse_body`] for bodies that may be left empty (meaning "defaults").
pub(crate) fn parse_optional_body<T: for<'de> Deserialize<'de>>(
    body: &[u8],
) -> Result<Option<T>, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        parse_body(body).map(Some)
    }
}

pub(crate) fn calendar_or_default(
    state: &AppState,
    requested: Option<&str>,
) -> Result<CalendarId, HttpError> {
    match (requested, &state.default_calendar) {
        (Some(id), _) => Ok(CalendarId::new(id)?),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(DomainError::invalid(
            "calendarId",
            "is required (no default calendar is configured)",
        )
        .into()),
    }
}

pub(crate) fn if_match(request: &HttpRequest) -> Result<Option<Etag>, HttpError> {
    let Some(value) = request.headers().get(actix_web::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| DomainError::InvalidHeader {
        header: "If-Match",
        reason: "must be visible ASCII".into(),
    })?;
    // `*` matches any current representation: no precondition.
    if value.trim() == "*" {
        return Ok(None);
    }
    Etag::new(value.trim()).map(Some).map_err(|error| {
        DomainError::InvalidHeader {
            header: "If-Match",
            reason: error.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    struct Item {
        method: String,
        minutes: u32,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Item>,
    }

    fn field_of(body: &str) -> String {
        match parse_body::<Outer>(body.as_bytes()) {
            Err(HttpError::InvalidBody { field, .. }) => field,
            other => panic!("{body} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn a_struct_comes_from_an_object_only_at_any_depth() {
        // Serde's derived visitors would take these arrays field by field.
        assert_eq!(field_of(r#"[null]"#), "body");
        assert_eq!(field_of(r#"{"inner": []}"#), "inner");
        assert_eq!(
            field_of(r#"{"inner": {"items": [["popup", 10]]}}"#),
            "inner.items[0]"
        );
        assert_eq!(field_of(r#"{"list": [["email", 5]]}"#), "list[0]");
    }

    #[test]
    fn objects_still_parse_through_the_wrapper() {
        let parsed: Outer = parse_body(
            br#"{"inner": {"flag": true, "items": [{"method": "popup", "minutes": 10}]},
                 "list": [{"method": "email", "minutes": 5}]}"#,
        )
        .unwrap();
        let inner = parsed.inner.unwrap();
        assert!(inner.flag);
        assert_eq!(inner.items[0].method, "popup");
        assert_eq!(inner.items[0].minutes, 10);
        assert_eq!(parsed.list[0].minutes, 5);
        // Duplicate keys are still refused, as serde_json's struct path does.
        assert!(parse_body::<Outer>(br#"{"list": [], "list": []}"#).is_err());
    }
}
