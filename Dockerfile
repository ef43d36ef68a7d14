# syntax=docker/dockerfile:1
#
# Images of avi-autoscaler: static (musl) binaries on a distroless base without a libc or a
# shell, run as a non-root user.
#
#   docker build -t avi-autoscaler .                  # the operator (the default, last stage)
#   docker build --target avi-sim -t avi-sim .        # the Avi controller simulator (trials, e2e)
#
# Both images come from one build stage, so building the second one reuses the first's build.
#
#   docker build --target binaries --output type=local,dest=dist .   # the static binaries alone
#
# Base images are pinned by digest (the tag stays readable before it, so that an updater bot
# can bump both); the build is reproducible: --locked dependencies, paths of this machine
# remapped out of the binaries, timestamps from SOURCE_DATE_EPOCH.

# rust:1.95-alpine, the toolchain of rust-version in Cargo.toml (a test keeps them equal).
FROM rust:1.95-alpine@sha256:606fd313a0f49743ee2a7bd49a0914bab7deedb12791f3a846a34a4711db7ed2 AS build
# busybox ash knows pipefail: a failing command inside a pipe fails the step.
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
# ring (rustls' crypto provider) compiles C and assembly: it needs a C compiler and musl's
# headers. Alpine's packages are not version-pinned: Alpine removes superseded versions, so a
# pin would break the build at the next security update.
# hadolint ignore=DL3018
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY . .
# The commit the binaries name in their User-Agent and --version (the context has no .git);
# the release workflow and hack/e2e-kind.sh pass it.
ARG AVI_AUTOSCALER_GIT_SHA=unknown
# The commit's time, for anything that embeds a timestamp; 0 when not given.
ARG SOURCE_DATE_EPOCH=0
# On Alpine, rustc targets *-unknown-linux-musl and links statically (crt-static is the musl
# default), so the binaries run on an image without a libc. The check fails the build if one
# of them asks for a dynamic loader all the same.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    AVI_AUTOSCALER_GIT_SHA="$AVI_AUTOSCALER_GIT_SHA" SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
    RUSTFLAGS="--remap-path-prefix=/src=. --remap-path-prefix=/usr/local/cargo=/cargo" \
    cargo build --release --locked --bin avi-autoscaler --bin avi-sim \
    && mkdir -p /out \
    && cp target/release/avi-autoscaler target/release/avi-sim /out/ \
    && for binary in /out/*; do \
         if readelf --program-headers "$binary" | grep -q INTERP; then \
           echo "$binary is dynamically linked" >&2; exit 1; \
         fi; \
       done

# The static binaries alone (the release attaches them): `--target binaries --output ...`.
FROM scratch AS binaries
COPY --from=build /out/ /

# avi-sim: the debug variant adds busybox, so that `kubectl exec ... cat` can read the CA
# certificate it writes (hack/e2e-kind.sh). It is a test tool; the operator image has no shell.
# gcr.io/distroless/static-debian13:debug-nonroot
FROM gcr.io/distroless/static-debian13:debug-nonroot@sha256:2a581fcbda6320d4d17fd6ff4774bb96e4825d2be9c2bca59f0777b429997f51 AS avi-sim
COPY --from=build /out/avi-sim /avi-sim
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/avi-sim"]

# The operator. distroless/static carries CA certificates, /etc/passwd with the nonroot user
# (65532) and tzdata, and nothing else.
# gcr.io/distroless/static-debian13:nonroot
FROM gcr.io/distroless/static-debian13:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3 AS avi-autoscaler
COPY --from=build /out/avi-autoscaler /avi-autoscaler
USER 65532:65532
# /metrics and /healthz, /readyz (the chart's defaults).
EXPOSE 8080 8081
ENTRYPOINT ["/avi-autoscaler"]
CMD ["run"]
