//! The app registration's credential: a client secret, or a certificate whose private key signs
//! a `client_assertion` JWT (wire contract §1.2).
//!
//! The assertion header names the certificate by thumbprint: `x5t#S256` (SHA-256 of the DER)
//! with PS256, as the current Entra docs describe, or `x5t` (SHA-1) with RS256, the older form
//! many tenants still use. Claims: `aud` = the token URL, `iss` = `sub` = client id, a fresh
//! `jti`, `nbf` = `iat` = now, `exp` = now + 10 minutes. A new assertion is signed for every
//! token request, so it never outlives its use.
//!
//! Keys, signatures and thumbprints go through `aws-lc-rs`, the crypto library rustls already
//! links (issue 12: it replaces the `rsa` crate, RUSTSEC-2023-0071). PSS uses a salt as long as
//! the SHA-256 digest, as RFC 7518 §3.5 requires for PS256.

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use scimsync_core::Secret;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// How the client proves it is the app registration.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A client secret's value.
    Secret(Secret),
    /// A certificate registered on the app, with its private key.
    Certificate {
        /// The certificate, PEM (`-----BEGIN CERTIFICATE-----`). Public, so not a secret.
        cert_pem: String,
        /// The RSA private key, PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA
        /// PRIVATE KEY`). Encrypted keys are not supported.
        key_pem: Secret,
        algorithm: CertificateAlgorithm,
    },
}

/// The client assertion's signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertificateAlgorithm {
    /// RSASSA-PSS with SHA-256, header `x5t#S256` (current Entra docs).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, header `x5t` (older docs; widely accepted).
    Rs256,
}

/// Seconds a client assertion is valid (the docs advise 5 to 10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 600;

