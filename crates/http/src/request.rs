//! Request parsing the routes share: JSON bodies with the offending field
//! named, the calendar a request means, `If-Match`.

use actix_web::HttpRequest;
use calsync_domain::Error as DomainError;
use calsync_domain::ids::{CalendarId, Etag};
use serde::Deserialize;

use crate::{AppState, HttpError};

pub(crate) mod rules;

/// Parses a JSON body, naming the offending field (`start.dateTime`) in the error.
pub(crate) fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::InvalidBody {
            field: "body".into(),
            message: "a JSON object is required".into(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
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
