#!/bin/sh
# Mosquitto for the compose stack. The registry (API, `ldl broker sync`) rewrites the password
# and ACL files in /broker-auth when a device is registered, rotated or revoked; Mosquitto
# rereads them on SIGHUP, so this loop sends one whenever either file changes: revocation takes
# effect within two seconds, without a restart.
set -eu
AUTH=/broker-auth
stamp() { stat -c %Y "$AUTH/passwd" "$AUTH/acl" 2>/dev/null | tr '\n' ' '; }

mosquitto -c /mosquitto/config/mosquitto.conf &
pid=$!
trap 'kill -TERM "$pid"; wait "$pid"; exit 0' TERM INT
last=$(stamp)
while kill -0 "$pid" 2>/dev/null; do
  sleep 2
  now=$(stamp)
  if [ "$now" != "$last" ]; then
    kill -HUP "$pid"
    last=$now
  fi
done
wait "$pid"
