//! Certificate credentials: PEM ↔ DER, thumbprints (`x5t`, `x5t#S256`), the public key inside
//! an X.509 certificate, and RS256 / PS256 signature checks of client assertions.
//!
//! The certificate is only walked far enough to find `subjectPublicKeyInfo` (a handful of DER
//! TLVs); digests and signature checks are `aws-lc-rs`, the crypto library rustls already links.

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Throwaway certificates and keys for tests (self-signed, never trusted anywhere). `A` and `B`
/// are two unrelated key pairs, so a test can sign with the "wrong" one.
pub mod test_only {
    /// Test-only certificate A (PEM).
    pub const CERT_A_PEM: &str = include_str!("fixtures/test-only-cert-a.pem");
    /// Test-only PKCS#8 private key of certificate A (PEM).
    pub const KEY_A_PEM: &str = include_str!("fixtures/test-only-key-a.pem");
    /// Test-only certificate B (PEM).
    pub const CERT_B_PEM: &str = include_str!("fixtures/test-only-cert-b.pem");
    /// Test-only PKCS#8 private key of certificate B (PEM).
    pub const KEY_B_PEM: &str = include_str!("fixtures/test-only-key-b.pem");
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
pub(crate) fn certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    let start = pem
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or("no -----BEGIN CERTIFICATE----- block")?;
    let body = &pem[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = body
        .find("-----END CERTIFICATE-----")
        .ok_or("no -----END CERTIFICATE----- line")?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|e| format!("certificate is not base64: {e}"))?;
    public_key(&der)?;
    Ok(der)
}

/// PEM text of a DER certificate (64-character lines).
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// `x5t`: base64url SHA-1 of the DER.
pub(crate) fn x5t(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, der))
}

/// `x5t#S256`: base64url SHA-256 of the DER.
pub(crate) fn x5t_s256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, der))
}

/// One DER element: (tag, the whole element, its contents, what follows it).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(d: &[u8]) -> Option<Tlv<'_>> {
    let tag = *d.first()?;
    let first = *d.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in d.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, d.get(..end)?, d.get(header..end)?, d.get(end..)?))
}

/// The RSA public key of an X.509 certificate: its `tbsCertificate.subjectPublicKeyInfo` DER,
/// checked to hold an RSA key of 2048 to 8192 bits.
pub(crate) fn public_key(der: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "not an X.509 certificate".to_string();
    let (_, _, cert, _) = tlv(der).filter(|t| t.0 == 0x30).ok_or_else(bad)?;
    let (_, _, tbs, _) = tlv(cert).filter(|t| t.0 == 0x30).ok_or_else(bad)?;
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer, validity, subject, then SPKI.
    if rest.first() == Some(&0xA0) {
        rest = tlv(rest).ok_or_else(bad)?.3;
    }
    for _ in 0..5 {
        rest = tlv(rest).ok_or_else(bad)?.3;
    }
    let (_, spki, _, _) = tlv(rest).filter(|t| t.0 == 0x30).ok_or_else(bad)?;
    ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki)
        .map_err(|e| format!("the certificate's key is not an RSA key: {e}"))?;
    Ok(spki.to_vec())
}

/// Whether `signature` over `signed` (the JWT's `header.claims`) verifies with `key` (the
/// SubjectPublicKeyInfo DER from [`public_key`]). PS256 expects a salt as long as the SHA-256
/// digest (RFC 7518 §3.5).
pub(crate) fn verify(key: &[u8], alg: &str, signed: &[u8], signature: &[u8]) -> bool {
    match alg {
        "RS256" => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
            .verify(signed, signature)
            .is_ok(),
        "PS256" => UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, key)
            .verify(signed, signature)
            .is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_certificates_parse_and_round_trip() {
        let der = certificate_der(test_only::CERT_A_PEM).unwrap();
        assert_eq!(certificate_der(&certificate_pem(&der)).unwrap(), der);
        assert_eq!(x5t(&der).len(), 27);
        assert_eq!(x5t_s256(&der).len(), 43);
        let a = public_key(&der).unwrap();
        let b = public_key(&certificate_der(test_only::CERT_B_PEM).unwrap()).unwrap();
        assert_ne!(a, b);
        assert!(
            certificate_der("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
    }
}
