//! The domain: the verification record, its statuses and channels, and the pure rules
//! (send limits, code checks) over it, with the time passed in. Everything else depends on
//! this; it depends only on `code` and `phone`.

pub mod guard;
pub mod model;
pub mod rules;
pub mod window;

pub use model::{Channel, RetryAfter, SendAttempt, Status, Verification, VoiceTicket};