/// A parsed certificate credential, ready to sign assertions.
pub(crate) struct AssertionSigner {
    key: RsaKeyPair,
    algorithm: CertificateAlgorithm,
    /// (header name, base64url thumbprint)
    thumbprint: (&'static str, String),
}

impl AssertionSigner {
    /// Parse the certificate and key; `Err` explains what is wrong (never quoting the key).
    pub(crate) fn new(
        cert_pem: &str,
        key_pem: &Secret,
        algorithm: CertificateAlgorithm,
    ) -> Result<Self, String> {
        let der = pem_block(cert_pem, "CERTIFICATE")
            .ok_or("certificate: no -----BEGIN CERTIFICATE----- block with valid base64")?;
        let key_text = key_pem.expose();
        let key = if key_text.contains("ENCRYPTED") {
            return Err(
                "certificate key: encrypted keys are not supported; export it unencrypted (PKCS#8)"
                    .into(),
            );
        } else if key_text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            let der = pem_block(key_text, "RSA PRIVATE KEY")
                .ok_or("certificate key: the PKCS#1 block is not valid base64")?;
            RsaKeyPair::from_der(&der).map_err(|e| {
                format!("certificate key: not a PKCS#1 RSA key (2048 to 8192 bits): {e}")
            })?
        } else if key_text.contains("-----BEGIN PRIVATE KEY-----") {
            let der = pem_block(key_text, "PRIVATE KEY")
                .ok_or("certificate key: the PKCS#8 block is not valid base64")?;
            RsaKeyPair::from_pkcs8(&der).map_err(|e| {
                format!("certificate key: not a PKCS#8 RSA key (2048 to 8192 bits): {e}")
            })?
        } else {
            return Err(
                "certificate key: expected a PEM private key (-----BEGIN PRIVATE KEY-----)".into(),
            );
        };
        let thumbprint = match algorithm {
            CertificateAlgorithm::Ps256 => {
                ("x5t#S256", URL_SAFE_NO_PAD.encode(digest(&SHA256, &der)))
            }
            CertificateAlgorithm::Rs256 => (
                "x5t",
                URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &der)),
            ),
        };
        Ok(AssertionSigner {
            key,
            algorithm,
            thumbprint,
        })
    }

    /// A signed client assertion for one token request.
    pub(crate) fn sign(&self, token_url: &str, client_id: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("system clock is before 1970: {e}"))?
            .as_secs();
        let alg = match self.algorithm {
            CertificateAlgorithm::Ps256 => "PS256",
            CertificateAlgorithm::Rs256 => "RS256",
        };
        let mut header = json!({"alg": alg, "typ": "JWT"});
        header[self.thumbprint.0] = json!(self.thumbprint.1);
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let padding: &'static dyn RsaEncoding = match self.algorithm {
            CertificateAlgorithm::Ps256 => &RSA_PSS_SHA256,
            CertificateAlgorithm::Rs256 => &RSA_PKCS1_SHA256,
        };
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                padding,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "cannot sign the client assertion".to_string())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The DER bytes of the first PEM block labelled `label`.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok().filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::KeyPair as _;
    use serde_json::Value;

    const CERT: &str = scimsync_testkit::graph::test_only::CERT_A_PEM;
    const KEY: &str = scimsync_testkit::graph::test_only::KEY_A_PEM;

    fn part(jwt: &str, i: usize) -> Value {
        let p = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn assertion_carries_the_documented_header_and_claims() {
        let s =
            AssertionSigner::new(CERT, &Secret::inline(KEY), CertificateAlgorithm::Ps256).unwrap();
        let jwt = s
            .sign("https://login.example/t/oauth2/v2.0/token", "app-1")
            .unwrap();
        let h = part(&jwt, 0);
        assert_eq!(h["alg"], "PS256");
        assert_eq!(h["typ"], "JWT");
        assert_eq!(h["x5t#S256"].as_str().unwrap().len(), 43);
        let c = part(&jwt, 1);
        assert_eq!(c["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(c["iss"], "app-1");
        assert_eq!(c["sub"], "app-1");
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["nbf"].as_u64().unwrap(),
            ASSERTION_LIFETIME_SECS
        );
        let rs =
            AssertionSigner::new(CERT, &Secret::inline(KEY), CertificateAlgorithm::Rs256).unwrap();
        let h = part(&rs.sign("u", "c").unwrap(), 0);
        assert_eq!(h["alg"], "RS256");
        assert_eq!(h["x5t"].as_str().unwrap().len(), 27);
    }

    /// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`, as `BEGIN RSA PRIVATE KEY`.
    fn pkcs1_pem(pkcs8_pem: &str) -> String {
        // One DER element: (contents, what follows it).
        fn tlv(d: &[u8]) -> (&[u8], &[u8]) {
            let (len, head) = match d[1] {
                n if n < 0x80 => (n as usize, 2),
                n => {
                    let k = (n & 0x7f) as usize;
                    (
                        d[2..2 + k].iter().fold(0, |l, b| (l << 8) | *b as usize),
                        2 + k,
                    )
                }
            };
            (&d[head..head + len], &d[head + len..])
        }
        let der = pem_block(pkcs8_pem, "PRIVATE KEY").unwrap();
        let (info, _) = tlv(&der);
        let (_version, rest) = tlv(info);
        let (_algorithm, rest) = tlv(rest);
        assert_eq!(rest[0], 0x04, "privateKey OCTET STRING");
        let (pkcs1, _) = tlv(rest);
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            STANDARD.encode(pkcs1)
        )
    }

    #[test]
    fn pkcs1_and_pkcs8_keys_load_the_same_key_and_sign_both_algorithms() {
        let pkcs1 = pkcs1_pem(KEY);
        for alg in [CertificateAlgorithm::Ps256, CertificateAlgorithm::Rs256] {
            let a = AssertionSigner::new(CERT, &Secret::inline(KEY), alg).unwrap();
            let b = AssertionSigner::new(CERT, &Secret::inline(&pkcs1), alg).unwrap();
            assert_eq!(a.key.public_key().as_ref(), b.key.public_key().as_ref());
            assert_eq!(a.thumbprint, b.thumbprint);
            let jwt = b.sign("u", "c").unwrap();
            let sig = URL_SAFE_NO_PAD
                .decode(jwt.rsplit('.').next().unwrap())
                .unwrap();
            assert_eq!(sig.len(), 256, "a 2048-bit key signs 256 bytes");
        }
    }

    #[test]
    fn encrypted_keys_are_refused_by_name() {
        for pem in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----",
        ] {
            let err = AssertionSigner::new(CERT, &Secret::inline(pem), CertificateAlgorithm::Ps256)
                .err()
                .unwrap();
            assert!(err.contains("encrypted keys are not supported"), "{err}");
        }
    }

    #[test]
    fn bad_pem_is_explained_without_quoting_the_key() {
        let err = AssertionSigner::new(
            CERT,
            &Secret::inline("hunter2-not-a-key"),
            CertificateAlgorithm::Ps256,
        )
        .err()
        .unwrap();
        assert!(err.contains("PEM private key"), "{err}");
        assert!(!err.contains("hunter2"));
        let err = AssertionSigner::new("nope", &Secret::inline(KEY), CertificateAlgorithm::Ps256)
            .err()
            .unwrap();
        assert!(err.contains("CERTIFICATE"), "{err}");
    }
}
