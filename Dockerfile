# The sessiond image: sessiond and sessionctl on Debian bookworm, as a non-root user.
# Two ways in (docs/deploy.md):
#   docker build -t sessiond:0.1.0 .                        # from source (rust:1-bookworm)
#   cargo build --release --locked --bin sessiond --bin sessionctl
#   docker build --target prebuilt -t sessiond:0.1.0 .      # binaries built beforehand
# CI (scripts/container-test.sh) builds the prebuilt target with podman on a base made
# locally from Debian's packages; the from-source target needs a registry, so CI does
# not run it. Podman keeps HEALTHCHECK only in the docker format: --format docker.

# The runtime's base; a glibc of bookworm's age or newer (the binaries link to it).
ARG BASE_IMAGE=debian:bookworm-slim

# Builds the two binaries from the checkout, with line tables stripped (symbols kept,
# so a backtrace still names functions).
FROM rust:1-bookworm AS source-build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sessiond --bin sessionctl \
 && mkdir /out \
 && objcopy --strip-debug target/release/sessiond /out/sessiond \
 && objcopy --strip-debug target/release/sessionctl /out/sessionctl

# Everything but the binaries: user, data volume, ports, health check, stop signal.
FROM ${BASE_IMAGE} AS runtime
# Kept equal to Cargo.toml's version by scripts/manifests-test.sh.
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sessiond" \
      org.opencontainers.image.description="gRPC session backend: start, validate, refresh, extend and end user sessions" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
# A fixed numeric uid and gid (65532, distroless's "nonroot"), so Kubernetes'
# runAsNonRoot can check it and a volume's owner is known in advance.
RUN echo 'sessiond:x:65532:' >>/etc/group \
 && echo 'sessiond:x:65532:65532:sessiond:/data:/usr/sbin/nologin' >>/etc/passwd \
 && mkdir /data \
 && chown 65532:65532 /data
# Beyond loopback: without [[callers]] (or SESSIOND_ALLOW_INSECURE) sessiond refuses
# to start, so the image can carry no key and still be safe by default.
ENV SESSIOND_LISTEN=0.0.0.0:50051 \
    SESSIOND_METRICS_LISTEN=0.0.0.0:9090 \
    SESSIOND_DATA_DIR=/data
VOLUME ["/data"]
# gRPC (sessions, grpc.health.v1, reflection); admin HTTP (/metrics, JWKS, /auth).
EXPOSE 50051 9090
USER 65532:65532
WORKDIR /data
STOPSIGNAL SIGTERM
# No shell: sessionctl asks grpc.health.v1 on 127.0.0.1:50051 (SESSIOND_ADDR if the
# listen port is changed).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["sessionctl", "--timeout", "3", "health"]
ENTRYPOINT ["sessiond"]

# Binaries built beforehand (what release pipelines do): BINARIES names their directory
# in the build context.
FROM runtime AS prebuilt
ARG BINARIES=target/release
COPY ${BINARIES}/sessiond ${BINARIES}/sessionctl /usr/local/bin/

# The default target: built from source in the stage above.
FROM runtime AS from-source
COPY --from=source-build /out/sessiond /out/sessionctl /usr/local/bin/
