//! The domain: the verification record, its statuses and channels, and the pure rules
//! (send limits, code checks) over it, with the time passed in. Everything else depends on
//! this; it depends only on `code`, `phone` and `i18n` (a verification has a locale).

pub mod guard;
pub mod model;
pub mod rules;
pub mod window;

pub use model::{
    Channel, Checker, ProviderCheck, RetryAfter, SendAttempt, Status, Verdict, Verification,
    VoiceTicket,
};
