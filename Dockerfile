# d2c container image.
#   docker build -t d2c .
#   docker run --rm -p 9464:9464 -e D2C_KAFKA__BROKERS=broker:9092 d2c
# Settings: /etc/d2c/d2c.toml (the files of config/), overridden by D2C_<SECTION>__<KEY>.

FROM rust:1.95-bookworm AS builder
# rdkafka builds the bundled librdkafka with ./configure and make, linking the system zlib and,
# for TLS and SASL (PLAIN, SCRAM, OAUTHBEARER; feature `ssl`), the system OpenSSL: Debian's
# libssl-dev here, libssl3 in the runtime image below, so OpenSSL security fixes arrive with the
# distribution's updates (hence `--no-default-features`: the default build compiles its own
# OpenSSL, for machines without its headers). The rust image already has these packages: they
# are listed to say what the build needs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Dependencies are downloaded in a layer of their own, reused until Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
RUN cargo fetch --locked
COPY . .
RUN cargo build --release --locked --no-default-features --bin d2c

FROM debian:bookworm-slim
# libssl3: librdkafka's TLS (and SCRAM); ca-certificates: the CAs of managed Kafka services.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin d2c
COPY --from=builder /build/target/release/d2c /usr/local/bin/d2c
COPY config/ /etc/d2c/
# In a container the metrics endpoint must listen beyond loopback to be scraped.
ENV D2C_HTTP__LISTEN=0.0.0.0:9464
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["d2c"]
CMD ["run", "--config", "/etc/d2c/d2c.toml"]
