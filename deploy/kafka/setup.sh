#!/bin/sh
# The one-shot `topics` step: runs on every `compose up` before the services start, signed in as `admin`
# (SASL/SCRAM-SHA-512, the super user), and everything in it is idempotent:
#   1. scram-users.sh    the SCRAM credential of each principal in acls.txt, from KAFKA_<PRINCIPAL>_PASSWORD
#   2. create-topics.sh  the topics of topics.txt (services are granted no Create: only this step makes topics)
#   3. apply-acls.sh     the grants of acls.txt
#
#   KAFKA_ADMIN_PASSWORD      the admin's password (required)
#   KAFKA_SECURITY_PROTOCOL   how to reach the broker            (default SASL_PLAINTEXT; SASL_SSL: see
#                                                                 docs/kafka-security.md for the truststore)
#   and the variables of the three scripts (KAFKA_BOOTSTRAP_SERVERS, TOPIC_PREFIX, ...)
set -eu

here=$(dirname "$0")
: "${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is required}"
case "$KAFKA_ADMIN_PASSWORD" in
    *[,\]\"\\\ ]*) echo "KAFKA_ADMIN_PASSWORD must not contain , ] \" \\ or spaces (use e.g. openssl rand -hex 24)" >&2; exit 2 ;;
esac

# the admin's client properties, readable by this user only and gone when the step ends
umask 077
config=$(mktemp)
trap 'rm -f "$config"' EXIT
trap 'exit 130' INT TERM
cat > "$config" <<PROPERTIES
security.protocol=${KAFKA_SECURITY_PROTOCOL:-SASL_PLAINTEXT}
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
PROPERTIES
export KAFKA_COMMAND_CONFIG="$config"

sh "$here/scram-users.sh"
sh "$here/create-topics.sh"
sh "$here/apply-acls.sh"
