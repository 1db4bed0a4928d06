//! Notifications about a job's quarantine: a webhook (JSON POST) and SMTP mail (lettre).
//!
//! Following Entra, one notification is sent when a job enters quarantine and one more each
//! time the reason changes; scimsync also notifies when the job leaves quarantine and when it
//! is disabled after weeks in quarantine. Messages carry the job name, the reason and the
//! error text, never a token or a password. A failed notification is logged and never stops
//! or delays the job.

use crate::quarantine::QuarantineReason;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use scimsync_config::Notifications;
use scimsync_core::{ErrorCode, Secret};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NotificationEvent {
    /// The job entered quarantine.
    Quarantined,
    /// Still quarantined, for another reason.
    ReasonChanged,
    /// A cycle succeeded (or an admin restarted the job): quarantine lifted.
    Released,
    /// Quarantined longer than the limit: no more cycles until an admin starts the job.
    Disabled,
}

/// What is sent (the webhook's JSON body; the mail's text is made from it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub event: NotificationEvent,
    pub job: String,
    pub reason: Option<QuarantineReason>,
    pub previous_reason: Option<QuarantineReason>,
    pub error_code: Option<ErrorCode>,
    pub error: Option<String>,
    pub series_began: Option<DateTime<Utc>>,
    pub next_attempt: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

impl Notification {
    pub fn subject(&self) -> String {
        let reason = self.reason.or(self.previous_reason);
        let reason = reason.map(|r| r.as_str()).unwrap_or("");
        match self.event {
            NotificationEvent::Quarantined => {
                format!("scimsync: job {} is in quarantine ({reason})", self.job)
            }
            NotificationEvent::ReasonChanged => {
                format!(
                    "scimsync: job {} is still in quarantine, now {reason}",
                    self.job
                )
            }
            NotificationEvent::Released => {
                format!("scimsync: job {} left quarantine", self.job)
            }
            NotificationEvent::Disabled => format!(
                "scimsync: job {} was disabled after too long in quarantine ({reason})",
                self.job
            ),
        }
    }

    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.subject());
        let mut line = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push_str(&format!("{k}: {v}\n"));
            }
        };
        line("Job", Some(self.job.clone()));
        line("Reason", self.reason.map(|r| r.to_string()));
        line(
            "Previous reason",
            self.previous_reason.map(|r| r.to_string()),
        );
        line("Error code", self.error_code.map(|c| c.to_string()));
        line("Error", self.error.clone());
        line(
            "Quarantined since",
            self.series_began.map(|t| t.to_rfc3339()),
        );
        line("Next attempt", self.next_attempt.map(|t| t.to_rfc3339()));
        line("At", Some(self.at.to_rfc3339()));
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("webhook: {0}")]
    Webhook(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("notification settings: {0}")]
    Config(String),
}

/// Where notifications go. Tests use a loopback webhook or a recording notifier.
pub trait Notifier: Send + Sync {
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>>;
}

/// Sends nothing (a job without notification settings).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify<'a>(&'a self, _n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async { Ok(()) })
    }
}

/// POSTs the notification as JSON, with `Authorization: Bearer` when a token is set.
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: String,
    token: Option<Secret>,
}

impl WebhookNotifier {
    pub fn new(url: &str, token: Option<Secret>) -> Result<Self, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| NotifyError::Webhook(e.to_string()))?;
        Ok(WebhookNotifier {
            client,
            url: url.to_string(),
            token,
        })
    }
}

impl Notifier for WebhookNotifier {
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let mut req = self.client.post(&self.url).json(n);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t.expose());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| NotifyError::Webhook(format!("{}: {e}", self.url)))?;
            if !resp.status().is_success() {
                return Err(NotifyError::Webhook(format!(
                    "{} answered {}",
                    self.url,
                    resp.status()
                )));
            }
            Ok(())
        })
    }
}

