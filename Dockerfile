# syntax=docker/dockerfile:1
#
# openbao-backup: one image for the operator (`bao-backup operator`) and the executor it runs
# in backup/restore Jobs (`bao-backup backup`, `bao-backup restore`), plus the operations CLI.
#
#   docker build -t openbao-backup:dev .
#   docker run --rm --read-only openbao-backup:dev --help
#
# The runtime image holds only Node.js, the compiled JavaScript and the production
# dependencies. It runs as UID/GID 65532 (distroless "nonroot") and writes nothing to its
# root filesystem, so `readOnlyRootFilesystem: true` works without any writable mount.

ARG NODE_VERSION=24

# ── build: install every dependency and compile TypeScript to dist/ ─────────────────────────
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script in the tree belongs to the `node` devDependency
# (a Node.js binary for local development); the image's own Node is used instead.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# ── deps: production dependencies only ───────────────────────────────────────────────────
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ── runtime: distroless Node.js, non-root, no shell, no package manager ─────────────────
FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="openbao-backup" \
      org.opencontainers.image.description="Scheduled OpenBao Raft snapshots to S3, GCS or Azure Blob: operator and executor" \
      org.opencontainers.image.licenses="MPL-2.0" \
      org.opencontainers.image.source="https://github.com/openbao/openbao-backup"
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module", which the compiled ESM in dist/ needs.
COPY --from=deps --chown=0:0 /src/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
COPY --chown=0:0 package.json ./
# Files stay owned by root and read-only to the process; it runs as nonroot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "--initial-old-space-size=64", "/app/dist/cli/main.js"]
CMD ["--help"]
