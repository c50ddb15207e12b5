# Sluice gateway image: docker build -t sluice . && docker run sluice
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sluice ./cmd/sluice

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /var/lib/sluice
# proxy, Admin API, status (/metrics)
EXPOSE 8000 8001 8100

CMD ["sluice", "run"]
