//! `/calendar/events`: the application's events API. Bodies use Google's
//! event shape ([`body`]), decoded into domain values ([`decode`]) by the
//! [`handlers`].

pub(crate) mod body;
mod decode;
mod handlers;

pub use body::*;
pub(crate) use decode::instant;
pub use decode::{decode_create_body, decode_patch_body, parse_page_token};
pub use handlers::*;
