#!/bin/sh
# Create every topic of the platform (deploy/kafka/topics.txt, one name a line, each with its .dlq, optionally
# followed by topic configs `key=value`); idempotent (--if-not-exists), so it runs on every `compose up`. The
# configs apply when a topic is created: change an existing topic's with kafka-configs.sh.
#
#   KAFKA_BOOTSTRAP_SERVERS   broker to talk to                  (default kafka:9092)
#   KAFKA_COMMAND_CONFIG      the admin's client properties (SASL; default none: PLAINTEXT)
#   TOPIC_PARTITIONS          partitions of each topic           (default 6)
#   TOPIC_REPLICATION_FACTOR  replicas of each topic             (default 1: one broker)
#   TOPIC_PREFIX              prepended to every name            (default empty)
#   TOPICS_FILE               the list                           (default: topics.txt next to this script)
#   KAFKA_TOPICS              the kafka-topics.sh to run         (default /opt/kafka/bin/kafka-topics.sh)
set -eu

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
partitions="${TOPIC_PARTITIONS:-6}"
replication="${TOPIC_REPLICATION_FACTOR:-1}"
prefix="${TOPIC_PREFIX:-}"
topics_file="${TOPICS_FILE:-$(dirname "$0")/topics.txt}"
kafka_topics="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"
command_config="${KAFKA_COMMAND_CONFIG:-}"

case "$partitions" in '' | *[!0-9]*) echo "TOPIC_PARTITIONS must be a number: $partitions" >&2; exit 2 ;; esac
case "$replication" in '' | *[!0-9]*) echo "TOPIC_REPLICATION_FACTOR must be a number: $replication" >&2; exit 2 ;; esac
[ -r "$topics_file" ] || { echo "cannot read $topics_file" >&2; exit 2; }

count=0
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    # the line's words: the name, then its configs (no globbing: a word is never a file name)
    set -f
    # shellcheck disable=SC2086
    set -- $line
    set +f
    topic="$1"
    shift
    for config in "$@"; do
        case "$config" in
            ?*=?*) ;;
            *) echo "$topics_file: $topic: config $config is not key=value" >&2; exit 2 ;;
        esac
        set -- "$@" --config "$config"
        shift
    done
    set -- --create --if-not-exists --topic "${prefix}${topic}" --partitions "$partitions" --replication-factor "$replication" "$@"
    if [ -n "$command_config" ]; then
        "$kafka_topics" --bootstrap-server "$bootstrap" --command-config "$command_config" "$@"
    else
        "$kafka_topics" --bootstrap-server "$bootstrap" "$@"
    fi
    count=$((count + 1))
done < "$topics_file"

echo "topics: $count ensured on $bootstrap ($partitions partitions, replication $replication)"
