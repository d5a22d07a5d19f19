# syntax=docker/dockerfile:1
# Build stage: the mqstack binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /out/mqstack ./cmd/mqstack

# Runtime: PostgreSQL 15 with pg_partman and our pgmq extension, and mqstack.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-15 postgresql-client-15 postgresql-15-partman ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/mqstack /usr/local/bin/mqstack
RUN mkdir -p /var/lib/mqstack && chmod 0755 /var/lib/mqstack
# Inside a container the front ends must listen on every interface; the proxy
# then accepts passwords (tokens) only inside TLS (a self-signed certificate is
# made in the data dir unless proxy.tls_cert_file is set).
ENV MQSTACK_DATA_DIR=/var/lib/mqstack \
    MQSTACK_PROXY_LISTEN=0.0.0.0:6432 \
    MQSTACK_REST_LISTEN=0.0.0.0:8080 \
    MQSTACK_METRICS_LISTEN=0.0.0.0:9187
VOLUME ["/var/lib/mqstack"]
# 6432: wire proxy, 8080: REST, 9187: metrics.
EXPOSE 6432 8080 9187
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mqstack", "up"]
