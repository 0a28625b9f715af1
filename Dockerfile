# The Sluice processors and CLI. Build: docker build -t sluice:local .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY processors ./processors
RUN npm ci --ignore-scripts && npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY connectors ./connectors
COPY schemas ./schemas
USER node
ENTRYPOINT ["node", "/app/bin/sluice.mjs"]
CMD ["--help"]
