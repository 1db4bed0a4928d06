//! What the two HTTP clients (Graph and SCIM) share: response bodies read with a cap, so a
//! misbehaving or hostile endpoint cannot make a client buffer more than the configured number
//! of bytes (a 300 MB page, an endless chunked answer). Each client keeps its own errors.

/// A client that only ever talks plain `http://` (a loopback target, the Graph emulator) skips
/// the system trust store: the platform verifier reads and parses every CA certificate when the
/// client is built (~20 ms per client, a tenth of a quiet cycle at 20k users). Any `https://`
/// endpoint keeps the platform verifier. Both clients refuse redirects and links to another
/// origin, so a plain-HTTP client is never asked to verify a certificate.
pub fn trust_roots_for(
    builder: reqwest::ClientBuilder,
    endpoints: &[&reqwest::Url],
) -> reqwest::ClientBuilder {
    if endpoints.iter().all(|url| url.scheme() == "http") {
        builder.tls_certs_only([])
    } else {
        builder
    }
}

/// What [`read_capped`] read.
pub enum Body {
    /// The whole body, at most `cap` bytes.
    Complete(Vec<u8>),
    /// The body is larger than `cap`: `declared` is its `Content-Length` when it announced one
    /// (nothing was read then), `prefix` the first bytes read (at most `cap`), for an error
    /// body's message.
    TooLarge {
        declared: Option<u64>,
        prefix: Vec<u8>,
    },
}

/// Reads `response`'s body chunk by chunk (after content decoding, so a gzip bomb counts its
/// decoded size) and stops at the first chunk that would take it past `cap` bytes; the
/// connection is then dropped with the rest unread. A `Content-Length` above `cap` is refused
/// before anything is read.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Body, reqwest::Error> {
    let declared = response.content_length();
    if let Some(len) = declared
        && len > cap as u64
    {
        return Ok(Body::TooLarge {
            declared,
            prefix: Vec::new(),
        });
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(cap));
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Body::TooLarge {
                declared: None,
                prefix: body,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Complete(body))
}

/// "larger than 67108864 bytes (64 MiB)" / "of 300000000 bytes, more than …", for messages.
pub fn too_large_text(declared: Option<u64>, cap: usize) -> String {
    match declared {
        Some(len) => format!(
            "announced {len} bytes, more than the limit of {}",
            human(cap)
        ),
        None => format!("larger than the limit of {}", human(cap)),
    }
}

/// `67108864 bytes (64 MiB)`.
pub fn human(bytes: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{bytes} bytes ({} MiB)", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{bytes} bytes ({} KiB)", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_bytes_and_binary_units() {
        assert_eq!(human(64 << 20), "67108864 bytes (64 MiB)");
        assert_eq!(human(1 << 20), "1048576 bytes (1 MiB)");
        assert_eq!(human(4096), "4096 bytes (4 KiB)");
        assert_eq!(human(1000), "1000 bytes");
        assert_eq!(
            too_large_text(Some(5000), 4096),
            "announced 5000 bytes, more than the limit of 4096 bytes (4 KiB)"
        );
        assert_eq!(
            too_large_text(None, 4096),
            "larger than the limit of 4096 bytes (4 KiB)"
        );
    }
}
