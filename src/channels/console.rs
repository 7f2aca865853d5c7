//! The `console` provider: prints each message to standard output, for development.
//! It is the one place a code is ever printed; start-up warns when it is configured.
//!
//! A send appends its message to an outbox, and waits (asynchronously) until it is
//! written; one writer thread empties the outbox into standard output. Under load the
//! writer takes everything that piled up while it was writing in one system call, so
//! no worker thread blocks on a slow terminal or pipe, and a send still answers only
//! once its message is out (scripts and tests read the code right after the answer).
//! Messages are written whole and in order.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Call, DeliveryError, Provider, Receipt, Sms};
use crate::config::ProviderName;
use crate::phone::PhoneNumber;

/// Writes `console: sms to +12015550123: BODY` (or `call`) to standard output.
pub struct ConsoleProvider;

/// Past this many bytes waiting, senders wait for the writer (the reader is stuck).
const OUTBOX_LIMIT: usize = 4 << 20;

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    /// The writer is writing a batch taken from `bytes`.
    writing: bool,
    /// Standard output failed; nothing more can be printed.
    broken: Option<String>,
    /// Messages appended so far: the sequence number of the latest.
    appended: u64,
}

struct Outbox {
    queue: Mutex<Queue>,
    /// Signalled when bytes arrive (for the writer) and when a batch is written (for
    /// senders over the limit, and `flush`).
    changed: Condvar,
    /// The sequence number of the latest message written (or given up on).
    written: tokio::sync::watch::Sender<u64>,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_batches(&self) {
        let mut batch = Vec::new();
        loop {
            let upto = {
                let mut queue = self.lock();
                queue.writing = false;
                self.changed.notify_all();
                while queue.bytes.is_empty() {
                    queue = self.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
                batch.clear();
                std::mem::swap(&mut batch, &mut queue.bytes);
                queue.writing = true;
                queue.appended
            };
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&batch).and_then(|()| out.flush()) {
                self.lock().broken = Some(e.to_string());
            }
            drop(out);
            self.written.send_replace(upto);
        }
    }
}

static OUTBOX: OnceLock<&'static Outbox> = OnceLock::new();

fn outbox() -> &'static Outbox {
    OUTBOX.get_or_init(|| {
        let outbox: &'static Outbox = Box::leak(Box::new(Outbox {
            queue: Mutex::default(),
            changed: Condvar::new(),
            written: tokio::sync::watch::Sender::new(0),
        }));
        std::thread::Builder::new()
            .name("console-out".into())
            .spawn(|| outbox.write_batches())
            .expect("a thread for the console provider");
        outbox
    })
}

/// Waits (at most `limit`) until every message sent so far is written: at shutdown.
pub fn flush(limit: Duration) {
    let Some(outbox) = OUTBOX.get() else {
        return;
    };
    let deadline = Instant::now() + limit;
    let mut queue = outbox.lock();
    while !queue.bytes.is_empty() || queue.writing {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || queue.broken.is_some() {
            return;
        }
        queue = outbox
            .changed
            .wait_timeout(queue, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

impl ConsoleProvider {
    async fn print(kind: &str, to: &PhoneNumber, text: &str) -> Result<Receipt, DeliveryError> {
        let outbox = outbox();
        let mut written = outbox.written.subscribe();
        let mine = Self::append(outbox, kind, to, text)?;
        // The writer lives as long as the process: the channel never closes.
        let _ = written.wait_for(|&done| done >= mine).await;
        match &outbox.lock().broken {
            Some(e) => Err(broken(e)),
            None => Ok(Receipt::default()),
        }
    }

    /// Appends one message whole (concurrent sends never interleave); its sequence number.
    fn append(
        outbox: &Outbox,
        kind: &str,
        to: &PhoneNumber,
        text: &str,
    ) -> Result<u64, DeliveryError> {
        let mut queue = outbox.lock();
        while queue.bytes.len() > OUTBOX_LIMIT && queue.broken.is_none() {
            queue = outbox
                .changed
                .wait(queue)
                .unwrap_or_else(|p| p.into_inner());
        }
        if let Some(e) = &queue.broken {
            return Err(broken(e));
        }
        let was_empty = queue.bytes.is_empty();
        let _ = writeln!(queue.bytes, "console: {kind} to {}: {text}", to.e164());
        queue.appended += 1;
        if was_empty {
            outbox.changed.notify_all();
        }
        Ok(queue.appended)
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
        Self::print("sms", sms.to, sms.body).await
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        Self::print("call", call.to, &call.script.text()).await
    }
}
