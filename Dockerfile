# The Sluice processors and CLI. Build: docker build -t sluice:local .
# Node.js 24 (LTS "Krypton", supported until April 2028), pinned to one release; package.json
# "engines" lists the Node versions Sluice supports (CI runs the oldest of them).
FROM node:24.18.0-bookworm-slim AS build
# better-sqlite3 (sluice live's state store) is a native module: its install script fetches a
# prebuilt binary for this Node and falls back to compiling SQLite with these tools.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY processors ./processors
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 && npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24.18.0-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY connectors ./connectors
COPY schemas ./schemas
# State stores (sluice live, the normalizer's dedupe): a named volume mounted here takes this owner.
RUN mkdir -p /var/lib/sluice/state && chown node:node /var/lib/sluice/state
USER node
ENTRYPOINT ["node", "/app/bin/sluice.mjs"]
CMD ["--help"]
