#!/bin/sh
# Makes the keystores the JKS/PKCS12 tests read (test_keystore.c, test_keystores.py),
# with Java's keytool (openjdk-17-jre-headless) and openssl, as an operator would.
# The files are kept in the repository so the tests need no Java; run this again
# only to renew them (they are valid for 100 years).
set -eu
cd "$(dirname "$0")"
rm -f ./*.jks ./*.p12 ./*.pem
days=36500
san="SAN=dns:localhost,ip:127.0.0.1"
# the broker: JKS with a key password unlike the store's, and the same as PKCS12
keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -dname "CN=localhost,O=Samsa" -ext "$san" \
    -validity $days -storetype JKS -keystore broker.jks -storepass broker-store -keypass broker-key
keytool -importkeystore -srckeystore broker.jks -srcstoretype JKS -srcstorepass broker-store \
    -srckeypass broker-key -srcalias broker -destkeystore broker.p12 -deststoretype PKCS12 \
    -deststorepass broker-store -destkeypass broker-store
keytool -exportcert -alias broker -keystore broker.jks -storepass broker-store -rfc -file broker.pem
# an EC key in JKS
keytool -genkeypair -alias ec -keyalg EC -groupname secp256r1 -dname "CN=localhost" -ext "$san" \
    -validity $days -storetype JKS -keystore broker-ec.jks -storepass ec-store -keypass ec-store
# a client for mutual TLS: its certificate is what the brokers' truststores trust
keytool -genkeypair -alias client -keyalg RSA -keysize 2048 -dname "CN=client,O=Samsa" -validity $days \
    -storetype PKCS12 -keystore client.p12 -storepass client-store
keytool -exportcert -alias client -keystore client.p12 -storepass client-store -rfc -file client.pem
openssl pkcs12 -in client.p12 -passin pass:client-store -nocerts -nodes -out client-key.pem
keytool -importcert -noprompt -alias client -file client.pem -storetype JKS -keystore truststore.jks \
    -storepass trust-store
keytool -importcert -noprompt -alias client -file client.pem -storetype PKCS12 -keystore truststore.p12 \
    -storepass trust-store
# the client's side in JKS: its key (own key password) and a truststore with the broker's certificate
keytool -importkeystore -srckeystore client.p12 -srcstoretype PKCS12 -srcstorepass client-store -srcalias client \
    -destkeystore client.jks -deststoretype JKS -deststorepass client-store -destkeypass client-key
keytool -importcert -noprompt -alias broker -file broker.pem -storetype JKS -keystore client-truststore.jks \
    -storepass client-trust
