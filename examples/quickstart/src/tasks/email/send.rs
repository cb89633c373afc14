//! `email:send`: writes the message to the outbox folder (`.taskyard/outbox/`, one file
//! per run), standing in for a call to a mail server. Durable: however it is started, the
//! run is in the store before the caller is answered, any live instance sends it, a failed
//! attempt waits for its retry in the store, and a crashed instance's run is sent by
//! another one. `POST /api/signup` enqueues it with a delay.

use std::time::Duration;

use serde::Deserialize;
use taskyard::prelude::*;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Email {
    /// The recipient.
    pub to: String,
    /// The subject line.
    pub subject: String,
}

pub fn task() -> Task {
    Task::new(|cx: TaskContext, email: Email| async move {
        let outbox = taskyard::config::data_dir().join("outbox");
        let file = outbox.join(format!("{}.eml", cx.run_id()));
        let message = format!("To: {}\nSubject: {}\n\nWelcome aboard!\n", email.to, email.subject);
        tokio::fs::create_dir_all(&outbox)
            .await
            .and(tokio::fs::write(&file, message).await)
            .map_err(|error| TaskError::new(format!("cannot write {}: {error}", file.display())))?;
        Ok::<_, TaskError>(json!({ "sent_to": email.to, "file": file }))
    })
    .description("Sends an e-mail (to the outbox folder); durable, retried 3 times")
    .retry(Retry::exponential(3).initial(Duration::from_secs(1)))
    .durable()
}
