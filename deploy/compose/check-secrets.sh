#!/bin/sh
# docker-compose.yml's first step: with BATON_ENV=production, refuse to start the stack
# while any secret still has its local demo value (every other service waits for this).
[ "${BATON_ENV:-local}" = "production" ] || exit 0
demo=""
[ "$BATON_ADMIN_TOKEN" = "local-admin-token" ] && demo="$demo BATON_ADMIN_TOKEN"
[ "$BATON_INGEST_WRITE_KEYS" = "local-write-key" ] && demo="$demo BATON_INGEST_WRITE_KEYS"
[ "$BATON_ROUTER_SECRET_KEY" = "local-secret-key-not-for-production" ] && demo="$demo BATON_ROUTER_SECRET_KEY"
[ "$BATON_ROUTER_LINK_SECRET" = "local-link-secret-not-for-production" ] && demo="$demo BATON_ROUTER_LINK_SECRET"
[ "$BATON_POSTGRES_PASSWORD" = "baton" ] && demo="$demo BATON_POSTGRES_PASSWORD"
[ "$BATON_GRAFANA_ADMIN_PASSWORD" = "admin" ] && demo="$demo BATON_GRAFANA_ADMIN_PASSWORD"
[ -z "$BATON_PRIVACY_KEY" ] && demo="$demo BATON_PRIVACY_KEY"
if [ -n "$demo" ]; then
  echo "BATON_ENV=production: set real values for:$demo (shell or .env file)" >&2
  exit 1
fi
