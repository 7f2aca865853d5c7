//! The `console` provider: prints each message to standard output, for development.
//! It is the one place a code is ever printed; start-up warns when it is configured.
//!
//! Sends commit in groups: a send appends its message to a shared buffer; if nobody is
//! writing, it writes the whole buffer itself, otherwise it waits (asynchronously) for
//! the writer of the moment, which takes everything appended meanwhile in its next
//! system call. Under load one `write` carries many messages; a send still answers only
//! once its message is out, so scripts and tests can read the code right after the
//! answer. Messages are written whole and in order.

use std::io::Write;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Call, DeliveryError, Provider, Receipt, Sms};
use crate::config::ProviderName;
use crate::phone::PhoneNumber;

/// Writes `console: sms to +12015550123: BODY` (or `call`) to standard output.
pub struct ConsoleProvider {
    outbox: Mutex<Outbox>,
    /// The sequence number of the latest message written (or given up on).
    written: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// Messages appended so far: the sequence number of the latest.
    appended: u64,
    /// A send is writing a batch taken from `bytes`.
    writing: bool,
    /// Standard output failed; nothing more can be printed.
    broken: Option<String>,
}

/// What a send does after appending its message.
enum Turn {
    /// Write the buffer (which ends with this message), then what was appended meanwhile.
    Write(Vec<u8>, u64),
    /// Wait until this message is written by whoever writes now.
    Wait(u64),
}

impl Default for ConsoleProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleProvider {
    pub fn new() -> Self {
        Self {
            outbox: Mutex::default(),
            written: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn print(
        &self,
        kind: &str,
        to: &PhoneNumber,
        text: &str,
    ) -> Result<Receipt, DeliveryError> {
        let mut written = self.written.subscribe();
        let mine = match self.append(kind, to, text)? {
            Turn::Wait(mine) => mine,
            Turn::Write(mut batch, mine) => {
                // Write, then take what was appended meanwhile, until nothing is left.
                let mut upto = mine;
                loop {
                    self.write(&batch);
                    let mut outbox = self.lock();
                    if outbox.broken.is_some() {
                        // Nothing more will be written: release every waiter.
                        upto = outbox.appended;
                    }
                    self.written.send_replace(upto);
                    if outbox.bytes.is_empty() || outbox.broken.is_some() {
                        outbox.writing = false;
                        break;
                    }
                    batch.clear();
                    std::mem::swap(&mut batch, &mut outbox.bytes);
                    upto = outbox.appended;
                }
                mine
            }
        };
        // The sender lives as long as `self`: the channel never closes.
        let _ = written.wait_for(|&done| done >= mine).await;
        match &self.lock().broken {
            Some(e) => Err(broken(e)),
            None => Ok(Receipt::default()),
        }
    }

    /// Appends one message whole (concurrent sends never interleave).
    fn append(&self, kind: &str, to: &PhoneNumber, text: &str) -> Result<Turn, DeliveryError> {
        let mut outbox = self.lock();
        if let Some(e) = &outbox.broken {
            return Err(broken(e));
        }
        let _ = writeln!(outbox.bytes, "console: {kind} to {}: {text}", to.e164());
        outbox.appended += 1;
        let mine = outbox.appended;
        if outbox.writing {
            return Ok(Turn::Wait(mine));
        }
        outbox.writing = true;
        Ok(Turn::Write(std::mem::take(&mut outbox.bytes), mine))
    }

    fn write(&self, batch: &[u8]) {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(batch).and_then(|()| out.flush()) {
            self.lock().broken = Some(e.to_string());
        }
    }
}

fn broken(e: &str) -> DeliveryError {
    DeliveryError::Unavailable(format!("cannot write to standard output: {e}"))
}

#[async_trait]
impl Provider for ConsoleProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Console
    }

    async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        self.print("sms", sms.to, sms.body).await
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        self.print("call", call.to, &call.script.text()).await
    }
}
