#!/usr/bin/env bash
# Makes throwaway certificates for the TLS tests in DIR (EC P-256, valid
# for 2 days): two CAs, and leaf certificates for localhost/127.0.0.1 with
# both server and client usage.
#
#   make_test_certs.sh DIR
#
#   ca.pem/.key            the cluster's CA
#   server.pem/.key        CN jamba-server, signed by ca
#   server2.pem/.key       CN jamba-server-rotated, signed by ca (rotation)
#   client.pem/.key        CN jamba-client, signed by ca
#   other-ca.pem/.key      an unrelated CA
#   other-client.pem/.key  CN jamba-intruder, signed by other-ca
#   other-server.pem/.key  CN jamba-other-server, signed by other-ca
#   token                  a random bearer token
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"

ca() {  # name cn
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

leaf() {  # name cn ca
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca jamba-test-ca
ca other-ca jamba-other-ca
leaf server jamba-server ca
leaf server2 jamba-server-rotated ca
leaf client jamba-client ca
leaf other-client jamba-intruder other-ca
leaf other-server jamba-other-server other-ca
openssl rand -hex 24 >token
chmod 600 ./*.key token
