#!/bin/sh
# The official image's contract, for the variables the manifest sets: the default user
# and password go into a config file in the container's own filesystem (not the volume).
set -eu
umask 077
{
  echo "listeners.tcp.default = 5672"
  echo "loopback_users = none"
  if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
    echo "default_user = ${RABBITMQ_DEFAULT_USER}"
    echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-}"
  fi
} > /etc/rabbitmq/rabbitmq.conf
exec "$@"
