#!/usr/bin/env bash
# gen-certs.sh DIR [NODE...]: make a throwaway PKI for tests and the demo.
#   DIR/ca.pem ca.key           the CA (EC P-256)
#   DIR/server.pem server.key   aggregator, SAN DNS:localhost, IP:127.0.0.1
#   DIR/client.pem client.key   collector "node-1" (SAN DNS:node-1) unless NODEs given:
#   DIR/<node>.pem <node>.key   one client certificate per NODE (CN and SAN = NODE)
#   DIR/rogue-ca.pem, DIR/rogue.pem rogue.key   a client signed by another CA
# Keys are mode 0600. Uses only the openssl CLI.
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [NODE...]}
shift || true
mkdir -p "$dir"
cd "$dir"
umask 077
days=30

mkca() { # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -out "$1.pem" -days $days -subj "/CN=$1 test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
mkleaf() { # ca name cn san eku
  local ca=$1 name=$2 cn=$3 san=$4 eku=$5
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" \
    -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" "$eku" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -out "$name.pem" -days $days -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

mkca ca
mkleaf ca server localhost "DNS:localhost,IP:127.0.0.1" serverAuth
if [ $# -eq 0 ]; then set -- node-1; fi
first=1
for node in "$@"; do
  mkleaf ca "$node" "$node" "DNS:$node" clientAuth
  if [ $first -eq 1 ]; then cp "$node.pem" client.pem; cp "$node.key" client.key; first=0; fi
done
mkca rogue-ca
mkleaf rogue-ca rogue node-1 "DNS:node-1" clientAuth
chmod 600 ./*.key
