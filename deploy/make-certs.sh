#!/bin/sh
# One-time step before `docker compose up`: the CA, a certificate for each
# of the compose file's nodes (n1, n2, n3), the gossip key and the admin
# token, made with
# `holocron cert` into deploy/certs/. The CA key goes to deploy/ca-key/:
# keep it, or move it somewhere safe; the nodes never need it.
#
#   sh deploy/make-certs.sh            # from the repository root
#
# The containers run as uid 65532 and read their certs from a bind mount,
# so the node keys are made readable by that uid (chown needs root; else
# they are made world-readable: fine on a developer's machine, not on a
# shared one).
set -eu
cd "$(dirname "$0")/.."
out=deploy/certs
holocron() { go run ./cmd/holocron "$@"; }
holocron cert create-ca --certs-dir "$out/ca" --ca-key deploy/ca-key/ca.key
holocron cert create-gossip-key "$out/gossip.key"
# The nodes' -admin-token: the published ports reach a container from the
# bridge, not from loopback, so an admin API without a token refuses them.
(umask 077; head -c 24 /dev/urandom | base64 > "$out/admin.token")
for n in n1 n2 n3; do
  mkdir -p "$out/$n"
  cp "$out/ca/ca.crt" "$out/$n/"
  holocron cert create-node "$n" --host "$n" --certs-dir "$out/$n" --ca-key deploy/ca-key/ca.key
  cp "$out/gossip.key" "$out/$n/gossip.key"
  cp "$out/admin.token" "$out/$n/admin.token"
done
if chown -R 65532:65532 "$out" 2>/dev/null; then :; else chmod -R a+rX "$out"; fi
echo "certificates in $out; the CA key in deploy/ca-key/ (keep it out of the images and off the nodes)"
