#!/bin/sh
# A database and a login role per service, each role owning its database and the only one (besides
# superusers) allowed to connect to it. Idempotent: reruns create what is missing and reset the passwords.
#
# Run by the postgres image on first start (/docker-entrypoint-initdb.d), or by hand against any server:
#   PGHOST=… PGPORT=… PGUSER=postgres MEMBERSHIP_DB_PASSWORD=… … sh deploy/postgres/init.sh
#
#   UNION_SERVICES         services to provision     (default: membership transfer servicecard feedback dues)
#   <SERVICE>_DB_PASSWORD  each role's password      (required, e.g. MEMBERSHIP_DB_PASSWORD)
#   DB_NAME_SUFFIX         appended to every database and role name (default empty; tests use it)
#   PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE   the standard libpq variables (PGUSER defaults to
#                          $POSTGRES_USER inside the postgres image, else postgres)
#
# The image sources a non-executable init script, so everything runs in a subshell function: no
# `set` or `exit` leaks into its entrypoint.

union_init_databases() (
    set -eu
    PGUSER="${PGUSER:-${POSTGRES_USER:-postgres}}"
    export PGUSER
    suffix="${DB_NAME_SUFFIX:-}"
    case "$suffix" in *[!a-z0-9_]*) echo "DB_NAME_SUFFIX must match [a-z0-9_]*" >&2; return 2 ;; esac

    for service in ${UNION_SERVICES:-membership transfer servicecard feedback dues}; do
        case "$service" in '' | *[!a-z0-9_]*) echo "bad service name: $service" >&2; return 2 ;; esac
        var="$(printf '%s' "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
        eval "password=\${$var:-}"
        if [ -z "$password" ]; then
            echo "$var is required" >&2
            return 2
        fi
        name="${service}${suffix}"
        psql -X -q -v ON_ERROR_STOP=1 --dbname "${PGDATABASE:-postgres}" \
            -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
ALTER DATABASE :"name" OWNER TO :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
        echo "database and role $name ready"
    done
)

union_init_databases
