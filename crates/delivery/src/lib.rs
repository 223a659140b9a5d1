//! calsync's outbound webhook adapters:
//!
//! - [`HttpWebhookSender`] ([`calsync_domain::ports::WebhookSender`]): POSTs
//!   deliveries over HTTPS to public addresses only, connecting to the
//!   address it vetted (no second DNS lookup), following no redirects.
//! - [`SealingKeeper`] ([`calsync_domain::ports::SecretKeeper`]): seals
//!   webhook signing secrets with AES-256-GCM under a rotating key ring.

mod address;
mod keeper;
mod sender;

pub use keeper::{DEVELOPMENT_KEY_ID, SealingKeeper};
pub use sender::{HttpWebhookSender, MAX_RESPONSE_BODY, SenderPolicy, USER_AGENT_VALUE};
