//! The `console` provider: prints each message to standard output, for development.
//! It is the one place a code is ever printed; start-up warns when it is configured.

use std::io::Write;

use async_trait::async_trait;

use super::{Call, DeliveryError, Provider, Receipt, Sms};
use crate::config::ProviderName;
use crate::phone::PhoneNumber;

/// Writes `console: sms to +12015550123: BODY` (or `call`) to standard output.
pub struct ConsoleProvider;

impl ConsoleProvider {
    fn print(kind: &str, to: &PhoneNumber, text: &str) -> Result<Receipt, DeliveryError> {
        let line = format!("console: {kind} to {}: {text}\n", to.e164());
        // One write of the whole message under the lock, so concurrent sends never interleave.
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| {
                DeliveryError::Unavailable(format!("cannot write to standard output: {e}"))
            })?;
        Ok(Receipt::default())
    }
}

#[async_trait]
impl Provider for ConsoleProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Console
    }

    async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        Self::print("sms", sms.to, sms.body)
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        Self::print("call", call.to, &call.script.text())
    }
}
