//! HTTPS for the admin API (`[admin] tls_cert` and `tls_key`): a rustls server configuration
//! from PEM text, a listener that completes each TLS handshake in its own task (a slow or
//! silent client never holds up the others), [`serve`] for plain HTTP or TLS, and the client
//! side the CLI uses, which trusts exactly the configured certificate.
//!
//! rustls with the aws-lc-rs provider (the copy the rest of the workspace links), TLS 1.3 and
//! 1.2 as rustls offers them, HTTP/1.1 by ALPN. Plain HTTP sent to the TLS port fails the
//! handshake and the connection is closed: nothing is answered in clear.

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The server side's configuration, built by [`server_config`].
pub use rustls::ServerConfig;

/// How long a client has to complete the TLS handshake before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS handshakes in progress at once; further connections wait (in the kernel's backlog).
const MAX_HANDSHAKES: usize = 64;

/// Which of the two settings a problem is about. Messages never quote the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// `tls_cert`: the certificate chain.
    Cert(String),
    /// `tls_key`: the private key.
    Key(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Cert(m) => write!(f, "tls_cert: {m}"),
            TlsError::Key(m) => write!(f, "tls_key: {m}"),
        }
    }
}

impl std::error::Error for TlsError {}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What went wrong in PEM text, in words that never repeat its content.
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        pem::Error::SectionTooLarge => "a PEM section is too large",
        _ => "the PEM text cannot be read",
    }
}

/// The certificates of a PEM chain, in order (the leaf first). At least one.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(pem) {
        certs.push(c.map_err(|e| pem_problem(&e).to_string())?);
    }
    if certs.is_empty() {
        let text = String::from_utf8_lossy(pem);
        return Err(if text.contains("PRIVATE KEY-----") {
            "holds a private key, not a certificate (PEM CERTIFICATE)".into()
        } else {
            "no PEM certificate found (-----BEGIN CERTIFICATE-----)".into()
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(k) => Ok(k),
        Err(pem::Error::NoItemsFound) => {
            let text = String::from_utf8_lossy(pem);
            Err(if text.contains("ENCRYPTED PRIVATE KEY") {
                "the private key is encrypted; give it unencrypted (e.g. `openssl pkey -in key.pem \
                 -out plain.pem`) in a file only the service user can read"
            } else if text.contains("BEGIN CERTIFICATE") {
                "holds a certificate, not a private key"
            } else {
                "no PEM private key found (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
            }
            .into())
        }
        Err(e) => Err(pem_problem(&e).into()),
    }
}

/// The rustls server configuration for a PEM certificate chain (leaf first) and the leaf's
/// private key (PKCS#8, PKCS#1 or SEC1). Fails when either cannot be read or the key does
/// not belong to the leaf certificate.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates(cert_pem).map_err(TlsError::Cert)?;
    let key = private_key(key_pem).map_err(TlsError::Key)?;
    let provider = provider();
    // Load the key alone first, so that what rustls says next is about the certificate.
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::Key(format!("unsupported private key: {e}")))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Cert(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Key(
                "does not belong to the certificate in tls_cert (the first certificate of the \
                 chain must be the one this key is for)"
                    .into(),
            ),
            other => TlsError::Cert(format!("unusable certificate: {other}")),
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A TCP listener that hands out connections once their TLS handshake is complete. Handshakes
/// run in their own tasks (at most [`MAX_HANDSHAKES`] at once, each within
/// [`HANDSHAKE_TIMEOUT`]); a failed one is logged at debug level and dropped. Dropping the
/// listener stops accepting.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    _accept: AbortOnDrop,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let accept = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!("admin API: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "admin API: TLS handshake failed: {e}")
                        }
                        Err(_) => tracing::debug!(%peer, "admin API: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            _accept: AbortOnDrop(accept),
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ended (it does not, short of a panic): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serve `app` on `listener` until `shutdown` completes: over TLS with `tls`, else plain HTTP.
/// Handlers see the client's address as `ConnectInfo<SocketAddr>` (the failed-auth limit
/// counts per address).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            // `tap_io` is what gives a custom listener's address to `ConnectInfo`.
            let listener = TlsListener::new(listener, config)?.tap_io(|_| ());
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// A rustls client configuration that accepts exactly the leaf certificate of `cert_pem` (the
/// admin API's own `tls_cert`), whatever name or address it is reached by, and checks the
/// handshake signatures with it. This is what the CLI uses to reach a local `serve`: it reads
/// the same service file, so pinning the certificate is both simpler and stricter than trusting
/// it as a root (and needs no host name in the certificate).
pub fn pinned_client_config(cert_pem: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let leaf = certificates(cert_pem)
        .map_err(TlsError::Cert)?
        .swap_remove(0);
    let provider = provider();
    let verifier = Arc::new(Pinned {
        leaf,
        algorithms: provider.signature_verification_algorithms,
    });
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Cert(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The server presented another certificate than the configured one.
struct NotTheConfiguredCertificate;

impl fmt::Display for NotTheConfiguredCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the admin API presented another certificate than [admin] tls_cert (was it changed \
             without restarting `serve`?)",
        )
    }
}

/// rustls shows this error with `Debug`: the sentence, not the type name.
impl fmt::Debug for NotTheConfiguredCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NotTheConfiguredCertificate {}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                    NotTheConfiguredCertificate,
                ))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../tests/fixtures/admin-cert.pem");
    const KEY: &str = include_str!("../tests/fixtures/admin-key.pem");
    const OTHER_KEY: &str = include_str!("../tests/fixtures/other-key.pem");

    #[test]
    fn a_matching_pair_makes_a_server_config() {
        let cfg = server_config(CERT.as_bytes(), KEY.as_bytes()).unwrap();
        assert_eq!(cfg.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(pinned_client_config(CERT.as_bytes()).is_ok());
    }

    #[test]
    fn each_mistake_names_its_setting_without_the_key() {
        let err = |c: &str, k: &str| server_config(c.as_bytes(), k.as_bytes()).unwrap_err();
        assert!(matches!(err(CERT, OTHER_KEY), TlsError::Key(m) if m.contains("does not belong")));
        assert!(matches!(err(KEY, KEY), TlsError::Cert(m) if m.contains("holds a private key")));
        assert!(matches!(err("", KEY), TlsError::Cert(m) if m.contains("no PEM certificate")));
        assert!(matches!(err(CERT, CERT), TlsError::Key(m) if m.contains("holds a certificate")));
        assert!(matches!(err(CERT, "junk"), TlsError::Key(m) if m.contains("no PEM private key")));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(err(CERT, encrypted), TlsError::Key(m) if m.contains("encrypted")));
        // A damaged key: the message says what, never quotes it.
        let damaged = KEY.replace("-----END PRIVATE KEY-----", "");
        let e = err(CERT, &damaged);
        assert_eq!(e, TlsError::Key("a PEM section has no END line".into()));
        let body: String = KEY.lines().nth(1).unwrap().chars().take(12).collect();
        assert!(!e.to_string().contains(&body));
        let garbled = KEY.replacen("MI", "M!", 1);
        assert!(matches!(err(CERT, &garbled), TlsError::Key(m) if !m.contains("M!")));
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(err(not_der, KEY), TlsError::Cert(m) if m.contains("unusable")));
    }
}