/// Mails the notification through an SMTP relay.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// The mail for a notification (separate from sending, so it can be tested offline).
pub fn build_message(
    n: &Notification,
    from: &Mailbox,
    to: &[Mailbox],
) -> Result<Message, NotifyError> {
    let mut b = Message::builder().from(from.clone()).subject(n.subject());
    for t in to {
        b = b.to(t.clone());
    }
    b.header(ContentType::TEXT_PLAIN)
        .body(n.text())
        .map_err(|e| NotifyError::Mail(e.to_string()))
}

fn mailbox(s: &str) -> Result<Mailbox, NotifyError> {
    s.parse()
        .map_err(|e| NotifyError::Config(format!("invalid mail address {s:?}: {e}")))
}

impl SmtpNotifier {
    /// Port 465 uses implicit TLS; otherwise STARTTLS when `starttls` (the default), else a
    /// plain connection (only sensible for a relay on the same host).
    pub fn from_config(smtp: &scimsync_config::Smtp) -> Result<Self, NotifyError> {
        let err = |e: lettre::transport::smtp::Error| NotifyError::Config(e.to_string());
        let mut builder = if smtp.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(err)?
        } else if smtp.port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(err)?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        };
        builder = builder
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            let password = password
                .resolve()
                .map_err(|e| NotifyError::Config(format!("smtp.password: {e}")))?;
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(SmtpNotifier {
            transport: builder.build(),
            from: mailbox(&smtp.from)?,
            to: smtp
                .to
                .iter()
                .map(|t| mailbox(t))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl Notifier for SmtpNotifier {
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let msg = build_message(n, &self.from, &self.to)?;
            self.transport
                .send(msg)
                .await
                .map_err(|e| NotifyError::Mail(e.to_string()))?;
            Ok(())
        })
    }
}

/// Sends to every configured channel; one failing channel does not stop the others.
pub struct AllNotifiers(pub Vec<Arc<dyn Notifier>>);

impl Notifier for AllNotifiers {
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let mut first_error = None;
            for channel in &self.0 {
                if let Err(e) = channel.notify(n).await {
                    tracing::warn!(job = %n.job, error = %e, "notification failed");
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

/// The notifier a job's `[notifications]` describe (nothing configured → [`NoNotifier`]).
pub fn from_config(cfg: &Notifications) -> Result<Arc<dyn Notifier>, NotifyError> {
    let mut channels: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(url) = &cfg.webhook_url {
        let token = match &cfg.webhook_token {
            Some(t) => Some(
                t.resolve()
                    .map_err(|e| NotifyError::Config(format!("webhook_token: {e}")))?,
            ),
            None => None,
        };
        channels.push(Arc::new(WebhookNotifier::new(url, token)?));
    }
    if let Some(smtp) = &cfg.smtp {
        channels.push(Arc::new(SmtpNotifier::from_config(smtp)?));
    }
    Ok(match channels.len() {
        0 => Arc::new(NoNotifier),
        _ => Arc::new(AllNotifiers(channels)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            event: NotificationEvent::Quarantined,
            job: "slack".into(),
            reason: Some(QuarantineReason::EncounteredQuarantineException),
            previous_reason: None,
            error_code: Some(ErrorCode::Unauthorized),
            error: Some("Unauthorized from the target".into()),
            series_began: None,
            next_attempt: None,
            at: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn mail_names_job_reason_and_error() {
        let from: Mailbox = "scimsync <scimsync@example.com>".parse().unwrap();
        let to: Vec<Mailbox> = vec!["ops@example.com".parse().unwrap()];
        let msg = build_message(&sample(), &from, &to).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(raw.contains("Subject: scimsync: job slack is in quarantine"));
        assert!(raw.contains("EncounteredQuarantineException"));
        assert!(raw.contains("To: ops@example.com"));
        assert!(raw.contains("Error code: Unauthorized"));
    }

    #[test]
    fn smtp_settings_with_a_bad_address_are_refused() {
        let smtp = scimsync_config::Smtp {
            host: "localhost".into(),
            port: 25,
            starttls: false,
            username: None,
            password: None,
            from: "not an address".into(),
            to: vec!["ops@example.com".into()],
        };
        assert!(matches!(
            SmtpNotifier::from_config(&smtp),
            Err(NotifyError::Config(_))
        ));
    }
}
