//! `pageToken` decoding: only tokens the API writes decode (they read back
//! as the same text, with a start an event can have); anything else is a
//! 400. Never a panic.
#![no_main]

use actix_web::ResponseError;
use calsync_http::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    match decode::page_token(token) {
        Ok((start, id)) => {
            assert_eq!(format!("{}.{id}", start.timestamp_micros()), token);
            assert!(calsync_domain::event::in_supported_range(start), "{token}");
        }
        Err(error) => assert_eq!(error.status_code().as_u16(), 400, "{token}: {error:?}"),
    }
});
