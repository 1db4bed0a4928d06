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
use scimsync_config::{Notifications, SmtpTls};
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
///
/// Credentials are never sent in cleartext: with `tls = "starttls"` the connection is upgraded
/// before anything else and a server that does not offer STARTTLS is an error (no fallback to
/// plain text, so no `AUTH` and no message); plain SMTP with credentials is refused unless the
/// host is loopback, even if validation was bypassed.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for errors.
    server: String,
    tls: SmtpTls,
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
    /// STARTTLS (required, never opportunistic), implicit TLS, or a plain connection — the
    /// last only without credentials or to a loopback relay.
    pub fn from_config(smtp: &scimsync_config::Smtp) -> Result<Self, NotifyError> {
        let err = |e: lettre::transport::smtp::Error| NotifyError::Config(e.to_string());
        let mut builder = match smtp.tls {
            // `Tls::Required`: lettre fails when the server does not offer STARTTLS.
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(err)?
            }
            SmtpTls::Implicit => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(err)?
            }
            SmtpTls::None if smtp.credentials_in_cleartext() => {
                return Err(NotifyError::Config(format!(
                    "smtp: refusing to send the username and password in cleartext to {}, which \
                     is not a loopback host: set tls = \"starttls\" or tls = \"implicit\"",
                    smtp.host
                )));
            }
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
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
            server: server_name(&smtp.host, smtp.port),
            tls: smtp.tls,
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
                .map_err(|e| self.send_error(&e))?;
            Ok(())
        })
    }
}

impl SmtpNotifier {
    fn send_error(&self, e: &lettre::transport::smtp::Error) -> NotifyError {
        let text = e.to_string();
        if self.tls == SmtpTls::Starttls && text.contains("STARTTLS is not supported") {
            return NotifyError::Mail(format!(
                "{} does not offer STARTTLS, which tls = \"starttls\" requires: nothing was sent \
                 (no credentials, no message); fix the server, or use tls = \"implicit\" if it \
                 speaks SMTPS",
                self.server
            ));
        }
        NotifyError::Mail(format!("{}: {text}", self.server))
    }
}

/// `host:port`, with an IPv6 address in brackets.
fn server_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
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

    /// A fake SMTP server on loopback: greets, answers EHLO with `ehlo` (never STARTTLS),
    /// accepts AUTH, MAIL, RCPT and DATA, and records every line the client sends.
    async fn fake_smtp(
        ehlo: &'static [&'static str],
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = BufReader::new(read);
                    let _ = write.write_all(b"220 fake.example ESMTP\r\n").await;
                    let mut in_data = false;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_string();
                        seen.lock().unwrap().push(l.clone());
                        let verb = l.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let answer = if in_data {
                            if l != "." {
                                continue;
                            }
                            in_data = false;
                            "250 queued\r\n".to_string()
                        } else {
                            match verb.as_str() {
                                "EHLO" => ehlo
                                    .iter()
                                    .enumerate()
                                    .map(|(i, e)| {
                                        let sep = if i + 1 == ehlo.len() { ' ' } else { '-' };
                                        format!("250{sep}{e}\r\n")
                                    })
                                    .collect(),
                                "AUTH" => "235 2.7.0 accepted\r\n".into(),
                                "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 ok\r\n".into(),
                                "DATA" => {
                                    in_data = true;
                                    "354 go on\r\n".into()
                                }
                                "QUIT" => {
                                    let _ = write.write_all(b"221 bye\r\n").await;
                                    return;
                                }
                                _ => "502 not implemented\r\n".into(),
                            }
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, lines)
    }

    fn smtp_to(host: &str, port: u16, tls: SmtpTls) -> scimsync_config::Smtp {
        scimsync_config::Smtp {
            host: host.into(),
            port,
            tls,
            username: Some("scimsync".into()),
            password: Some(scimsync_config::SecretRef::literal("hunter2-smtp")),
            from: "scimsync@example.com".into(),
            to: vec!["ops@example.com".into()],
        }
    }

    /// Issue 12 §1: a server that does not offer STARTTLS while it is required never sees the
    /// credentials (nor the message): no downgrade to plain text.
    #[tokio::test]
    async fn without_starttls_offered_no_auth_is_ever_sent() {
        // The server offers AUTH in the clear, the tempting downgrade.
        let (port, lines) = fake_smtp(&["fake.example", "AUTH PLAIN LOGIN", "8BITMIME"]).await;
        let notifier = SmtpNotifier::from_config(&smtp_to("127.0.0.1", port, SmtpTls::Starttls))
            .expect("STARTTLS settings are accepted");
        let err = notifier.notify(&sample()).await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{port} does not offer STARTTLS")),
            "{err}"
        );
        assert!(err.contains("nothing was sent"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let seen = lines.lock().unwrap().clone();
        assert!(
            seen.iter().any(|l| l.starts_with("EHLO")),
            "the client did talk to the fake server: {seen:?}"
        );
        assert!(
            !seen.iter().any(|l| {
                let l = l.to_ascii_uppercase();
                l.starts_with("AUTH") || l.starts_with("MAIL") || l.starts_with("DATA")
            }),
            "nothing but the greeting may cross a plain connection: {seen:?}"
        );
        assert!(!seen.concat().contains("hunter2"), "{seen:?}");
    }

    /// Plain SMTP with credentials is refused before connecting unless the host is loopback,
    /// even with settings that never went through validation.
    #[tokio::test]
    async fn plain_smtp_with_credentials_only_to_loopback() {
        let err = match SmtpNotifier::from_config(&smtp_to("smtp.example.com", 25, SmtpTls::None)) {
            Err(NotifyError::Config(m)) => m,
            Err(other) => panic!("expected a settings error, got {other}"),
            Ok(_) => panic!("credentials in cleartext to a remote relay were accepted"),
        };
        assert!(
            err.contains("cleartext") && err.contains("smtp.example.com"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");

        // To a relay on this host it is allowed: the mail goes out, with AUTH.
        let (port, lines) = fake_smtp(&["fake.example", "AUTH PLAIN LOGIN"]).await;
        let notifier =
            SmtpNotifier::from_config(&smtp_to("127.0.0.1", port, SmtpTls::None)).unwrap();
        notifier.notify(&sample()).await.expect("delivered");
        let seen = lines.lock().unwrap().clone();
        assert!(seen.iter().any(|l| l.starts_with("AUTH")), "{seen:?}");
        assert!(
            seen.iter()
                .any(|l| l.starts_with("Subject: scimsync: job slack")),
            "{seen:?}"
        );

        // Without credentials plain SMTP goes anywhere, and sends no AUTH.
        let (port, lines) = fake_smtp(&["fake.example", "AUTH PLAIN LOGIN"]).await;
        let mut anonymous = smtp_to("127.0.0.1", port, SmtpTls::None);
        (anonymous.username, anonymous.password) = (None, None);
        SmtpNotifier::from_config(&anonymous)
            .unwrap()
            .notify(&sample())
            .await
            .expect("delivered");
        let seen = lines.lock().unwrap().clone();
        assert!(seen.iter().any(|l| l.starts_with("DATA")), "{seen:?}");
        assert!(!seen.iter().any(|l| l.starts_with("AUTH")), "{seen:?}");
        anonymous.host = "smtp.example.com".into();
        assert!(SmtpNotifier::from_config(&anonymous).is_ok());
    }

    #[test]
    fn smtp_settings_with_a_bad_address_are_refused() {
        let smtp = scimsync_config::Smtp {
            host: "localhost".into(),
            port: 25,
            tls: SmtpTls::None,
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
