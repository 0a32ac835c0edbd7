#!/bin/sh
# First start: a cn=config database for SUFFIX with TLS (certificate and key mounted under /etc/ldap/tls), the
# admin's password from /run/secrets/directory-admin-password (hashed here, never stored in clear), the people and
# groups of /etc/ldap/seed.ldif. Every start: slapd in the foreground on ldap:// (StartTLS), ldaps:// and ldapi://.
set -eu
SUFFIX="${DIRECTORY_SUFFIX:-dc=lab,dc=internal}"
# The key is mounted root's: slapd reads its own copy.
install -d -o openldap -g openldap -m 0700 /etc/ldap/tls
install -o openldap -g openldap -m 0400 /run/tls/ca.crt /run/tls/directory.crt /run/tls/directory.key /etc/ldap/tls/
mkdir -p /etc/ldap/slapd.d /var/lib/ldap
# ldapi:// lives here.
install -d -o openldap -g openldap -m 0755 /run/slapd
if [ ! -e /etc/ldap/slapd.d/cn=config.ldif ]; then
  hash="$(slappasswd -T /run/secrets/directory-admin-password)"
  cat >/tmp/config.ldif <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcTLSCACertificateFile: /etc/ldap/tls/ca.crt
olcTLSCertificateFile: /etc/ldap/tls/directory.crt
olcTLSCertificateKeyFile: /etc/ldap/tls/directory.key
olcTLSProtocolMin: 3.3

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file:///etc/ldap/schema/openssh-lpk.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * break

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcDbDirectory: /var/lib/ldap
olcRootDN: cn=admin,$SUFFIX
olcRootPW: $hash
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,memberUid eq
olcSecurity: simple_bind=128
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by users read by * none
LDIF
  slapadd -n 0 -F /etc/ldap/slapd.d -l /tmp/config.ldif
  slapadd -n 1 -F /etc/ldap/slapd.d -l /etc/ldap/seed.ldif
  rm -f /tmp/config.ldif
  chown -R openldap:openldap /etc/ldap/slapd.d /var/lib/ldap
fi
exec slapd -d 0 -u openldap -g openldap -F /etc/ldap/slapd.d -h "ldap:/// ldaps:/// ldapi:///"
