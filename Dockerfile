# phone-verify, built inside Docker: a Rust builder stage, then a small Debian runtime.
# For machines that can pull images from a registry:
#   docker build -t phone-verify .
# To package a binary built on the host instead (no Rust image needed), see
# Dockerfile.prebuilt.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY locales locales
COPY static static
RUN cargo build --release --locked && cp target/release/phone-verify /phone-verify

FROM debian:bookworm-slim
# Root certificates for the providers' https APIs (rustls reads the system store).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY --from=build /phone-verify /usr/local/bin/phone-verify
COPY static /app/static
WORKDIR /app
# Listen on every interface inside the container; publish the port with -p 8080:8080.
# Configure with PHONE_VERIFY__SECTION__KEY variables (docker run --env-file .env), or
# mount a file: -v ./config.toml:/app/config.toml:ro
ENV PHONE_VERIFY__SERVER__BIND=0.0.0.0:8080
# Not root: a fixed unprivileged uid, which owns nothing in the image.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["phone-verify", "healthcheck"]
# The binary is PID 1: docker stop's SIGTERM reaches it and it shuts down gracefully.
STOPSIGNAL SIGTERM
ENTRYPOINT ["phone-verify"]
