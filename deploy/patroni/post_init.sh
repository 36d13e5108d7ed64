#!/bin/sh
# Patroni's post_init: run once, on the node that bootstraps the cluster, with a superuser
# connection string as its argument. Creates the application's role and database (the
# single-node `db` service gets the same from POSTGRES_USER / POSTGRES_DB).
set -eu
psql "$1" -v ON_ERROR_STOP=1 -v password="$LDL_DB_PASSWORD" <<'SQL'
CREATE ROLE ldl LOGIN SUPERUSER PASSWORD :'password';
CREATE DATABASE ldl OWNER ldl;
SQL
