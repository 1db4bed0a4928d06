# scimsync as a container: `serve` with the admin API and dashboard on port 8787.
#
#   docker build -t scimsync .
#   docker run -d --name scimsync -p 127.0.0.1:8787:8787 \
#     -v "$PWD/jobs:/etc/scimsync:ro" -v scimsync-state:/var/lib/scimsync scimsync
#
# jobs/ holds the job files and scimsync.toml; in a container `[admin] bind` must be
# "0.0.0.0:8787" to be reachable through -p, which needs tls_cert/tls_key (or
# allow_plain_http = true behind a TLS-terminating proxy). The production binary is built
# without the `demo` feature: the emulators are not in it.

# ---- build ----
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --no-default-features --bin scimsync \
 && install -m 0755 target/release/scimsync /usr/local/bin/scimsync

# ---- run ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 scimsync \
 && useradd --system --uid 10001 --gid scimsync --home-dir /var/lib/scimsync --shell /usr/sbin/nologin scimsync \
 && install -d -o scimsync -g scimsync -m 0700 /var/lib/scimsync \
 && install -d -m 0755 /etc/scimsync
COPY --from=build /usr/local/bin/scimsync /usr/local/bin/scimsync
USER scimsync:scimsync
ENV SCIMSYNC_STATE=/var/lib/scimsync
VOLUME ["/var/lib/scimsync"]
EXPOSE 8787
# /healthz answers without the token and says only that the process is alive; HTTPS when
# the admin API has tls_cert (its certificate is the operator's, so not verified here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8787/healthz || curl -fsSk https://127.0.0.1:8787/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/scimsync"]
CMD ["serve", "--config-dir", "/etc/scimsync", "--state", "/var/lib/scimsync"]
