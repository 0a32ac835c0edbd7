#!/bin/sh
# The root credentials come from mounted files, so they are in no image layer and in no
# container configuration (docker inspect): only in this process's environment.
set -eu
MINIO_ROOT_USER=$(cat /run/secrets/minio-root-user)
MINIO_ROOT_PASSWORD=$(cat /run/secrets/minio-root-password)
export MINIO_ROOT_USER MINIO_ROOT_PASSWORD
exec /usr/local/bin/minio server /var/lib/minio/data --address :9000 --certs-dir /etc/minio/certs --quiet
