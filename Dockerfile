# syntax=docker/dockerfile:1
#
# Images of avi-autoscaler: static (musl) binaries on a distroless base without a libc or a
# shell, run as a non-root user.
#
#   docker build -t avi-autoscaler .                  # the operator (the default, last stage)
#   docker build --target avi-sim -t avi-sim .        # the Avi controller simulator (trials, e2e)
#
# Both images come from one build stage, so building the second one reuses the first's build.

# The toolchain of rust-version in Cargo.toml (a test keeps them equal).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# busybox ash knows pipefail: a failing command inside a pipe fails the step.
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
# ring (rustls' crypto provider) compiles C and assembly: it needs a C compiler and musl's
# headers. Alpine's packages are not version-pinned: Alpine removes superseded versions, so a
# pin would break the build at the next security update.
# hadolint ignore=DL3018
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY . .
# On Alpine, rustc targets *-unknown-linux-musl and links statically (crt-static is the musl
# default), so the binaries run on an image without a libc. The check fails the build if one
# of them asks for a dynamic loader all the same.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin avi-autoscaler --bin avi-sim \
    && mkdir -p /out \
    && cp target/release/avi-autoscaler target/release/avi-sim /out/ \
    && for binary in /out/*; do \
         if readelf --program-headers "$binary" | grep -q INTERP; then \
           echo "$binary is dynamically linked" >&2; exit 1; \
         fi; \
       done

# avi-sim: the debug variant adds busybox, so that `kubectl exec ... cat` can read the CA
# certificate it writes (hack/e2e-kind.sh). It is a test tool; the operator image has no shell.
FROM gcr.io/distroless/static-debian13:debug-nonroot AS avi-sim
COPY --from=build /out/avi-sim /avi-sim
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/avi-sim"]

# The operator. distroless/static carries CA certificates, /etc/passwd with the nonroot user
# (65532) and tzdata, and nothing else.
FROM gcr.io/distroless/static-debian13:nonroot AS avi-autoscaler
COPY --from=build /out/avi-autoscaler /avi-autoscaler
USER 65532:65532
# /metrics and /healthz, /readyz (the chart's defaults).
EXPOSE 8080 8081
ENTRYPOINT ["/avi-autoscaler"]
CMD ["run"]
